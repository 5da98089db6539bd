-- Migration 0002's Go step sealed every secret: the clear columns go.
ALTER TABLE webhooks ALTER COLUMN secret_sealed SET NOT NULL;
ALTER TABLE webhooks DROP COLUMN secret;
ALTER TABLE webhooks DROP COLUMN previous_secret;
