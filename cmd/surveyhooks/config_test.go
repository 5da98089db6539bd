package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/api"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/keyring"
	"github.com/surveyhooks/surveyhooks/retention"
	"github.com/surveyhooks/surveyhooks/signature"
)

// mapLookup serves loadConfig from a map.
func mapLookup(env map[string]string) envLookup {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

func TestLoadConfigReadsExactlyKnownVariables(t *testing.T) {
	t.Parallel()
	var read []string
	_, err := loadConfig(func(name string) (string, bool) {
		read = append(read, name)
		return "", false
	})
	require.NoError(t, err)
	// Both ways: a variable loadConfig reads must be listed (or the deployment check would
	// refuse it), and a listed one must be read (or setting it would do nothing).
	require.ElementsMatch(t, knownVariables, read)
	require.Len(t, slices.Compact(slices.Sorted(slices.Values(knownVariables))), len(knownVariables), "duplicates in knownVariables")
}

func TestLoadConfigOperationsDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(mapLookup(nil))
	require.NoError(t, err)
	require.Equal(t, 30*24*time.Hour, cfg.Retention)
	require.Equal(t, retention.DefaultMaxAge, cfg.Retention)
	require.Equal(t, 30*time.Second, cfg.ShutdownTimeout)
	require.Equal(t, api.DefaultRequestTimeout, cfg.RequestTimeout)
	require.False(t, cfg.TemporalTLS)
	require.Empty(t, cfg.TemporalAPIKey)
}

func TestLoadConfigDatabaseConnections(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(mapLookup(nil))
	require.NoError(t, err)
	require.Equal(t, defaultDBMaxConns, cfg.DBMaxConns)
	cfg, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_DB_MAX_CONNS": " 24 "}))
	require.NoError(t, err)
	require.Equal(t, 24, cfg.DBMaxConns)
	for _, bad := range []string{"1", "0", "-3", "many"} {
		_, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_DB_MAX_CONNS": bad}))
		require.ErrorContains(t, err, "SURVEYHOOKS_DB_MAX_CONNS=", bad)
	}
}

func TestLoadConfigDisablePolicy(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(mapLookup(nil))
	require.NoError(t, err)
	require.Equal(t, delivery.DisablePolicy{After: 5 * 24 * time.Hour, MinFailures: 10, FailingAfter: 5}, cfg.Disable)
	cfg, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_DISABLE_AFTER": "36h", "SURVEYHOOKS_DISABLE_MIN_FAILURES": "3",
		"SURVEYHOOKS_FAILING_AFTER": "0"}))
	require.NoError(t, err)
	require.Equal(t, delivery.DisablePolicy{After: 36 * time.Hour, MinFailures: 3}, cfg.Disable)
	cfg, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_DISABLE_AFTER": "0"}))
	require.NoError(t, err)
	require.Zero(t, cfg.Disable.After, "0 never disables for failures")
	for name, bad := range map[string]string{"SURVEYHOOKS_DISABLE_AFTER": "-1h", "SURVEYHOOKS_DISABLE_MIN_FAILURES": "0",
		"SURVEYHOOKS_FAILING_AFTER": "-2"} {
		_, err = loadConfig(mapLookup(map[string]string{name: bad}))
		require.ErrorContains(t, err, name+"=")
	}
	_, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_DISABLE_AFTER": "5 days"}))
	require.ErrorContains(t, err, "SURVEYHOOKS_DISABLE_AFTER=")
}

func TestLoadConfigNoticeAccount(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(mapLookup(nil))
	require.NoError(t, err)
	require.Empty(t, cfg.NoticeAccount)
	cfg, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_NOTICE_ACCOUNT": " ops "}))
	require.NoError(t, err)
	require.Equal(t, "ops", cfg.NoticeAccount)
	_, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_NOTICE_ACCOUNT": "ops/team"}))
	require.ErrorContains(t, err, "SURVEYHOOKS_NOTICE_ACCOUNT=")
}

