package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/keyring"
	"github.com/surveyhooks/surveyhooks/localpg"
	"github.com/surveyhooks/surveyhooks/localtemporal"
	"github.com/surveyhooks/surveyhooks/store"
)

// runDev runs everything in one process on embedded defaults: a PostgreSQL it manages in
// the data folder, or under pgElsewhereRoot when the server's OS user cannot enter it
// (unless DATABASE_URL is given), an in-process Temporal server persisted in the data
// folder with the Web UI, the worker, the dispatcher and the API. Everything is where it
// was on the next start.
func runDev(ctx context.Context, cfg config) (err error) {
	logger := newLogger(cfg, "text")
	warnUnknownVariables(logger, os.Environ())
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data folder %s: %w", cfg.DataDir, err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("create data folder (SURVEYHOOKS_DATA_DIR): %w", err)
	}
	keys, keysWhere, createdKeys, err := devEncryptionKeys(cfg, dataDir)
	if err != nil {
		return err
	}
	if createdKeys {
		logger.Info("generated an encryption key for dev's webhook secrets; it is kept in the data folder",
			"file", filepath.Join(dataDir, encryptionKeyFile))
	}
	// Refuse a taken API port before starting anything that takes seconds.
	l, err := listen(cfg.Addr, "SURVEYHOOKS_ADDR")
	if err != nil {
		return err
	}
	defer l.Close()
	ml, err := listen(cfg.MetricsAddr, "SURVEYHOOKS_METRICS_ADDR")
	if err != nil {
		return err
	}
	defer ml.Close()
	// Before anything that traces or counts; stopped last, after the cleanups below.
	metrics, stopTelemetry, err := startTelemetry(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer stopTelemetry()

	// cleanups run in reverse order on the way out, PostgreSQL last.
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	// shownURL is the one printed for people (psql); databaseURL is what this process uses.
	databaseURL, shownURL := cfg.DatabaseURL, cfg.DatabaseURL
	var pgFiles string
	if databaseURL == "" {
		pgDir := filepath.Join(dataDir, "postgres")
		cluster, err := localpg.Start(ctx, localpg.Options{
			DataDir:   pgDir,
			Elsewhere: pgElsewhere(dataDir),
			Logger:    logger.With("component", "postgres"),
		})
		if err != nil {
			return err
		}
		cleanups = append(cleanups, func() {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := cluster.Stop(stopCtx); err != nil {
				logger.Error("stop postgres", "err", err)
			}
		})
		if err := cluster.CreateDatabase(ctx, "surveyhooks"); err != nil {
			return err
		}
		databaseURL, shownURL = cluster.LocalURL("surveyhooks"), cluster.URL("surveyhooks")
		pgFiles = "files in " + cluster.DataDir
		if cluster.DataDir != pgDir {
			pgFiles += " (linked from the data folder)"
		}
		pgFiles += ", password in its " + localpg.PasswordFile
	}
	db, err := openDB(ctx, databaseURL, cfg.DBMaxConns)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { db.Close() })
	if err := store.Migrate(ctx, db.DB, keys); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}

	temporal, err := localtemporal.Start(ctx, localtemporal.Options{
		DataDir:          filepath.Join(dataDir, "temporal"),
		FrontendAddr:     cfg.TemporalAddress,
		UIAddr:           cfg.TemporalUIAddr,
		Namespace:        cfg.TemporalNamespace,
		SearchAttributes: delivery.SearchAttributes(),
		Logger:           logger.With("component", "temporal-server"),
	})
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() {
		if err := temporal.Stop(); err != nil {
			logger.Error("stop temporal", "err", err)
		}
	})
	tc, err := dialTemporal(ctx, cfg, logger, true)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, tc.Close)

	// A key given in the environment is the user's secret: the banner says where it came
	// from and shows only a key dev generated.
	shownKey := "from SURVEYHOOKS_API_KEYS (not shown)"
	if len(cfg.APIKeys) == 0 {
		key, created, err := devAPIKey(dataDir)
		if err != nil {
			return err
		}
		cfg.APIKeys, shownKey = []string{key}, key
		if created {
			logger.Info("generated an API key for dev; it is kept in the data folder", "file", filepath.Join(dataDir, apiKeyFile))
		}
	}

	st := store.New(db, keys)
	w := newWorker(cfg, tc, st, logger)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	cleanups = append(cleanups, w.Stop)
	ensureRetention(ctx, cfg, tc, logger)
	d := newDeliveries(cfg, st, tc, logger)
	srv := newAPI(cfg, st, d, logger)
	handler, err := newHTTPHandler(cfg, st, srv, temporal.UIURL(), logger)
	if err != nil {
		return err
	}

	apiURL := hostURL(l.Addr().String())
	postgres := redactURL(shownURL)
	if pgFiles != "" {
		postgres += "\n               " + pgFiles
	}
	fmt.Printf(`
surveyhooks dev is running
  API          %s   (try: curl %s/readyz)
  API key      %s
  Console      %s/console/   (sign in with the API key)
  Encryption   key %s
  Temporal UI  %s
  Temporal     %s  namespace %s
  Metrics      %s/metrics
  PostgreSQL   %s
  data folder  %s
Stop with Ctrl-C; the next start finds everything where it was.

`, apiURL, apiURL, shownKey, apiURL, keysWhere, temporal.UIURL(), temporal.FrontendAddr(), cfg.TemporalNamespace,
		hostURL(ml.Addr().String()), postgres, dataDir)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.Run(gctx) })
	g.Go(func() error { return serveHTTP(gctx, l, handler, srv.LongestRequest(), logger) })
	g.Go(func() error { return serveHTTP(gctx, ml, metrics, metricsWriteTimeout, logger) })
	err = g.Wait()
	logger.Info("stopping")
	return err
}

