-- The old schema has no key pairs: ed25519 webhooks (and, by the cascade, their
-- deliveries) cannot go back into it.
DELETE FROM webhooks WHERE signing <> 'hmac';
ALTER TABLE webhooks DROP CONSTRAINT webhooks_signing_keys_check;
ALTER TABLE webhooks ALTER COLUMN secret_sealed SET NOT NULL;
ALTER TABLE webhooks DROP COLUMN previous_signing_key_sealed;
ALTER TABLE webhooks DROP COLUMN signing_key_sealed;
ALTER TABLE webhooks DROP CONSTRAINT webhooks_signing_check;
ALTER TABLE webhooks DROP COLUMN signing;
