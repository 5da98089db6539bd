-- A webhook's health, kept by the statement that records attempts (store.RecordAttempts),
-- so that reading it never scans the attempt log: the current streak of failed attempts
-- and the last success and failure.
--
-- Neither table has a foreign key to webhooks: its check would lock the webhook's row from
-- the statement that records attempts, which already holds its deliveries' rows, while
-- deleting a webhook locks the webhook's row first and then its deliveries' (the cascade):
-- the two would deadlock. Deleting a webhook deletes these rows after its deliveries
-- instead (store.DeleteWebhook, DeleteAccount), in the order the recording takes.
CREATE TABLE webhook_health (
    webhook_id           uuid PRIMARY KEY,
    -- Failed attempts recorded since the last successful one (a 2xx answer).
    consecutive_failures integer     NOT NULL DEFAULT 0,
    -- When the first of those failed attempts started; NULL while there is none.
    failing_since        timestamptz,
    last_success_at      timestamptz,
    last_failure_at      timestamptz,
    -- The last failure's response status (NULL: no answer) and error.
    last_failure_status  integer,
    last_failure_error   text        NOT NULL DEFAULT '',
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Attempts per webhook and hour, for charts of deliveries and latency. latency_counts
-- counts the attempts by latency class: element i (from 0) holds those that took less than
-- store.LatencyBounds[i] ms and not less than the bound before; the last, the slower ones.
-- Retention deletes the hours older than its cutoff, by webhook_stats_bucket_idx.
CREATE TABLE webhook_stats (
    webhook_id     uuid        NOT NULL,
    bucket         timestamptz NOT NULL,
    attempts       integer     NOT NULL,
    successes      integer     NOT NULL,
    failures       integer     NOT NULL,
    latency_counts integer[]   NOT NULL,
    PRIMARY KEY (webhook_id, bucket)
);
CREATE INDEX webhook_stats_bucket_idx ON webhook_stats (bucket);
