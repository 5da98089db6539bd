package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/surveyhooks/surveyhooks/store"
)

// runRekey re-seals every webhook secret under the first key of
// SURVEYHOOKS_ENCRYPTION_KEYS, the middle step of replacing a key: put the new key first
// (keeping the old one after it) in every process, run rekey, then drop the old key. It
// runs beside serve and worker.
func runRekey(ctx context.Context, cfg config) error {
	return rekey(ctx, cfg, os.Stdout)
}

// rekey is runRekey writing its result to stdout.
func rekey(ctx context.Context, cfg config, stdout io.Writer) error {
	if err := requireStore(cfg); err != nil {
		return err
	}
	db, err := openDB(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return err
	}
	defer db.Close()
	// A database older than sealed secrets gets them sealed here, under the same first key.
	if err := store.Migrate(ctx, db.DB, cfg.EncryptionKeys); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	n, err := store.New(db, cfg.EncryptionKeys).Rekey(ctx)
	if err != nil {
		// The rows re-sealed so far stay so; running rekey again finishes the rest.
		return fmt.Errorf("after re-sealing %d webhooks (run rekey again to finish): %w", n, err)
	}
	fmt.Fprintf(stdout, "re-sealed the secrets of %d webhooks under the first key of SURVEYHOOKS_ENCRYPTION_KEYS; "+
		"the other keys may go once every process runs with this first key\n", n)
	return nil
}
