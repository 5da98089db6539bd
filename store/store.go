// Package store keeps surveyhooks' state in PostgreSQL: webhooks, events, deliveries,
// delivery attempts, account keys and the audit log. It maps database errors to the domain errors below; only the API layer
// turns those into HTTP statuses.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers DriverName
	"github.com/jmoiron/sqlx"

	"github.com/surveyhooks/surveyhooks/keyring"
)

// DriverName is the database/sql driver a Store's pool is opened with: pgx, whose statement
// cache prepares each query once per connection and sends every later execution in one
// round trip, where lib/pq parses each statement again, in two round trips.
const DriverName = "pgx"

var (
	// ErrNotFound means the row does not exist (or belongs to another scope).
	ErrNotFound = errors.New("not found")
	// ErrDuplicate means a unique constraint refused the row.
	ErrDuplicate = errors.New("duplicate")
)

// Store runs surveyhooks' queries on one PostgreSQL connection pool. It batches nothing
// itself: the callers that share statements among concurrent calls (the Deliver activity's
// attempt records, the delivery service's dispatch marks) own that decision.
type Store struct {
	db *sqlx.DB
	// q runs the statements: the pool, or the transaction of an Audited change.
	q queryer
	// keys seal and open webhook secrets.
	keys *keyring.Keyring
}

// queryer is what both the pool and a transaction run statements with.
type queryer interface {
	sqlx.ExtContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

// New returns a Store over db, which must be opened with DriverName, sealing secrets with
// keys.
func New(db *sqlx.DB, keys *keyring.Keyring) *Store {
	return &Store{db: db, q: db, keys: keys}
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

// atomically runs fn in the transaction s already runs in (an Audited change), or else in a
// transaction of its own.
func (s *Store) atomically(ctx context.Context, fn func(q queryer) error) error {
	if _, ok := s.q.(*sqlx.Tx); ok {
		return fn(s.q)
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return fn(tx) })
}

// mapError turns driver errors into the domain errors callers can test with errors.Is.
func mapError(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: %s", ErrDuplicate, pgErr.ConstraintName)
	}
	return err
}

// IsUnavailable reports whether err means that PostgreSQL could not be reached or is not
// taking queries right now (stopped, starting, shutting down, connection cut): asking
// again later may succeed, so the API answers 503 rather than 500.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	// pgx: a connection that could not be made, or that ended while a query was in flight
	// (the server stopped mid-query).
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01-57P03: admin or crash shutdown, cannot
		// connect now (starting up or shutting down); 53300: too many connections.
		code := pgErr.Code
		return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03" || code == "53300"
	}
	return false
}
