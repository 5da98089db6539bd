-- A webhook signs with a shared secret (HMAC, the default) or with an ed25519 key pair
-- (the Standard Webhooks asymmetric scheme), chosen when it is created and never changed.
ALTER TABLE webhooks ADD COLUMN signing text NOT NULL DEFAULT 'hmac';
ALTER TABLE webhooks ADD CONSTRAINT webhooks_signing_check CHECK (signing IN ('hmac', 'ed25519'));
-- The private key ("whsk_...") is sealed as secrets are, bound to the webhook's id. A
-- rotation keeps the previous key signing until previous_secret_expires_at, which ends the
-- overlap of whichever credential the webhook has. The public key is derived from the
-- private one as rows are read, so the two cannot disagree.
ALTER TABLE webhooks ADD COLUMN signing_key_sealed bytea;
ALTER TABLE webhooks ADD COLUMN previous_signing_key_sealed bytea;
-- An ed25519 webhook has no shared secret: receivers hold nothing that could sign.
ALTER TABLE webhooks ALTER COLUMN secret_sealed DROP NOT NULL;
ALTER TABLE webhooks ADD CONSTRAINT webhooks_signing_keys_check CHECK (CASE signing
    WHEN 'hmac' THEN secret_sealed IS NOT NULL AND signing_key_sealed IS NULL
        AND previous_signing_key_sealed IS NULL
    ELSE signing_key_sealed IS NOT NULL AND secret_sealed IS NULL AND previous_secret_sealed IS NULL
    END);
