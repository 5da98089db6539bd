// Seed 000 (SmartSurvey's documentation): its Node.js snippet, unchanged but
// for where its three inputs come from, completed with the
// .update(payload).digest('hex') its text describes ("a HMAC sha256 hash of
// the JSON payload (stringified) and our shared secret"). The payload is the
// JSON payload stringified, as an Express app that parsed the body gets it:
// JSON.stringify(req.body).
// node seed000_verify.js SECRET X_SMARTSURVEY_SIGNATURE < body
const crypto = require('crypto');

const secret = process.argv[2];
const payload = JSON.stringify(JSON.parse(require('fs').readFileSync(0, 'utf8')));
const header = process.argv[3];

const hash = crypto
  .createHmac('sha256', secret)
  .update(payload)
  .digest('hex');

if (hash === header) {
  console.log('boom, request is verified!')
}

process.exit(hash === header ? 0 : 1);
