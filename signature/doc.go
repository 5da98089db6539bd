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
// During a secret rotation a request is signed with every active secret,
// newest first, and each header holds the signatures separated by a single
// space: "sha256=<a> sha256=<b>" and "v1,<a> v1,<b>". A receiver accepts the
// request when any one of them matches its secret.
package signature
