# Seed 003 (Ask Users' documentation): its Python verify_signature, copied
# unchanged, plus a command-line wrapper that hands it the request body as
# text (Flask's request.get_data(as_text=True)), the X-Webhook-Signature header,
# and the secret in ASKUSERS_WEBHOOK_SECRET.
# ASKUSERS_WEBHOOK_SECRET=... python3 seed003_verify.py X_WEBHOOK_SIGNATURE < body
import sys

import hmac
import hashlib
import os

def verify_signature(payload: str, signature: str) -> bool:
    secret = os.environ['ASKUSERS_WEBHOOK_SECRET']

    expected_signature = hmac.new(
        secret.encode('utf-8'),
        payload.encode('utf-8'),
        hashlib.sha256
    ).hexdigest()

    return hmac.compare_digest(signature, expected_signature)


if __name__ == '__main__':
    payload = sys.stdin.buffer.read().decode('utf-8')
    sys.exit(0 if verify_signature(payload, sys.argv[1]) else 1)
