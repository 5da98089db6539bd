package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// ConsoleSession is a signed-in web console: an operator's (AccountID "", any account) or
// an account's, started from a one-time link. Its credential, the API key it acts with, is
// kept sealed and returned apart.
type ConsoleSession struct {
	ID        uuid.UUID `db:"id"`
	AccountID string    `db:"account_id"`
	// APIKeyID is the account key minted for a link's session; nil for an operator's.
	APIKeyID *uuid.UUID `db:"api_key_id"`
	// CSRFToken must come back with every request that changes something.
	CSRFToken string    `db:"csrf_token"`
	CreatedAt time.Time `db:"created_at"`
	ExpiresAt time.Time `db:"expires_at"`
}

// Operator reports whether the session is an operator's, who may act in any account.
func (s ConsoleSession) Operator() bool {
	return s.AccountID == ""
}

// consoleCredentialAAD binds a session's sealed credential to its row.
func consoleCredentialAAD(id uuid.UUID) []byte {
	return []byte("surveyhooks console credential " + id.String())
}

const insertConsoleLinkQuery = `INSERT INTO console_links (token_hash, account_id, expires_at) VALUES ($1, $2, $3)`

// useConsoleLinkQuery uses a link once: a used, revoked or expired link matches no row.
const useConsoleLinkQuery = `UPDATE console_links SET used_at = now()
	WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
	RETURNING account_id, expires_at`

const consoleSessionColumns = `s.id, s.account_id, s.api_key_id, s.csrf_token, s.created_at, s.expires_at`

const insertConsoleSessionQuery = `INSERT INTO console_sessions
	(id, token_hash, account_id, credential_sealed, api_key_id, csrf_token, expires_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7)
	RETURNING id, account_id, api_key_id, csrf_token, created_at, expires_at`

// findConsoleSessionQuery finds a live session: not revoked, not expired, and for a link's
// session its key still usable (revoking the key through the API signs the session out).
const findConsoleSessionQuery = `SELECT ` + consoleSessionColumns + `, s.credential_sealed
	FROM console_sessions s LEFT JOIN api_keys k ON k.id = s.api_key_id
	WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
	  AND (s.api_key_id IS NULL OR (k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())))`

const revokeConsoleSessionQuery = `UPDATE console_sessions SET revoked_at = coalesce(revoked_at, now())
	WHERE id = $1 RETURNING api_key_id`

// revokeAccountConsoleQuery revokes an account's live sessions and their keys, and its
// links not yet used, in one statement; it returns how many sessions it revoked.
const revokeAccountConsoleQuery = `
WITH sessions AS (
	UPDATE console_sessions SET revoked_at = now()
	WHERE account_id = $1 AND revoked_at IS NULL
	RETURNING api_key_id, expires_at
), keys AS (
	UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
	WHERE id IN (SELECT api_key_id FROM sessions WHERE api_key_id IS NOT NULL)
), links AS (
	UPDATE console_links SET revoked_at = now()
	WHERE account_id = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
)
SELECT count(*) FROM sessions WHERE expires_at > now()`

const revokeSessionKeyQuery = `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1`

// CreateConsoleLink stores a one-time link into an account's console, by the hash of its
// token, usable until expiresAt.
func (s *Store) CreateConsoleLink(ctx context.Context, accountID string, tokenHash []byte, expiresAt time.Time) error {
	if _, err := s.q.ExecContext(ctx, insertConsoleLinkQuery, tokenHash, accountID, expiresAt); err != nil {
		return fmt.Errorf("insert console link: %w", mapError(err))
	}
	return nil
}

// ConsoleLinkKey is the account key a link's session acts with: made by the caller (its
// format is the API's), stored here with the session.
type ConsoleLinkKey struct {
	Key, Prefix string
	Hash        []byte
}

// RedeemConsoleLink uses the link whose token hashes to linkHash and starts its session,
// with key as the session's account key, expiring with it: all in one transaction, so a
// link opens one session at most. A used, revoked, expired or unknown link is ErrNotFound.
func (s *Store) RedeemConsoleLink(ctx context.Context, linkHash, sessionHash []byte, csrfToken string, key ConsoleLinkKey) (ConsoleSession, error) {
	var session ConsoleSession
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var link struct {
			AccountID string    `db:"account_id"`
			ExpiresAt time.Time `db:"expires_at"`
		}
		if err := tx.GetContext(ctx, &link, useConsoleLinkQuery, linkHash); err != nil {
			return fmt.Errorf("use console link: %w", mapError(err))
		}
		txStore := &Store{db: s.db, q: tx, keys: s.keys}
		apiKey, err := txStore.CreateAPIKey(ctx, APIKey{AccountID: link.AccountID, Name: "console session",
			Prefix: key.Prefix, ExpiresAt: &link.ExpiresAt}, key.Hash)
		if err != nil {
			return err
		}
		session, err = txStore.insertConsoleSession(ctx, ConsoleSession{AccountID: link.AccountID, APIKeyID: &apiKey.ID,
			CSRFToken: csrfToken, ExpiresAt: link.ExpiresAt}, sessionHash, key.Key)
		return err
	})
	return session, err
}

