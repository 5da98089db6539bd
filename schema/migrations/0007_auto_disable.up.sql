-- Auto-disable: a webhook whose attempts have all failed for long enough, or whose receiver
-- answered 410 Gone, is turned off by surveyhooks itself (is_active false), with when and
-- why. Turning it on again (is_active true) clears both. A webhook turned off by a person
-- has no disabled_at.
ALTER TABLE webhooks
    ADD COLUMN disabled_at     timestamptz,
    ADD COLUMN disabled_reason text NOT NULL DEFAULT '';

-- A disabled webhook still gets a delivery of every event it is subscribed to, as skipped:
-- nothing is sent, nothing is lost, and a retry once it is on again delivers it.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('pending', 'retrying', 'delivered', 'failed', 'skipped'));
