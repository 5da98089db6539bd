-- This migration's Go step opens the sealed secrets into these columns; migration 0002's
-- down makes secret required again.
ALTER TABLE webhooks ADD COLUMN secret text;
ALTER TABLE webhooks ADD COLUMN previous_secret text;