func TestLoadConfigRecoveryRate(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(mapLookup(nil))
	require.NoError(t, err)
	require.Equal(t, delivery.DefaultRecoveryRate, cfg.RecoveryRate)
	cfg, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_RECOVERY_RATE": "2.5"}))
	require.NoError(t, err)
	require.Equal(t, 2.5, cfg.RecoveryRate)
	for _, bad := range []string{"0", "-1", "fast", "Inf"} {
		_, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_RECOVERY_RATE": bad}))
		require.ErrorContains(t, err, "SURVEYHOOKS_RECOVERY_RATE=", bad)
	}
}

func TestLoadConfigEndpointConcurrency(t *testing.T) {
	t.Parallel()
	for value, want := range map[string]int{"": activities.DefaultEndpointConcurrency, "4": 4, " 64 ": 64, "0": -1} {
		cfg, err := loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_ENDPOINT_CONCURRENCY": value}))
		require.NoError(t, err, value)
		require.Equal(t, want, cfg.EndpointConcurrency, value)
	}
	for _, bad := range []string{"-1", "many", "1.5"} {
		_, err := loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_ENDPOINT_CONCURRENCY": bad}))
		require.ErrorContains(t, err, "SURVEYHOOKS_ENDPOINT_CONCURRENCY=", bad)
	}
}

func TestLoadConfigRetention(t *testing.T) {
	t.Parallel()
	for value, want := range map[string]time.Duration{
		"0":     0,
		"0s":    0,
		"168h":  7 * 24 * time.Hour,
		" 1h ":  time.Hour,
		"2160h": 90 * 24 * time.Hour,
	} {
		cfg, err := loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_RETENTION": value}))
		require.NoError(t, err, value)
		require.Equal(t, want, cfg.Retention, value)
	}
	for _, value := range []string{"30m", "30d", "-720h", "forever"} {
		_, err := loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_RETENTION": value}))
		require.ErrorContains(t, err, "SURVEYHOOKS_RETENTION", value)
	}
}

func TestLoadConfigTemporalConnectionAndShutdown(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(mapLookup(map[string]string{
		"TEMPORAL_TLS":                 "true",
		"TEMPORAL_TLS_CERT":            "/certs/client.pem",
		"TEMPORAL_TLS_KEY":             "/certs/client.key",
		"TEMPORAL_TLS_CA":              "/certs/ca.pem",
		"TEMPORAL_TLS_SERVER_NAME":     "temporal.internal",
		"TEMPORAL_API_KEY":             "key-123",
		"SURVEYHOOKS_SHUTDOWN_TIMEOUT": "45s",
		"SURVEYHOOKS_REQUEST_TIMEOUT":  "10s",
	}))
	require.NoError(t, err)
	require.True(t, cfg.TemporalTLS)
	require.Equal(t, "/certs/client.pem", cfg.TemporalTLSCert)
	require.Equal(t, "/certs/client.key", cfg.TemporalTLSKey)
	require.Equal(t, "/certs/ca.pem", cfg.TemporalTLSCA)
	require.Equal(t, "temporal.internal", cfg.TemporalTLSServerName)
	require.Equal(t, "key-123", cfg.TemporalAPIKey)
	require.Equal(t, 45*time.Second, cfg.ShutdownTimeout)
	require.Equal(t, 10*time.Second, cfg.RequestTimeout)

	_, err = loadConfig(mapLookup(map[string]string{"TEMPORAL_TLS": "yes please", "SURVEYHOOKS_SHUTDOWN_TIMEOUT": "0", "SURVEYHOOKS_REQUEST_TIMEOUT": "soon"}))
	require.ErrorContains(t, err, "TEMPORAL_TLS=")
	require.ErrorContains(t, err, "SURVEYHOOKS_SHUTDOWN_TIMEOUT=")
	require.ErrorContains(t, err, "SURVEYHOOKS_REQUEST_TIMEOUT=")
}

