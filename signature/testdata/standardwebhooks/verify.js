// The official Standard Webhooks npm library (standardwebhooks) verifying one
// saved request, as its README shows:
// node verify.js SECRET WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE < body
// A generated secret ("whsec_" + base64) is given as it is; a secret the user
// chose is the raw key, its own bytes.
const { Webhook } = require('standardwebhooks');

const [secret, id, timestamp, signature] = process.argv.slice(2);
const payload = require('fs').readFileSync(0); // raw bytes, never re-encoded
const wh = secret.startsWith('whsec_')
  ? new Webhook(secret)
  : new Webhook(Buffer.from(secret, 'utf8'), { format: 'raw' });
try {
  wh.verify(payload, {
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': signature,
  });
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
