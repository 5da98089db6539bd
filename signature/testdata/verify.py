import base64
import binascii
import hashlib
import hmac
import sys
import time

TOLERANCE_SECONDS = 5 * 60


def verify_signature(payload: bytes, header: str, secret: str) -> bool:
    """X-Webhook-Signature: one or more space-separated "sha256=<hex>" values."""
    expected = 'sha256=' + hmac.new(
        secret.encode('utf-8'), payload, hashlib.sha256
    ).hexdigest()
    return any(
        hmac.compare_digest(expected.encode(), sig.encode())
        for sig in header.split()
    )


def standard_key(secret: str) -> bytes:
    """whsec_<base64> secrets use the decoded bytes, other secrets their own bytes."""
    rest = secret[len('whsec_'):]
    if secret.startswith('whsec_') and rest:
        try:
            return base64.b64decode(rest, validate=True)
        except binascii.Error:
            pass
    return secret.encode('utf-8')


def verify_standard(payload: bytes, msg_id: str, timestamp: str,
                    header: str, secret: str) -> bool:
    """Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature."""
    if not (msg_id and timestamp and header):
        return False
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - ts) > TOLERANCE_SECONDS:
        return False  # too old or too new: a replay or a wrong clock
    signed = f'{msg_id}.{ts}.'.encode() + payload
    expected = base64.b64encode(
        hmac.new(standard_key(secret), signed, hashlib.sha256).digest()
    )
    for sig in header.split():
        version, _, value = sig.partition(',')
        if version == 'v1' and hmac.compare_digest(expected, value.encode()):
            return True
    return False


if __name__ == '__main__':
    # python3 verify.py SECRET X_WEBHOOK_SIGNATURE WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE < body
    secret, signature, msg_id, timestamp, standard = sys.argv[1:6]
    body = sys.stdin.buffer.read()
    ok = True
    if not verify_signature(body, signature, secret):
        print('X-Webhook-Signature does not verify', file=sys.stderr)
        ok = False
    if not verify_standard(body, msg_id, timestamp, standard, secret):
        print('webhook-signature does not verify', file=sys.stderr)
        ok = False
    sys.exit(0 if ok else 1)