func TestLoadConfigEncryptionKeys(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(mapLookup(nil))
	require.NoError(t, err)
	require.Nil(t, cfg.EncryptionKeys, "unset: dev makes its own, serve and worker refuse")

	first, second := keyring.Generate(), keyring.Generate()
	cfg, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_ENCRYPTION_KEYS": " " + first + ", " + second + " "}))
	require.NoError(t, err)
	require.NotNil(t, cfg.EncryptionKeys)
	sealed, err := cfg.EncryptionKeys.Seal([]byte("whsec_x"), nil)
	require.NoError(t, err)
	firstOnly, err := keyring.Parse(first)
	require.NoError(t, err)
	require.True(t, firstOnly.Current(sealed), "the first key encrypts")

	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, bad := range []string{"not a key!", short, first + ",not-base64!", first + "," + first} {
		_, err := loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_ENCRYPTION_KEYS": bad}))
		require.ErrorContains(t, err, "SURVEYHOOKS_ENCRYPTION_KEYS", bad)
		// The message names the bad key by its place: it never shows a key, good or bad.
		require.NotContains(t, err.Error(), first)
		require.NotContains(t, err.Error(), short)
		require.NotContains(t, err.Error(), "not-base64")
	}
	_, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_ENCRYPTION_KEYS": "not a key!"}))
	require.ErrorContains(t, err, "openssl rand -base64 32", "says how to make a key")
}

// TestCommandsRefuseWithoutEncryptionKeys: the commands that read webhooks refuse to start
// without SURVEYHOOKS_ENCRYPTION_KEYS, before they open anything, in one line that says
// how to make a key.
func TestCommandsRefuseWithoutEncryptionKeys(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(mapLookup(map[string]string{
		"DATABASE_URL":         "postgres://u:p@127.0.0.1:1/sh",
		"SURVEYHOOKS_API_KEYS": "k",
		// Taken or not, these are never listened on.
		"SURVEYHOOKS_ADDR":         "127.0.0.1:1",
		"SURVEYHOOKS_METRICS_ADDR": "127.0.0.1:1",
	}))
	require.NoError(t, err)
	for name, run := range map[string]func(context.Context, config) error{
		"serve":  runServe,
		"worker": runWorker,
		"rekey":  runRekey,
	} {
		err := run(t.Context(), cfg)
		require.ErrorIs(t, err, errNoEncryptionKeys, name)
		require.Equal(t, err.Error(), firstLine(err), name)
		require.Contains(t, err.Error(), "SURVEYHOOKS_ENCRYPTION_KEYS is not set", name)
		require.Contains(t, err.Error(), "openssl rand -base64 32", name)
	}
}

func TestLoadConfigAPIRateLimit(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(mapLookup(nil))
	require.NoError(t, err)
	require.Equal(t, float64(api.DefaultRateLimit), cfg.RateLimit)
	require.Zero(t, cfg.RateBurst, "the API's default: twice the rate")

	for value, want := range map[string]float64{"50": 50, " 0.5 ": 0.5, "1e3": 1000, "off": -1, "OFF": -1} {
		cfg, err := loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_API_RATE_LIMIT": value}))
		require.NoError(t, err, value)
		require.Equal(t, want, cfg.RateLimit, value)
	}
	cfg, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_API_RATE_BURST": " 20 "}))
	require.NoError(t, err)
	require.Equal(t, 20, cfg.RateBurst)

	for _, bad := range []string{"0", "-5", "fast", "NaN", "Inf", "10/s"} {
		_, err := loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_API_RATE_LIMIT": bad}))
		require.ErrorContains(t, err, "SURVEYHOOKS_API_RATE_LIMIT=", bad)
	}
	for _, bad := range []string{"0", "-1", "1.5", "many"} {
		_, err := loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_API_RATE_BURST": bad}))
		require.ErrorContains(t, err, "SURVEYHOOKS_API_RATE_BURST=", bad)
	}
	// Every bad value at once.
	_, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_API_RATE_LIMIT": "fast", "SURVEYHOOKS_API_RATE_BURST": "many"}))
	require.ErrorContains(t, err, "SURVEYHOOKS_API_RATE_LIMIT=")
	require.ErrorContains(t, err, "SURVEYHOOKS_API_RATE_BURST=")
}

