package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/surveyhooks/surveyhooks/keyring"
	"github.com/surveyhooks/surveyhooks/schema"
)

// Webhook secrets are sealed with the keyring before they reach the database and opened
// as they are read: no statement ever carries a secret in clear, and neither does a
// backup. A sealed secret is bound to its webhook's id (the AAD), so a sealed value copied
// into another row does not open there; the current and the previous secret share it, so
// that a rotation moves the one into the other in SQL.
func secretAAD(webhookID uuid.UUID) []byte {
	return []byte("surveyhooks webhook secret " + webhookID.String())
}

// signingKeyAAD binds an ed25519 webhook's sealed private keys to its row, apart from
// secrets: a sealed secret copied into a key column does not open there, nor the reverse.
func signingKeyAAD(webhookID uuid.UUID) []byte {
	return []byte("surveyhooks webhook signing key " + webhookID.String())
}

// seal encrypts a webhook's secret for its row.
func (s *Store) seal(webhookID uuid.UUID, secret string) ([]byte, error) {
	sealed, err := s.keys.Seal([]byte(secret), secretAAD(webhookID))
	if err != nil {
		return nil, fmt.Errorf("seal secret of webhook %s: %w", webhookID, err)
	}
	return sealed, nil
}

// sealSigningKey encrypts an ed25519 webhook's private key for its row.
func (s *Store) sealSigningKey(webhookID uuid.UUID, key string) ([]byte, error) {
	sealed, err := s.keys.Seal([]byte(key), signingKeyAAD(webhookID))
	if err != nil {
		return nil, fmt.Errorf("seal signing key of webhook %s: %w", webhookID, err)
	}
	return sealed, nil
}

// sealCredential seals what signs w's requests, for the column of its kind: the secret of
// an HMAC webhook or the private key of an ed25519 one; the other is nil.
func (s *Store) sealCredential(id uuid.UUID, signing, credential string) (secret, key []byte, err error) {
	if signing == SigningEd25519 {
		key, err = s.sealSigningKey(id, credential)
		return nil, key, err
	}
	secret, err = s.seal(id, credential)
	return secret, nil, err
}

// webhookRow is a webhook as stored, with its secrets and signing keys sealed.
type webhookRow struct {
	Webhook
	SecretSealed             []byte `db:"secret_sealed"`
	PreviousSecretSealed     []byte `db:"previous_secret_sealed"`
	SigningKeySealed         []byte `db:"signing_key_sealed"`
	PreviousSigningKeySealed []byte `db:"previous_signing_key_sealed"`
}

// open returns the webhook of a row with its secrets and signing keys opened.
func (s *Store) open(row webhookRow) (Webhook, error) {
	w := row.Webhook
	if w.Events == nil {
		w.Events = []string{}
	}
	if w.Signing == "" {
		w.Signing = SigningHMAC // rows read by the migrations' steps, before 0004
	}
	var err error
	var secret, key *string
	if secret, err = s.openSealed(w.ID, row.SecretSealed, secretAAD(w.ID), "secret"); err != nil {
		return Webhook{}, err
	}
	if w.PreviousSecret, err = s.openSealed(w.ID, row.PreviousSecretSealed, secretAAD(w.ID), "previous secret"); err != nil {
		return Webhook{}, err
	}
	if key, err = s.openSealed(w.ID, row.SigningKeySealed, signingKeyAAD(w.ID), "signing key"); err != nil {
		return Webhook{}, err
	}
	if w.PreviousSigningKey, err = s.openSealed(w.ID, row.PreviousSigningKeySealed, signingKeyAAD(w.ID), "previous signing key"); err != nil {
		return Webhook{}, err
	}
	w.Secret, w.SigningKey = deref(secret), deref(key)
	return w, nil
}

