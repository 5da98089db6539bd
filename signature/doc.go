// Package signature signs and verifies the webhook requests that surveyhooks
// sends. The delivery worker signs with it and receivers can import it to
// verify, so both sides share one implementation. It depends only on the
// standard library.
//
// Every request carries two independent signatures over the exact body bytes:
//
//   - X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, body)>. The key is
//     the secret string exactly as the user sees it, prefix included. This is
//     the scheme most survey platforms document, so existing receiver code
//     keeps working with only the header name changed.
//   - Standard Webhooks (https://www.standardwebhooks.com): webhook-id,
//     webhook-timestamp (unix seconds) and webhook-signature: v1,<base64
//     HMAC-SHA256(key, "<id>.<timestamp>.<body>")>. Because the timestamp is
//     signed, a receiver can refuse replays of old requests.
//
// Standard Webhooks key rule: when the secret starts with "whsec_" and the rest
// is non-empty, valid, padded standard base64, the key is the decoded bytes
// (what the official libraries' NewWebhook(secret) expects; generated secrets
// always have this form). Otherwise the key is the raw bytes of the whole
// secret (the official libraries' NewWebhookRaw).
//
// The first header is the platform's profile (Profile): its name and format
// may be changed so that receivers written against a platform's own docs keep
// working, for example "X-SmartSurvey-Signature: <bare hex>" (FormatHex, which
// carries the newest secret's HMAC only, as its receivers compare the whole
// header with one value). Its HMAC key is always the secret's own bytes.
//
// A webhook may sign with ed25519 instead (the Standard Webhooks asymmetric
// scheme): webhook-signature then carries "v1a,<base64 ed25519 signature of
// "<id>.<timestamp>.<body>">" values, the key pair is in the "whsk_" (private,
// never shown) and "whpk_" (public) forms as Svix uses them, receivers verify
// with the public key alone (VerifyAsymmetric), and no profile header is sent.
//
// During a secret rotation a request is signed with every active secret,
// newest first, and each header holds the signatures separated by a single
// space: "sha256=<a> sha256=<b>" and "v1,<a> v1,<b>". A receiver accepts the
// request when any one of them matches its secret.
package signature