func TestLoadConfigSignatureProfile(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(mapLookup(nil))
	require.NoError(t, err)
	require.Equal(t, signature.DefaultProfile, cfg.Signature)
	require.Equal(t, signature.Profile{Header: "X-Webhook-Signature", Format: "sha256=hex"}, cfg.Signature)

	cfg, err = loadConfig(mapLookup(map[string]string{
		"SURVEYHOOKS_SIGNATURE_HEADER": " X-SmartSurvey-Signature ", "SURVEYHOOKS_SIGNATURE_FORMAT": "hex"}))
	require.NoError(t, err)
	require.Equal(t, signature.Profile{Header: "X-Smartsurvey-Signature", Format: signature.FormatHex}, cfg.Signature)
	cfg, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_SIGNATURE_FORMAT": "hex"}))
	require.NoError(t, err)
	require.Equal(t, signature.Profile{Header: "X-Webhook-Signature", Format: signature.FormatHex}, cfg.Signature, "seed 003's receivers")

	for env, want := range map[[2]string]string{
		{"X Signature", ""}:        "not a valid HTTP header name",
		{"webhook-signature", ""}:  "sets for another purpose",
		{"Webhook-Timestamp", ""}:  "sets for another purpose",
		{"", "base64"}:             `"base64" is not one of`,
		{"X-Sig:", "sha256=hex "}:  "not a valid HTTP header name",
		{"X-Webhook-Delivery", ""}: "sets for another purpose",
	} {
		_, err := loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_SIGNATURE_HEADER": env[0], "SURVEYHOOKS_SIGNATURE_FORMAT": env[1]}))
		require.ErrorContains(t, err, "SURVEYHOOKS_SIGNATURE_HEADER/SURVEYHOOKS_SIGNATURE_FORMAT", env)
		require.ErrorContains(t, err, want, env)
	}
}

func TestWarnUnknownVariablesNamesTyposButNotValues(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	warnUnknownVariables(logger, []string{
		"SURVEYHOOKS_RETENTON=720h", // misspelt
		"SURVEYHOOKS_API_KEYS=secret-key",
		"HOME=/root",
		"TEMPORAL_CLI_ADDRESS=x:7233", // another tool's
	})
	out := buf.String()
	require.Contains(t, out, "SURVEYHOOKS_RETENTON")
	require.NotContains(t, out, "720h")
	require.NotContains(t, out, "SURVEYHOOKS_API_KEYS")
	require.NotContains(t, out, "HOME")
	require.NotContains(t, out, "TEMPORAL_CLI_ADDRESS")
	require.Equal(t, 1, strings.Count(out, "\n"))
}

// composeFile is the part of docker-compose.yml the deployment checks read.
type composeFile struct {
	Services map[string]struct {
		Image       string `yaml:"image"`
		Build       any    `yaml:"build"`
		Command     any    `yaml:"command"`
		Environment any    `yaml:"environment"`
	} `yaml:"services"`
}

// interpolation matches compose's ${NAME}, ${NAME:-default}, ${NAME-default},
// ${NAME:?error} and ${NAME?error}.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate resolves value as docker-compose does with vars (the .env file).
func interpolate(t *testing.T, value string, vars map[string]string) string {
	t.Helper()
	return interpolation.ReplaceAllStringFunc(value, func(m string) string {
		sub := interpolation.FindStringSubmatch(m)
		name, op, arg := sub[1], sub[2], sub[3]
		v, set := vars[name]
		switch op {
		case "":
			return v
		case ":-":
			if v == "" {
				return arg
			}
		case "-":
			if !set {
				return arg
			}
		case ":?", "?":
			require.True(t, set && (op == "?" || v != ""), "compose would refuse: %s", arg)
		}
		return v
	})
}

// environment reads a service's environment, a mapping or a list of NAME=value.
func environment(t *testing.T, service string, raw any) map[string]string {
	t.Helper()
	env := map[string]string{}
	switch e := raw.(type) {
	case nil:
	case map[string]any:
		for k, v := range e {
			if v == nil {
				env[k] = ""
				continue
			}
			s, ok := v.(string)
			require.True(t, ok, "service %s: quote the value of %s (%T): compose wants strings", service, k, v)
			env[k] = s
		}
	case []any:
		for _, item := range e {
			k, v, _ := strings.Cut(item.(string), "=")
			env[k] = v
		}
	default:
		t.Fatalf("service %s: environment is a %T", service, raw)
	}
	return env
}