// openSealed opens one sealed value of webhook id's row; nil stays nil.
func (s *Store) openSealed(id uuid.UUID, sealed, aad []byte, what string) (*string, error) {
	if sealed == nil {
		return nil, nil
	}
	opened, err := s.keys.Open(sealed, aad)
	if err != nil {
		return nil, fmt.Errorf("open %s of webhook %s: %w", what, id, err)
	}
	v := string(opened)
	return &v, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (s *Store) openAll(rows []webhookRow) ([]Webhook, error) {
	hooks := make([]Webhook, 0, len(rows))
	for _, row := range rows {
		w, err := s.open(row)
		if err != nil {
			return nil, err
		}
		hooks = append(hooks, w)
	}
	return hooks, nil
}

// Migrate applies the schema's pending migrations, with the Go steps that seal the secrets
// of a database migrated from before they were sealed (and open them again on the way
// down, Rollback).
func Migrate(ctx context.Context, db *sql.DB, keys *keyring.Keyring) error {
	return schema.Migrate(ctx, db, migrationSteps(keys))
}

// Rollback reverts migrations down to version target (see schema.Rollback).
func Rollback(ctx context.Context, db *sql.DB, keys *keyring.Keyring, target int) error {
	return schema.Rollback(ctx, db, migrationSteps(keys), target)
}

// The migration whose Go step seals the clear secrets (0002_accounts adds the sealed
// columns) and the one whose way down opens them again (0003_drop_clear_secrets).
const (
	sealSecretsVersion = 2
	dropClearVersion   = 3
)

func migrationSteps(keys *keyring.Keyring) schema.Steps {
	return schema.Steps{
		sealSecretsVersion: {Up: func(ctx context.Context, tx *sql.Tx) error {
			return sealClearSecrets(ctx, tx, keys)
		}},
		dropClearVersion: {Down: func(ctx context.Context, tx *sql.Tx) error {
			return openSealedSecrets(ctx, tx, keys)
		}},
	}
}

// selectTx reads rows into dest in a database/sql transaction, which migration steps are
// given.
func selectTx(ctx context.Context, tx *sql.Tx, dest any, query string) error {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	return sqlx.StructScan(rows, dest)
}

type clearSecrets struct {
	ID       uuid.UUID `db:"id"`
	Secret   string    `db:"secret"`
	Previous *string   `db:"previous_secret"`
}

// sealClearSecrets seals every webhook's clear secrets into the sealed columns.
func sealClearSecrets(ctx context.Context, tx *sql.Tx, keys *keyring.Keyring) error {
	var rows []clearSecrets
	err := selectTx(ctx, tx, &rows, `SELECT id, secret, previous_secret FROM webhooks`)
	if err != nil {
		return fmt.Errorf("read clear secrets: %w", err)
	}
	if len(rows) > 0 && keys == nil {
		return errors.New("webhooks hold secrets in clear and no encryption key is set: set SURVEYHOOKS_ENCRYPTION_KEYS")
	}
	for _, r := range rows {
		secret, err := keys.Seal([]byte(r.Secret), secretAAD(r.ID))
		if err != nil {
			return err
		}
		var previous []byte
		if r.Previous != nil {
			if previous, err = keys.Seal([]byte(*r.Previous), secretAAD(r.ID)); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE webhooks SET secret_sealed = $2, previous_secret_sealed = $3 WHERE id = $1`,
			r.ID, secret, previous)
		if err != nil {
			return fmt.Errorf("seal secret of webhook %s: %w", r.ID, err)
		}
	}
	return nil
}

// openSealedSecrets writes every webhook's sealed secrets back in clear, for the schema
// before they were sealed.
func openSealedSecrets(ctx context.Context, tx *sql.Tx, keys *keyring.Keyring) error {
	var rows []webhookRow
	err := selectTx(ctx, tx, &rows, `SELECT id, secret_sealed, previous_secret_sealed FROM webhooks`)
	if err != nil {
		return fmt.Errorf("read sealed secrets: %w", err)
	}
	if len(rows) > 0 && keys == nil {
		return errors.New("webhooks hold sealed secrets and no encryption key is set: set SURVEYHOOKS_ENCRYPTION_KEYS")
	}
	st := &Store{keys: keys}
	for _, r := range rows {
		w, err := st.open(r)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE webhooks SET secret = $2, previous_secret = $3 WHERE id = $1`,
			w.ID, w.Secret, w.PreviousSecret)
		if err != nil {
			return fmt.Errorf("open secret of webhook %s: %w", w.ID, err)
		}
	}
	return nil
}

// rekeyBatch is how many webhooks one Rekey statement re-seals: small enough that its row
// locks are held for milliseconds while the API and workers carry on.
const rekeyBatch = 500

const rekeyPageQuery = `
SELECT id, signing, secret_sealed, previous_secret_sealed, signing_key_sealed, previous_signing_key_sealed
FROM webhooks
WHERE id > $1 ORDER BY id LIMIT $2`

// A row is re-sealed only if its sealed values are still the ones read: a rotation that
// came in between already sealed its new secret or key under the current key.
const rekeyQuery = `
UPDATE webhooks SET secret_sealed = $6, previous_secret_sealed = $7,
	signing_key_sealed = $8, previous_signing_key_sealed = $9
WHERE id = $1 AND secret_sealed IS NOT DISTINCT FROM $2 AND previous_secret_sealed IS NOT DISTINCT FROM $3
	AND signing_key_sealed IS NOT DISTINCT FROM $4 AND previous_signing_key_sealed IS NOT DISTINCT FROM $5`

// current reports whether every sealed value given is sealed under the keyring's first
// key; nil values count as current.
func (s *Store) current(sealed ...[]byte) bool {
	for _, v := range sealed {
		if v != nil && !s.keys.Current(v) {
			return false
		}
	}
	return true
}

// reseal seals w's secrets and signing keys under the keyring's first key.
func (s *Store) reseal(w Webhook) (webhookRow, error) {
	var r webhookRow
	var err error
	seal := func(dst *[]byte, v *string, aad func(uuid.UUID) []byte) {
		if err == nil && v != nil {
			if *dst, err = s.keys.Seal([]byte(*v), aad(w.ID)); err != nil {
				err = fmt.Errorf("rekey webhook %s: %w", w.ID, err)
			}
		}
	}
	if w.Signing == SigningEd25519 {
		seal(&r.SigningKeySealed, &w.SigningKey, signingKeyAAD)
	} else {
		seal(&r.SecretSealed, &w.Secret, secretAAD)
	}
	seal(&r.PreviousSecretSealed, w.PreviousSecret, secretAAD)
	seal(&r.PreviousSigningKeySealed, w.PreviousSigningKey, signingKeyAAD)
	return r, err
}

// Rekey re-seals every webhook secret and signing key not sealed under the keyring's first key, in
// batches, while everything else runs. A row that changed between its read and its write
// (a rotation moves the current secret, perhaps under an old key, into the previous one)
// is read again by another pass. It returns how many webhooks it re-sealed.
func (s *Store) Rekey(ctx context.Context) (int, error) {
	done := 0
	for {
		n, changed, err := s.rekeyPass(ctx)
		done += n
		if err != nil || changed == 0 {
			return done, err
		}
	}
}

// rekeyPass re-seals what it can in one scan of the table; changed counts the rows that
// changed under it.
func (s *Store) rekeyPass(ctx context.Context) (done, changed int, err error) {
	after := uuid.Nil
	for {
		var rows []webhookRow
		if err := s.q.SelectContext(ctx, &rows, rekeyPageQuery, after, rekeyBatch); err != nil {
			return done, changed, fmt.Errorf("rekey: read webhooks: %w", err)
		}
		if len(rows) == 0 {
			return done, changed, nil
		}
		for _, r := range rows {
			after = r.ID
			if s.current(r.SecretSealed, r.PreviousSecretSealed, r.SigningKeySealed, r.PreviousSigningKeySealed) {
				continue
			}
			w, err := s.open(r)
			if err != nil {
				return done, changed, fmt.Errorf("rekey: %w", err)
			}
			resealed, err := s.reseal(w)
			if err != nil {
				return done, changed, err
			}
			res, err := s.q.ExecContext(ctx, rekeyQuery, w.ID,
				r.SecretSealed, r.PreviousSecretSealed, r.SigningKeySealed, r.PreviousSigningKeySealed,
				resealed.SecretSealed, resealed.PreviousSecretSealed, resealed.SigningKeySealed, resealed.PreviousSigningKeySealed)
			if err != nil {
				return done, changed, fmt.Errorf("rekey webhook %s: %w", w.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				done++
			} else {
				changed++
			}
		}
	}
}
