UPDATE deliveries SET status = 'failed', last_error = 'skipped: its webhook was disabled'
WHERE status = 'skipped';
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('pending', 'retrying', 'delivered', 'failed'));
ALTER TABLE webhooks DROP COLUMN disabled_reason, DROP COLUMN disabled_at;
