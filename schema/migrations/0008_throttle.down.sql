DROP TABLE webhook_throttle;
ALTER TABLE webhooks DROP CONSTRAINT webhooks_rate_limit_check,
    DROP COLUMN rate_burst, DROP COLUMN rate_limit;