// pgElsewhereRoot holds dev's PostgreSQL clusters whose data folder the server's OS user
// cannot enter, as when root runs dev from a checkout under /root (mode 700).
const pgElsewhereRoot = "/var/lib/surveyhooks"

// pgElsewhere is where the PostgreSQL of the data folder dataDir (absolute) goes when it
// cannot stay inside it. The name is the folder's own, readable in a listing, with a
// hash of its whole path, so that two checkouts' ".surveyhooks" folders never meet.
func pgElsewhere(dataDir string) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, strings.TrimLeft(filepath.Base(dataDir), "."))
	if len(name) > 40 {
		name = name[:40]
	}
	if name == "" {
		name = "data"
	}
	sum := sha256.Sum256([]byte(dataDir))
	return filepath.Join(pgElsewhereRoot, name+"-"+hex.EncodeToString(sum[:4]))
}

// Files dev keeps in the data folder, beside PostgreSQL's and Temporal's.
const (
	apiKeyFile        = "api-key"
	encryptionKeyFile = "encryption.key"
)

// devAPIKey returns dev's API key, generated on the first start.
func devAPIKey(dataDir string) (key string, created bool, err error) {
	return devSecret(filepath.Join(dataDir, apiKeyFile), "dev API key", func() string {
		raw := make([]byte, 24)
		_, _ = rand.Read(raw) // never fails (crypto/rand)
		return "shk_dev_" + base64.RawURLEncoding.EncodeToString(raw)
	})
}

// devEncryptionKeys returns the keys that seal dev's webhook secrets:
// SURVEYHOOKS_ENCRYPTION_KEYS when it is set, or else a key generated on the first start,
// which the secrets in dev's database need on every later one. where says which, for the
// banner, without the key.
func devEncryptionKeys(cfg config, dataDir string) (keys *keyring.Keyring, where string, created bool, err error) {
	if cfg.EncryptionKeys != nil {
		return cfg.EncryptionKeys, "from SURVEYHOOKS_ENCRYPTION_KEYS (not shown)", false, nil
	}
	path := filepath.Join(dataDir, encryptionKeyFile)
	key, created, err := devSecret(path, "dev encryption key", keyring.Generate)
	if err != nil {
		return nil, "", false, err
	}
	if keys, err = keyring.Parse(key); err != nil {
		return nil, "", false, fmt.Errorf("dev encryption key in %s: %w", path, err)
	}
	return keys, "in " + path + " (keep it: webhook secrets need it)", created, nil
}

// devSecret returns the secret kept in the file at path, making it with generate on the
// first start and keeping it there (mode 0600) so that it survives restarts.
func devSecret(path, what string, generate func() string) (secret string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("read %s: %w", what, err)
	}
	secret = generate()
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("save %s: %w", what, err)
	}
	return secret, true, nil
}
