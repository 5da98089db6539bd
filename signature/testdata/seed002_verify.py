# The Python verification function from seed 002 (Popsee's documented snippet),
# copied unchanged, plus a command-line wrapper:
# python3 seed002_verify.py SECRET X_WEBHOOK_SIGNATURE < body
import sys

import hmac
import hashlib
def verify_webhook(payload: bytes, signature: str, secret: str) -> bool:
    expected = 'sha256=' + hmac.new(
        secret.encode('utf-8'),
        payload,
        hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(signature, expected)


if __name__ == '__main__':
    payload = sys.stdin.buffer.read()  # Flask's request.get_data()
    sys.exit(0 if verify_webhook(payload, sys.argv[2], sys.argv[1]) else 1)
