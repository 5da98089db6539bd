-- Throttling: a webhook may carry a rate limit (requests per second, with a burst) that
-- holds across every worker, and a receiver that answers 429, or 503 with Retry-After,
-- pauses all of its webhook's deliveries for the time it asks.
ALTER TABLE webhooks
    ADD COLUMN rate_limit double precision,
    ADD COLUMN rate_burst integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT webhooks_rate_limit_check
        CHECK ((rate_limit IS NULL AND rate_burst = 0) OR (rate_limit > 0 AND rate_burst >= 1));

-- The shared state of each webhook's throttle (store.TakeSlot, store.PauseWebhook): a
-- generic cell rate algorithm (GCRA) in one row, updated by one statement per attempt, so
-- that every worker takes from the same bucket.
--
-- No foreign key to webhooks, for the reason migration 0006 gives for webhook_health: the
-- row is written while attempts hold their deliveries' rows. DeleteWebhook and
-- DeleteAccount delete it after the deliveries.
CREATE TABLE webhook_throttle (
    webhook_id   uuid PRIMARY KEY,
    -- The theoretical arrival time of the next request: a request may go when
    -- tat - (burst - 1) / rate is not after now.
    tat          timestamptz NOT NULL DEFAULT '-infinity',
    -- When the last refused request was told to come back: each refused one is told a
    -- turn one interval after the one before, so that waiting deliveries come back one at
    -- a time instead of all at once.
    wake         timestamptz NOT NULL DEFAULT '-infinity',
    -- Whether the last take was granted: what the statement that takes returns.
    granted      boolean     NOT NULL DEFAULT false,
    -- No request goes before this time: the receiver asked for a pause.
    paused_until timestamptz
);
