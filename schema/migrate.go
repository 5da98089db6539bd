// Package schema owns surveyhooks' database schema: the numbered SQL migrations embedded
// in the binary, and the code that applies and reverts them. A migration that must change
// rows in a way SQL cannot (encrypting them under the application's keys) has a Go step,
// which the caller passes in (store.Migrate passes the store's).
package schema

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
)

// migrations holds migrations/NNNN_name.up.sql and NNNN_name.down.sql. Each migration
// runs in a transaction, so none may use statements that refuse one (CREATE INDEX
// CONCURRENTLY, ALTER TYPE ... ADD VALUE before PostgreSQL 12).
//
//go:embed migrations/*.sql
var migrations embed.FS

// Migration is one numbered schema change.
type Migration struct {
	// Version orders migrations and identifies them in schema_migrations.
	Version int
	// Name is the file name's descriptive part, e.g. "init".
	Name string
	// Up applies the change; Down reverts it.
	Up, Down string
}

// Step is Go code belonging to one migration. It runs in the migration's transaction,
// after the migration's SQL, both going up and going down.
type Step func(ctx context.Context, tx *sql.Tx) error

// Steps are the Go steps of the migrations that have one, by version.
type Steps map[int]struct{ Up, Down Step }

// lockKey is the pg_advisory_lock key every migrating process takes, so that processes
// starting together apply each migration once. Any fixed number works; this one spells
// "shookmig" in ASCII.
const lockKey int64 = 0x73686f6f6b6d6967

