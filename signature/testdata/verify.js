const crypto = require('crypto');

const TOLERANCE_SECONDS = 5 * 60;

// X-Webhook-Signature: one or more space-separated "sha256=<hex>" values.
function verifySignature(payload, header, secret) {
  const expected = Buffer.from('sha256=' + crypto
    .createHmac('sha256', secret)
    .update(payload)
    .digest('hex'));
  return header.split(' ').some((sig) => {
    const given = Buffer.from(sig);
    return given.length === expected.length && crypto.timingSafeEqual(given, expected);
  });
}

// whsec_<base64> secrets use the decoded bytes, other secrets their own bytes.
// Buffer.from(..., 'base64') accepts anything, so check the form first.
function standardKey(secret) {
  const rest = secret.slice('whsec_'.length);
  const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
  if (secret.startsWith('whsec_') && rest !== '' && base64.test(rest)) {
    return Buffer.from(rest, 'base64');
  }
  return Buffer.from(secret, 'utf8');
}

// Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature.
function verifyStandard(payload, msgId, timestamp, header, secret) {
  if (!msgId || !timestamp || !header || !/^[0-9]+$/.test(timestamp)) {
    return false;
  }
  const ts = Number(timestamp);
  if (Math.abs(Date.now() / 1000 - ts) > TOLERANCE_SECONDS) {
    return false; // too old or too new: a replay or a wrong clock
  }
  const expected = Buffer.from(crypto
    .createHmac('sha256', standardKey(secret))
    .update(`${msgId}.${ts}.`)
    .update(payload)
    .digest('base64'));
  return header.split(' ').some((sig) => {
    const [version, value = ''] = sig.split(',', 2);
    const given = Buffer.from(value);
    return version === 'v1' && given.length === expected.length &&
      crypto.timingSafeEqual(given, expected);
  });
}

module.exports = { verifySignature, verifyStandard };

if (require.main === module) {
  // node verify.js SECRET X_WEBHOOK_SIGNATURE WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE < body
  const [secret, signature, msgId, timestamp, standard] = process.argv.slice(2);
  const body = require('fs').readFileSync(0); // raw bytes, never re-encoded
  let ok = true;
  if (!verifySignature(body, signature, secret)) {
    console.error('X-Webhook-Signature does not verify');
    ok = false;
  }
  if (!verifyStandard(body, msgId, timestamp, standard, secret)) {
    console.error('webhook-signature does not verify');
    ok = false;
  }
  process.exit(ok ? 0 : 1);
}