// dotenv reads KEY=value lines, skipping comments and blank lines.
func dotenv(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	vars := map[string]string{}
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "%s: %q is not KEY=value", path, line)
		vars[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return vars
}

// TestDeploymentFilesSetOnlyKnownVariables checks docker-compose.yml and .env.example
// against the variables the binary reads: a misspelt or stale setting there would be
// silently ignored in production.
func TestDeploymentFilesSetOnlyKnownVariables(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	require.NoError(t, err)
	var compose composeFile
	require.NoError(t, yaml.Unmarshal(raw, &compose))
	vars := dotenv(t, filepath.Join(root, ".env.example"))
	// Every deployment makes its own encryption key: .env.example holds none that works (a
	// copied example must not encrypt with a published key), and the stack is checked
	// with one made here.
	if example, ok := vars["SURVEYHOOKS_ENCRYPTION_KEYS"]; ok {
		_, err := keyring.Parse(example)
		require.Error(t, err, ".env.example must not hold a usable SURVEYHOOKS_ENCRYPTION_KEYS")
	}
	vars["SURVEYHOOKS_ENCRYPTION_KEYS"] = keyring.Generate()

	ours := 0
	for name, svc := range compose.Services {
		// Only surveyhooks' own containers run this binary; the others (PostgreSQL,
		// Temporal, its UI) have variables of their own.
		if svc.Build == nil && !strings.Contains(svc.Image, "surveyhooks") {
			continue
		}
		ours++
		env := environment(t, name, svc.Environment)
		require.NotEmpty(t, env, "service %s has no environment", name)
		resolved := map[string]string{}
		for k, v := range env {
			require.Contains(t, knownVariables, k, "service %s sets %s, which surveyhooks does not read", name, k)
			// A surveyhooks setting in .env feeds the variable of the same name.
			for _, m := range interpolation.FindAllStringSubmatch(v, -1) {
				if src := m[1]; strings.HasPrefix(src, "SURVEYHOOKS_") || strings.HasPrefix(src, "TEMPORAL_") {
					require.Equal(t, k, src, "service %s: %s is set from ${%s}", name, k, src)
				}
			}
			resolved[k] = interpolate(t, v, vars)
		}
		// What the stack would run with is a valid configuration.
		cfg, err := loadConfig(mapLookup(resolved))
		require.NoError(t, err, "service %s", name)
		require.NotEmpty(t, cfg.DatabaseURL, "service %s", name)
		require.NotNil(t, cfg.EncryptionKeys, "service %s", name)
	}
	require.GreaterOrEqual(t, ours, 3, "migrate, api and worker run surveyhooks")

	// .env only feeds interpolation: a variable that docker-compose.yml never uses does
	// nothing, and a surveyhooks one must be one the binary reads.
	for name := range vars {
		require.Contains(t, string(raw), "${"+name, ".env.example sets %s, which docker-compose.yml never uses", name)
		if strings.HasPrefix(name, "SURVEYHOOKS_") || strings.HasPrefix(name, "TEMPORAL_") {
			require.Contains(t, knownVariables, name, ".env.example sets %s, which surveyhooks does not read", name)
		}
	}
}

func TestDatabaseConnectionsRequireTLSUnlessTheURLSaysOtherwise(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	for raw, want := range map[string]string{
		"postgres://u:p@db:5432/sh":                     "postgres://u:p@db:5432/sh?sslmode=require",
		"postgres://u:p@db:5432/sh?connect_timeout=5":   "postgres://u:p@db:5432/sh?connect_timeout=5&sslmode=require",
		"postgres://u:p@db:5432/sh?sslmode=disable":     "postgres://u:p@db:5432/sh?sslmode=disable",
		"postgres://u:p@db:5432/sh?sslmode=verify-full": "postgres://u:p@db:5432/sh?sslmode=verify-full",
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		require.Equal(t, want, requireTLSByDefault(u), raw)
	}

	t.Setenv("PGSSLMODE", "verify-ca")
	u, err := url.Parse("postgres://u:p@db:5432/sh")
	require.NoError(t, err)
	require.Equal(t, "postgres://u:p@db:5432/sh", requireTLSByDefault(u), "PGSSLMODE chooses")
}
