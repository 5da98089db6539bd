-- Webhooks: one subscription of a URL to some event types of one survey.
CREATE TABLE webhooks (
    id                         uuid PRIMARY KEY,
    survey_id                  text        NOT NULL,
    name                       text        NOT NULL,
    url                        text        NOT NULL,
    events                     text[]      NOT NULL,
    description                text        NOT NULL DEFAULT '',
    is_active                  boolean     NOT NULL DEFAULT true,
    -- The secret signs every request. During a rotation the previous secret keeps
    -- signing too, until previous_secret_expires_at.
    secret                     text        NOT NULL,
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(events) > 0)
);
-- Ids are UUIDv7 (time ordered): listing a survey's webhooks by id is creation order and
-- the id doubles as the pagination cursor.
CREATE INDEX webhooks_survey_id_idx ON webhooks (survey_id, id);

-- Events: what a publisher sent, stored before anything else happens (the outbox).
-- body holds the exact envelope bytes POSTed on every attempt.
CREATE TABLE events (
    id                text PRIMARY KEY,
    event_type        text        NOT NULL,
    survey_id         text        NOT NULL,
    body              bytea       NOT NULL,
    -- Set for webhook.test events: the one webhook the event goes to.
    target_webhook_id uuid REFERENCES webhooks (id) ON DELETE CASCADE,
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- When the event's workflow was started; NULL while it waits for Temporal. The
    -- event's deliveries are made with it, once: a later run of its workflow (a manual
    -- retry after it closed) never picks up webhooks created since.
    dispatched_at     timestamptz
);
CREATE INDEX events_undispatched_idx ON events (created_at) WHERE dispatched_at IS NULL;
CREATE INDEX events_created_at_idx ON events (created_at);

-- Deliveries: one event to one webhook.
CREATE TABLE deliveries (
    id               uuid PRIMARY KEY,
    event_id         text        NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    webhook_id       uuid        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    status           text        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'retrying', 'delivered', 'failed')),
    attempt_count    integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_status_code integer,
    last_error       text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    UNIQUE (event_id, webhook_id)
);
-- Listing a webhook's deliveries, newest first, optionally by status.
CREATE INDEX deliveries_webhook_id_idx ON deliveries (webhook_id, id DESC);
CREATE INDEX deliveries_webhook_status_idx ON deliveries (webhook_id, status, id DESC);

-- Delivery attempts: the log of every POST, with request and response (bodies truncated).
CREATE TABLE delivery_attempts (
    id               uuid PRIMARY KEY,
    delivery_id      uuid        NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number           integer     NOT NULL,
    trigger          text        NOT NULL CHECK (trigger IN ('auto', 'manual', 'test')),
    started_at       timestamptz NOT NULL,
    duration_ms      double precision NOT NULL,
    request_url      text        NOT NULL,
    request_headers  jsonb       NOT NULL,
    request_body     text        NOT NULL,
    response_status  integer,
    response_headers jsonb,
    response_body    text        NOT NULL DEFAULT '',
    error            text        NOT NULL DEFAULT '',
    UNIQUE (delivery_id, number)
);
CREATE INDEX delivery_attempts_started_at_idx ON delivery_attempts (started_at);
