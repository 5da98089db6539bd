const crypto = require('crypto');

const TOLERANCE_SECONDS = 5 * 60;

// publicKey reads a "whpk_<base64 of 32 bytes>" key (GET .../public-key).
function publicKey(whpk) {
  const raw = Buffer.from(whpk.replace(/^whpk_/, ''), 'base64');
  return crypto.createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
    format: 'jwk',
  });
}

// verifyEd25519 checks webhook-id, webhook-timestamp and the "v1a,<base64>"
// values of webhook-signature against one or more public keys (during a key
// rotation, the previous key too).
function verifyEd25519(payload, msgId, timestamp, header, publicKeys) {
  if (!msgId || !header || !/^[0-9]+$/.test(timestamp || '')) {
    return false;
  }
  const ts = Number(timestamp);
  if (Math.abs(Date.now() / 1000 - ts) > TOLERANCE_SECONDS) {
    return false; // too old or too new: a replay or a wrong clock
  }
  const signed = Buffer.concat([Buffer.from(`${msgId}.${ts}.`), payload]);
  const keys = publicKeys.map(publicKey);
  return header.split(' ').some((sig) => {
    const [version, value = ''] = sig.split(',', 2);
    if (version !== 'v1a') {
      return false;
    }
    const signature = Buffer.from(value, 'base64');
    return signature.length === 64 &&
      keys.some((key) => crypto.verify(null, signed, key, signature));
  });
}

module.exports = { verifyEd25519 };

if (require.main === module) {
  // node verify_ed25519.js WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE PUBLIC_KEY... < body
  const [msgId, timestamp, header, ...keys] = process.argv.slice(2);
  const body = require('fs').readFileSync(0); // raw bytes, never re-encoded
  if (!verifyEd25519(body, msgId, timestamp, header, keys)) {
    console.error('webhook-signature does not verify');
    process.exit(1);
  }
}
