-- The web console's one-time links and sessions. Tokens are random and kept only as their
-- SHA-256: a database dump opens no console. A session acts through the API with a
-- credential sealed under the keyring (an operator's platform key, or the account key
-- minted for a link's session), so that the console calls the API as any client does.
CREATE TABLE console_links (
    token_hash  bytea PRIMARY KEY,
    account_id  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- The link must be opened before expires_at, and the session it starts ends then.
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX console_links_account_idx ON console_links (account_id);

CREATE TABLE console_sessions (
    id                uuid PRIMARY KEY,
    token_hash        bytea       NOT NULL UNIQUE,
    -- '' for an operator's session, which may switch between accounts.
    account_id        text        NOT NULL,
    credential_sealed bytea       NOT NULL,
    -- The account key minted for a link's session: revoking the session revokes it, and
    -- deleting the account (with its keys) ends the session.
    api_key_id        uuid REFERENCES api_keys (id) ON DELETE CASCADE,
    csrf_token        text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    revoked_at        timestamptz
);
CREATE INDEX console_sessions_account_idx ON console_sessions (account_id) WHERE revoked_at IS NULL;
