// The Node.js verification function from seed 002 (Popsee's documented
// snippet), copied unchanged, plus a command-line wrapper:
// node seed002_verify.js SECRET X_WEBHOOK_SIGNATURE < body
const crypto = require('crypto');
function verifyWebhook(payload, signature, secret) {
  const expectedSignature = 'sha256=' + crypto
    .createHmac('sha256', secret)
    .update(payload, 'utf8')
    .digest('hex');
  return crypto.timingSafeEqual(
    Buffer.from(signature),
    Buffer.from(expectedSignature)
  );
}

const payload = require('fs').readFileSync(0).toString(); // req.body.toString()
process.exit(verifyWebhook(payload, process.argv[3], process.argv[2]) ? 0 : 1);
