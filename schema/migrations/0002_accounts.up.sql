-- Accounts: the platform's customers. An account is an id, with no table of its own: it
-- owns the webhooks, events and deliveries that carry it. Everything stored before
-- accounts existed belongs to the default account.
ALTER TABLE webhooks ADD COLUMN account_id text NOT NULL DEFAULT 'default';
ALTER TABLE webhooks ALTER COLUMN account_id DROP DEFAULT;
ALTER TABLE webhooks ADD CONSTRAINT webhooks_account_id_check CHECK (account_id <> '');
-- A webhook with no survey_id is account-wide: it hears every survey of its account, or
-- only those in survey_ids when that is set.
ALTER TABLE webhooks ALTER COLUMN survey_id DROP NOT NULL;
ALTER TABLE webhooks ADD COLUMN survey_ids text[];
ALTER TABLE webhooks ADD CONSTRAINT webhooks_scope_check
    CHECK (survey_id IS NULL OR survey_ids IS NULL);
ALTER TABLE webhooks ADD CONSTRAINT webhooks_survey_ids_check
    CHECK (survey_ids IS NULL OR cardinality(survey_ids) > 0);
-- Secrets are sealed with AES-256-GCM under the application's keys (never in clear in the
-- database); this migration's Go step seals the existing ones, and the next one drops the
-- clear columns.
ALTER TABLE webhooks ADD COLUMN secret_sealed bytea;
ALTER TABLE webhooks ADD COLUMN previous_secret_sealed bytea;
-- Every webhook query names the scope (account, and survey or '' for account-wide); the
-- publish statement also reads the account-wide webhooks of an account through it.
DROP INDEX webhooks_survey_id_idx;
CREATE INDEX webhooks_scope_idx ON webhooks (account_id, (coalesce(survey_id, '')), id);

ALTER TABLE events ADD COLUMN account_id text NOT NULL DEFAULT 'default';
ALTER TABLE events ALTER COLUMN account_id DROP DEFAULT;
ALTER TABLE events ADD CONSTRAINT events_account_id_check CHECK (account_id <> '');
-- seq orders an account's events (publisher ids are not time ordered) and is their
-- listing's cursor.
ALTER TABLE events ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE INDEX events_account_idx ON events (account_id, seq);
CREATE INDEX events_account_survey_idx ON events (account_id, survey_id, seq);

ALTER TABLE deliveries ADD COLUMN account_id text NOT NULL DEFAULT 'default';
ALTER TABLE deliveries ALTER COLUMN account_id DROP DEFAULT;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_account_id_check CHECK (account_id <> '');
-- Listing an account's deliveries, newest first, optionally by status.
CREATE INDEX deliveries_account_idx ON deliveries (account_id, id DESC);
CREATE INDEX deliveries_account_status_idx ON deliveries (account_id, status, id DESC);

-- API keys of one account. Only a hash of the key is kept; prefix is the key's first,
-- non-secret part, by which lists and logs name it and requests find it.
CREATE TABLE api_keys (
    id         uuid PRIMARY KEY,
    account_id text        NOT NULL CHECK (account_id <> ''),
    name       text        NOT NULL,
    prefix     text        NOT NULL UNIQUE,
    hash       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_keys_account_idx ON api_keys (account_id, id);

-- The audit log: every change made through the API, by which key, never with a secret.
CREATE TABLE audit_log (
    id         uuid PRIMARY KEY,
    account_id text        NOT NULL,
    key_prefix text        NOT NULL,
    action     text        NOT NULL,
    resource   text        NOT NULL,
    changes    jsonb       NOT NULL DEFAULT '{}',
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_account_idx ON audit_log (account_id, id DESC);