// CreateConsoleSession starts an operator's session acting with credential (a platform
// key), which is stored sealed.
func (s *Store) CreateConsoleSession(ctx context.Context, sessionHash []byte, csrfToken, credential string, expiresAt time.Time) (ConsoleSession, error) {
	return s.insertConsoleSession(ctx, ConsoleSession{CSRFToken: csrfToken, ExpiresAt: expiresAt}, sessionHash, credential)
}

func (s *Store) insertConsoleSession(ctx context.Context, cs ConsoleSession, sessionHash []byte, credential string) (ConsoleSession, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return ConsoleSession{}, fmt.Errorf("new console session id: %w", err)
	}
	sealed, err := s.keys.Seal([]byte(credential), consoleCredentialAAD(id))
	if err != nil {
		return ConsoleSession{}, fmt.Errorf("seal console credential: %w", err)
	}
	var row ConsoleSession
	err = s.q.GetContext(ctx, &row, insertConsoleSessionQuery, id, sessionHash, cs.AccountID, sealed, cs.APIKeyID,
		cs.CSRFToken, cs.ExpiresAt)
	if err != nil {
		return ConsoleSession{}, fmt.Errorf("insert console session: %w", mapError(err))
	}
	return row, nil
}

// FindConsoleSession returns the live session whose token hashes to sessionHash and its
// credential; a revoked, expired or unknown session (or one whose key was revoked) is
// ErrNotFound.
func (s *Store) FindConsoleSession(ctx context.Context, sessionHash []byte) (ConsoleSession, string, error) {
	var row struct {
		ConsoleSession
		Sealed []byte `db:"credential_sealed"`
	}
	if err := s.q.GetContext(ctx, &row, findConsoleSessionQuery, sessionHash); err != nil {
		return ConsoleSession{}, "", fmt.Errorf("find console session: %w", mapError(err))
	}
	credential, err := s.keys.Open(row.Sealed, consoleCredentialAAD(row.ID))
	if err != nil {
		// Sealed under a key since dropped from SURVEYHOOKS_ENCRYPTION_KEYS (rekey leaves
		// sessions, which last hours, alone): the session has ended.
		return ConsoleSession{}, "", fmt.Errorf("open console credential of session %s: %w (%w)", row.ID, ErrNotFound, err)
	}
	return row.ConsoleSession, string(credential), nil
}

// RevokeConsoleSession ends one session (signing out) and revokes its account key.
func (s *Store) RevokeConsoleSession(ctx context.Context, id uuid.UUID) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var keyID *uuid.UUID
		err := tx.GetContext(ctx, &keyID, revokeConsoleSessionQuery, id)
		if err != nil {
			return fmt.Errorf("revoke console session: %w", mapError(err))
		}
		if keyID == nil {
			return nil
		}
		if _, err := tx.ExecContext(ctx, revokeSessionKeyQuery, *keyID); err != nil {
			return fmt.Errorf("revoke console session key: %w", err)
		}
		return nil
	})
}

// RevokeConsoleSessions ends every session of an account, revokes their keys and its
// unused links, and returns how many live sessions it ended.
func (s *Store) RevokeConsoleSessions(ctx context.Context, accountID string) (int64, error) {
	if accountID == "" {
		return 0, errors.New("revoke console sessions: no account")
	}
	var n int64
	if err := s.q.GetContext(ctx, &n, revokeAccountConsoleQuery, accountID); err != nil {
		return 0, fmt.Errorf("revoke console sessions: %w", mapError(err))
	}
	return n, nil
}

// consoleGrace is how long ended console links and sessions stay after they ended, so that
// opening one still says it expired rather than that it never existed.
const consoleGrace = 24 * time.Hour

// The statements that delete console access that ended over consoleGrace ago ($1): the
// account keys minted for such sessions (their sessions go with them, by the foreign
// key), then the other sessions (operators'), then the links.
var deleteEndedConsoleQueries = []string{
	`DELETE FROM api_keys WHERE id IN (
		SELECT api_key_id FROM console_sessions WHERE api_key_id IS NOT NULL AND least(expires_at, revoked_at) < $1)`,
	`DELETE FROM console_sessions WHERE least(expires_at, revoked_at) < $1`,
	`DELETE FROM console_links WHERE least(expires_at, revoked_at, used_at) < $1`,
}

// DeleteEndedConsoleAccess deletes the console links, sessions and session keys that
// ended (expired, revoked or, for a link, used) more than a day before now, and returns
// how many rows went. Nothing else reads them, and the keys would show in the account's
// key list for ever.
func (s *Store) DeleteEndedConsoleAccess(ctx context.Context, now time.Time) (int, error) {
	total := 0
	err := s.atomically(ctx, func(q queryer) error {
		for _, query := range deleteEndedConsoleQueries {
			res, err := q.ExecContext(ctx, query, now.Add(-consoleGrace))
			if err != nil {
				return fmt.Errorf("delete ended console access: %w", mapError(err))
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("delete ended console access: %w", err)
			}
			total += int(n)
		}
		return nil
	})
	return total, err
}
