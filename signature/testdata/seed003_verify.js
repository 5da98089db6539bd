// Seed 003 (Ask Users' documentation): its Node.js verifySignature, copied
// unchanged, plus a command-line wrapper that hands it what Express gives the
// handler: req.body parsed by express.json(), the X-Webhook-Signature header,
// and the secret in ASKUSERS_WEBHOOK_SECRET.
// ASKUSERS_WEBHOOK_SECRET=... node seed003_verify.js X_WEBHOOK_SIGNATURE < body
const crypto = require('crypto');

function verifySignature(payload, signature) {
  const secret = process.env.ASKUSERS_WEBHOOK_SECRET;
  const payloadString = JSON.stringify(payload);

  const expectedSignature = crypto
    .createHmac('sha256', secret)
    .update(payloadString)
    .digest('hex');

  return crypto.timingSafeEqual(
    Buffer.from(signature),
    Buffer.from(expectedSignature)
  );
}

const body = JSON.parse(require('fs').readFileSync(0, 'utf8')); // req.body
let ok;
try {
  ok = verifySignature(body, process.argv[2]);
} catch (err) {
  // timingSafeEqual throws when the lengths differ: Express would answer 500.
  console.error(err.message);
  ok = false;
}
process.exit(ok ? 0 : 1);