const (
	lockQuery   = `SELECT pg_advisory_lock($1::bigint)`
	unlockQuery = `SELECT pg_advisory_unlock($1::bigint)`
	createTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`
	appliedQuery  = `SELECT version FROM schema_migrations ORDER BY version`
	recordApplied = `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`
	deleteApplied = `DELETE FROM schema_migrations WHERE version = $1`
)

// fileName is NNNN_name.up.sql or NNNN_name.down.sql: at least four digits, then a
// lower-case name.
var fileName = regexp.MustCompile(`^([0-9]{4,})_([a-z0-9][a-z0-9_]*)\.(up|down)\.sql$`)

// Versions lists the migrations known to this binary, in version order.
func Versions() ([]Migration, error) {
	return load(embedded())
}

// Migrate applies every pending migration in version order, each in its own transaction
// together with its Go step and its row in schema_migrations. Several processes may run it
// at once: they take turns on an advisory lock.
func Migrate(ctx context.Context, db *sql.DB, steps Steps) error {
	return migrateFS(ctx, db, embedded(), steps)
}

// Rollback reverts applied migrations, newest first, until only versions <= target remain;
// target 0 reverts them all. Each revert runs in its own transaction.
func Rollback(ctx context.Context, db *sql.DB, steps Steps, target int) error {
	return rollbackFS(ctx, db, embedded(), steps, target)
}

func embedded() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the directory is embedded at compile time
	}
	return sub
}

func migrateFS(ctx context.Context, db *sql.DB, fsys fs.FS, steps Steps) error {
	all, err := load(fsys)
	if err != nil {
		return err
	}
	return withLock(ctx, db, func(conn *sql.Conn) error {
		applied, err := appliedVersions(ctx, conn)
		if err != nil {
			return err
		}
		for _, m := range all {
			if slices.Contains(applied, m.Version) {
				continue
			}
			err := inTx(ctx, conn, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, m.Up); err != nil {
					return err
				}
				if step := steps[m.Version].Up; step != nil {
					if err := step(ctx, tx); err != nil {
						return err
					}
				}
				_, err := tx.ExecContext(ctx, recordApplied, m.Version, m.Name)
				return err
			})
			if err != nil {
				return fmt.Errorf("apply migration %s: %w", m.label(), err)
			}
		}
		return nil
	})
}

func rollbackFS(ctx context.Context, db *sql.DB, fsys fs.FS, steps Steps, target int) error {
	if target < 0 {
		return fmt.Errorf("roll back to version %d: versions start at 1, 0 reverts all", target)
	}
	all, err := load(fsys)
	if err != nil {
		return err
	}
	return withLock(ctx, db, func(conn *sql.Conn) error {
		applied, err := appliedVersions(ctx, conn)
		if err != nil {
			return err
		}
		slices.Reverse(applied)
		for _, v := range applied {
			if v <= target {
				break
			}
			i := slices.IndexFunc(all, func(m Migration) bool { return m.Version == v })
			if i < 0 {
				return fmt.Errorf("roll back migration %04d: this binary does not know it; roll back with the binary that applied it", v)
			}
			m := all[i]
			err := inTx(ctx, conn, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, m.Down); err != nil {
					return err
				}
				if step := steps[m.Version].Down; step != nil {
					if err := step(ctx, tx); err != nil {
						return err
					}
				}
				_, err := tx.ExecContext(ctx, deleteApplied, m.Version)
				return err
			})
			if err != nil {
				return fmt.Errorf("roll back migration %s: %w", m.label(), err)
			}
		}
		return nil
	})
}

// withLock runs fn on one connection holding the migration lock. The lock belongs to the
// session, not to a transaction, so it spans the run's many transactions; that is also
// why the connection must not go back to the pool still holding it.
func withLock(ctx context.Context, db *sql.DB, fn func(*sql.Conn) error) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("get connection: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, lockQuery, lockKey); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), unlockQuery, lockKey); uerr != nil {
			// Discard the connection: closing the session is what releases the lock now.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			err = errors.Join(err, fmt.Errorf("release migration lock: %w", uerr))
		}
	}()
	if _, err := conn.ExecContext(ctx, createTable); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	return fn(conn)
}

func appliedVersions(ctx context.Context, conn *sql.Conn) ([]int, error) {
	rows, err := conn.QueryContext(ctx, appliedQuery)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	var versions []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return versions, nil
}

func inTx(ctx context.Context, conn *sql.Conn, fn func(*sql.Tx) error) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the original error matters; a failed rollback ends the tx anyway
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// load reads and checks the migration files in fsys's root, returning them in version
// order.
func load(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	byVersion := map[int]*Migration{}
	seen := map[int]map[string]bool{} // version -> directions found
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		parts := fileName.FindStringSubmatch(e.Name())
		if parts == nil {
			return nil, fmt.Errorf("migration file %q: name must look like 0001_create_things.up.sql or .down.sql", e.Name())
		}
		version, err := strconv.Atoi(parts[1])
		if err != nil || version == 0 {
			return nil, fmt.Errorf("migration file %q: version must be a number from 1", e.Name())
		}
		name, direction := parts[2], parts[3]
		data, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration: %w", err)
		}
		m, ok := byVersion[version]
		if !ok {
			m = &Migration{Version: version, Name: name}
			byVersion[version] = m
			seen[version] = map[string]bool{}
		}
		if m.Name != name || seen[version][direction] {
			return nil, fmt.Errorf("migration file %q: version %04d is already used by %04d_%s", e.Name(), version, version, m.Name)
		}
		seen[version][direction] = true
		if direction == "up" {
			m.Up = string(data)
		} else {
			m.Down = string(data)
		}
	}
	all := make([]Migration, 0, len(byVersion))
	for _, m := range byVersion {
		all = append(all, *m)
	}
	slices.SortFunc(all, func(a, b Migration) int { return a.Version - b.Version })
	for _, m := range all {
		for _, direction := range []string{"up", "down"} {
			if !seen[m.Version][direction] {
				return nil, fmt.Errorf("migration %s has no %s file (%s.%s.sql)", m.label(), direction, m.label(), direction)
			}
		}
	}
	return all, nil
}

// label is how files and errors name a migration: 0001_init.
func (m Migration) label() string {
	return fmt.Sprintf("%04d_%s", m.Version, m.Name)
}
