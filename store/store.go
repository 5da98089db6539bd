// Package store keeps surveyhooks' state in PostgreSQL: webhooks, events, deliveries and
// delivery attempts. It maps database errors to the domain errors below; only the API layer
// turns those into HTTP statuses.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

var (
	// ErrNotFound means the row does not exist (or belongs to another survey).
	ErrNotFound = errors.New("not found")
	// ErrDuplicate means a unique constraint refused the row.
	ErrDuplicate = errors.New("duplicate")
)

// Store runs surveyhooks' queries on one PostgreSQL connection pool.
type Store struct {
	db *sqlx.DB
}

// New returns a Store over db, which must use the "postgres" (lib/pq) driver.
func New(db *sqlx.DB) *Store {
	return &Store{db: db}
}

// DB returns the underlying pool (for readiness checks and tests).
func (s *Store) DB() *sqlx.DB {
	return s.db
}

// Ping reports whether PostgreSQL answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// inTx runs fn in a transaction, committing when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// mapError turns driver errors into the domain errors callers can test with errors.Is.
func mapError(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" {
		return fmt.Errorf("%w: %s", ErrDuplicate, pqErr.Constraint)
	}
	return err
}
