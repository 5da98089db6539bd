package main

import (
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/api"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/keyring"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/retention"
	"github.com/surveyhooks/surveyhooks/signature"
)

// config is every setting of every subcommand, read from the environment here and nowhere
// else; README.md lists them.
type config struct {
	Addr              string
	APIKeys           []string
	DatabaseURL       string
	DataDir           string
	TemporalAddress   string
	TemporalNamespace string
	TemporalUIAddr    string
	TaskQueue         string
	MetricsAddr       string
	RetryDelays       []time.Duration
	AttemptTimeout    time.Duration
	AllowHTTP         bool
	AllowedCIDRs      []netip.Prefix
	SecretOverlap     time.Duration
	MaxBodyBytes      int64
	LogFormat         string
	LogLevel          string
	// DBMaxConns bounds the process's PostgreSQL connections (openDB).
	DBMaxConns int

	// How to reach an existing Temporal cluster or Temporal Cloud (temporalconn.go).
	TemporalTLS           bool
	TemporalTLSCert       string
	TemporalTLSKey        string
	TemporalTLSCA         string
	TemporalTLSServerName string
	// TemporalAPIKey authenticates to Temporal Cloud; never log it.
	TemporalAPIKey string
	// Disable says when surveyhooks turns a failing webhook off by itself.
	Disable delivery.DisablePolicy
	// RecoveryRate bounds the retries a recovery asks for per second.
	RecoveryRate float64
	// EndpointConcurrency bounds each worker's attempts in flight to one endpoint; negative
	// for no bound.
	EndpointConcurrency int
	// NoticeAccount also gets every account's notices (webhook.disabled); "" for none.
	NoticeAccount string
	// Retention is how long delivery history is kept; 0 keeps it forever.
	Retention time.Duration
	// ShutdownTimeout bounds how long a stopping worker waits for the attempts in flight.
	ShutdownTimeout time.Duration
	// RequestTimeout bounds the work of one API request (not the webhook test, which waits
	// for its attempt).
	RequestTimeout time.Duration
	// TraceReceivers sends each delivery's traceparent to its receiver.
	TraceReceivers bool
	// EncryptionKeys seal webhook secrets in the database (SURVEYHOOKS_ENCRYPTION_KEYS);
	// nil when the variable is not set, which only dev (a key in its data folder), migrate
	// and bench (a throwaway database) accept.
	EncryptionKeys *keyring.Keyring
	// RateLimit is each API key's request rate per second; negative means no limit.
	RateLimit float64
	// RateBurst is how many requests a key may send at once above its rate; 0 leaves it
	// to the API (twice the rate).
	RateBurst int
	// Signature is the header that carries the HMAC of HMAC webhooks' requests and its
	// format (SURVEYHOOKS_SIGNATURE_HEADER, SURVEYHOOKS_SIGNATURE_FORMAT): the platform keeps
	// the header its customers' receivers already verify.
	Signature signature.Profile
	// Console: the scheme and host it is reached at (for console links; "" is the host the
	// link request came to), the origins that may frame it, and its brand.
	ConsoleURL            string
	ConsoleFrameAncestors []string
	ConsoleProductName    string
	ConsoleLogoFile       string
	ConsoleAccent         string
	// ExportTraces is set when an OTLP endpoint is (OTEL_EXPORTER_OTLP_ENDPOINT or
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); the exporter reads the OTEL_* variables itself.
	ExportTraces bool
}

// knownVariables lists every environment variable loadConfig reads, in one place: the
// deployment files may set only these for surveyhooks' own containers (config_test.go
// checks both that list and docker-compose.yml against it), and a SURVEYHOOKS_ variable
// that is not here is a typo worth a warning (warnUnknownVariables).
var knownVariables = []string{
	"SURVEYHOOKS_ADDR",
	"SURVEYHOOKS_API_KEYS",
	"SURVEYHOOKS_API_RATE_LIMIT",
	"SURVEYHOOKS_API_RATE_BURST",
	"SURVEYHOOKS_ENCRYPTION_KEYS",
	"DATABASE_URL",
	"SURVEYHOOKS_DATA_DIR",
	"TEMPORAL_ADDRESS",
	"TEMPORAL_NAMESPACE",
	"TEMPORAL_UI_ADDR",
	"TEMPORAL_TLS",
	"TEMPORAL_TLS_CERT",
	"TEMPORAL_TLS_KEY",
	"TEMPORAL_TLS_CA",
	"TEMPORAL_TLS_SERVER_NAME",
	"TEMPORAL_API_KEY",
	"SURVEYHOOKS_TASK_QUEUE",
	"SURVEYHOOKS_METRICS_ADDR",
	"SURVEYHOOKS_RETRY_DELAYS",
	"SURVEYHOOKS_ATTEMPT_TIMEOUT",
	"SURVEYHOOKS_ALLOW_HTTP",
	"SURVEYHOOKS_ALLOWED_CIDRS",
	"SURVEYHOOKS_SECRET_OVERLAP",
	"SURVEYHOOKS_MAX_BODY_BYTES",
	"SURVEYHOOKS_DB_MAX_CONNS",
	"SURVEYHOOKS_LOG_FORMAT",
	"SURVEYHOOKS_LOG_LEVEL",
	"SURVEYHOOKS_RETENTION",
	"SURVEYHOOKS_SHUTDOWN_TIMEOUT",
	"SURVEYHOOKS_REQUEST_TIMEOUT",
	"SURVEYHOOKS_TRACE_RECEIVERS",
	"SURVEYHOOKS_SIGNATURE_HEADER",
	"SURVEYHOOKS_SIGNATURE_FORMAT",
	"SURVEYHOOKS_DISABLE_AFTER",
	"SURVEYHOOKS_DISABLE_MIN_FAILURES",
	"SURVEYHOOKS_FAILING_AFTER",
	"SURVEYHOOKS_RECOVERY_RATE",
	"SURVEYHOOKS_ENDPOINT_CONCURRENCY",
	"SURVEYHOOKS_NOTICE_ACCOUNT",
	"SURVEYHOOKS_CONSOLE_URL",
	"SURVEYHOOKS_CONSOLE_FRAME_ANCESTORS",
	"SURVEYHOOKS_CONSOLE_PRODUCT_NAME",
	"SURVEYHOOKS_CONSOLE_LOGO_FILE",
	"SURVEYHOOKS_CONSOLE_ACCENT",
	"OTEL_EXPORTER_OTLP_ENDPOINT",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
}

// minRetention refuses retentions so short that they are surely a mistake ("30m" meant as
// months would delete deliveries minutes after they finish).
const minRetention = time.Hour

// envLookup reads one variable; tests pass a map.
type envLookup func(string) (string, bool)

// loadConfig reads the environment, applying defaults, and reports every bad value at once.
func loadConfig(lookup envLookup) (config, error) {
	cfg := config{
		Addr:              "127.0.0.1:8080",
		DataDir:           "./.surveyhooks",
		TemporalAddress:   "127.0.0.1:7233",
		TemporalNamespace: "default",
		TemporalUIAddr:    "127.0.0.1:8233",
		TaskQueue:         delivery.DefaultTaskQueue,
		MetricsAddr:       "127.0.0.1:9464",
		RetryDelays:       delivery.DefaultRetryDelays,
		AttemptTimeout:    delivery.DefaultAttemptTimeout,
		SecretOverlap:     24 * time.Hour,
		MaxBodyBytes:      1 << 20,
		DBMaxConns:        defaultDBMaxConns,
		LogLevel:          "info",
		Retention:         retention.DefaultMaxAge,
		ShutdownTimeout:   30 * time.Second,
		RequestTimeout:    api.DefaultRequestTimeout,
		RateLimit:         api.DefaultRateLimit,
		Disable: delivery.DisablePolicy{After: delivery.DefaultDisableAfter, MinFailures: delivery.DefaultDisableMinFailures,
			FailingAfter: delivery.DefaultFailingAfter},
		RecoveryRate:        delivery.DefaultRecoveryRate,
		EndpointConcurrency: activities.DefaultEndpointConcurrency,
	}
	var problems []string
	str := func(name string, dst *string) {
		if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			*dst = strings.TrimSpace(v)
		}
	}
	dur := func(name string, dst *time.Duration) {
		if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil || d <= 0 {
				problems = append(problems, fmt.Sprintf("%s=%q must be a positive duration such as 30s", name, v))
				return
			}
			*dst = d
		}
	}
	str("SURVEYHOOKS_ADDR", &cfg.Addr)
	str("DATABASE_URL", &cfg.DatabaseURL)
	str("SURVEYHOOKS_DATA_DIR", &cfg.DataDir)
	str("TEMPORAL_ADDRESS", &cfg.TemporalAddress)
	str("TEMPORAL_NAMESPACE", &cfg.TemporalNamespace)
	str("TEMPORAL_UI_ADDR", &cfg.TemporalUIAddr)
	str("SURVEYHOOKS_TASK_QUEUE", &cfg.TaskQueue)
	str("SURVEYHOOKS_METRICS_ADDR", &cfg.MetricsAddr)
	str("SURVEYHOOKS_LOG_FORMAT", &cfg.LogFormat)
	str("SURVEYHOOKS_LOG_LEVEL", &cfg.LogLevel)
	dur("SURVEYHOOKS_ATTEMPT_TIMEOUT", &cfg.AttemptTimeout)
	dur("SURVEYHOOKS_SECRET_OVERLAP", &cfg.SecretOverlap)
	dur("SURVEYHOOKS_SHUTDOWN_TIMEOUT", &cfg.ShutdownTimeout)
	dur("SURVEYHOOKS_REQUEST_TIMEOUT", &cfg.RequestTimeout)
	str("TEMPORAL_TLS_CERT", &cfg.TemporalTLSCert)
	str("TEMPORAL_TLS_KEY", &cfg.TemporalTLSKey)
	str("TEMPORAL_TLS_CA", &cfg.TemporalTLSCA)
	str("TEMPORAL_TLS_SERVER_NAME", &cfg.TemporalTLSServerName)
	str("TEMPORAL_API_KEY", &cfg.TemporalAPIKey)
	if v, ok := lookup("TEMPORAL_TLS"); ok && strings.TrimSpace(v) != "" {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			problems = append(problems, fmt.Sprintf("TEMPORAL_TLS=%q must be true or false", v))
		}
		cfg.TemporalTLS = b
	}
	if v, ok := lookup("SURVEYHOOKS_RETENTION"); ok && strings.TrimSpace(v) != "" {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		switch {
		case err == nil && d == 0:
			cfg.Retention = 0
		case err != nil || d < minRetention:
			problems = append(problems, fmt.Sprintf("SURVEYHOOKS_RETENTION=%q must be a duration of at least %s such as 720h (30 days), or 0 to keep history forever", v, minRetention))
		default:
			cfg.Retention = d
		}
	}

	if v, ok := lookup("SURVEYHOOKS_API_KEYS"); ok {
		for _, key := range strings.Split(v, ",") {
			if key = strings.TrimSpace(key); key != "" {
				cfg.APIKeys = append(cfg.APIKeys, key)
			}
		}
	}
	// The keys' values never appear in a message: keyring.Parse names a bad key by its
	// position.
	if v, ok := lookup("SURVEYHOOKS_ENCRYPTION_KEYS"); ok && strings.TrimSpace(v) != "" {
		keys, err := keyring.Parse(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("SURVEYHOOKS_ENCRYPTION_KEYS: %v", err))
		}
		cfg.EncryptionKeys = keys
	}
	if v, ok := lookup("SURVEYHOOKS_API_RATE_LIMIT"); ok && strings.TrimSpace(v) != "" {
		v = strings.TrimSpace(v)
		rate, err := strconv.ParseFloat(v, 64)
		switch {
		case strings.EqualFold(v, "off"):
			cfg.RateLimit = -1
		case err != nil || !(rate > 0) || math.IsInf(rate, 1): // !(rate > 0) refuses NaN too
			problems = append(problems, fmt.Sprintf("SURVEYHOOKS_API_RATE_LIMIT=%q must be a positive number of requests per second per API key, such as 500 or 0.5, or off", v))
		default:
			cfg.RateLimit = rate
		}
	}
	if v, ok := lookup("SURVEYHOOKS_API_RATE_BURST"); ok && strings.TrimSpace(v) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			problems = append(problems, fmt.Sprintf("SURVEYHOOKS_API_RATE_BURST=%q must be a positive integer (requests a key may send at once)", v))
		}
		cfg.RateBurst = n
	}
	if v, ok := lookup("SURVEYHOOKS_RETRY_DELAYS"); ok && strings.TrimSpace(v) != "" {
		delays, err := delivery.ParseDelays(v)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("SURVEYHOOKS_RETRY_DELAYS: %v", err))
		case len(delays) == 0:
			problems = append(problems, "SURVEYHOOKS_RETRY_DELAYS must list at least one delay, e.g. 1m,5m,15m,1h,6h")
		default:
			cfg.RetryDelays = delays
		}
	}
	if v, ok := lookup("SURVEYHOOKS_TRACE_RECEIVERS"); ok && strings.TrimSpace(v) != "" {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			problems = append(problems, fmt.Sprintf("SURVEYHOOKS_TRACE_RECEIVERS=%q must be true or false", v))
		}
		cfg.TraceReceivers = b
	}
	sigHeader, _ := lookup("SURVEYHOOKS_SIGNATURE_HEADER")
	sigFormat, _ := lookup("SURVEYHOOKS_SIGNATURE_FORMAT")
	if profile, err := signature.ParseProfile(sigHeader, sigFormat); err != nil {
		problems = append(problems, fmt.Sprintf("SURVEYHOOKS_SIGNATURE_HEADER/SURVEYHOOKS_SIGNATURE_FORMAT: %v", err))
	} else {
		cfg.Signature = profile
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			cfg.ExportTraces = true
		}
	}
	if v, ok := lookup("SURVEYHOOKS_ALLOW_HTTP"); ok && strings.TrimSpace(v) != "" {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			problems = append(problems, fmt.Sprintf("SURVEYHOOKS_ALLOW_HTTP=%q must be true or false", v))
		}
		cfg.AllowHTTP = b
	}
	if v, ok := lookup("SURVEYHOOKS_ALLOWED_CIDRS"); ok && strings.TrimSpace(v) != "" {
		prefixes, err := netguard.ParsePrefixes(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("SURVEYHOOKS_ALLOWED_CIDRS: %v", err))
		}
		cfg.AllowedCIDRs = prefixes
	}
	if v, ok := lookup("SURVEYHOOKS_MAX_BODY_BYTES"); ok && strings.TrimSpace(v) != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 1024 {
			problems = append(problems, fmt.Sprintf("SURVEYHOOKS_MAX_BODY_BYTES=%q must be an integer of at least 1024", v))
		}
		cfg.MaxBodyBytes = n
	}
	if v, ok := lookup("SURVEYHOOKS_DISABLE_AFTER"); ok && strings.TrimSpace(v) != "" {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < 0 {
			problems = append(problems, fmt.Sprintf("SURVEYHOOKS_DISABLE_AFTER=%q must be a duration such as 120h (5 days), or 0 never to disable a failing webhook", v))
		}
		cfg.Disable.After = d
	}
	if v, ok := lookup("SURVEYHOOKS_DISABLE_MIN_FAILURES"); ok && strings.TrimSpace(v) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			problems = append(problems, fmt.Sprintf("SURVEYHOOKS_DISABLE_MIN_FAILURES=%q must be an integer of at least 1", v))
		}
		cfg.Disable.MinFailures = n
	}
	if v, ok := lookup("SURVEYHOOKS_FAILING_AFTER"); ok && strings.TrimSpace(v) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			problems = append(problems, fmt.Sprintf("SURVEYHOOKS_FAILING_AFTER=%q must be a number of failed attempts in a row, or 0 for no webhook.failing notice", v))
		}
		cfg.Disable.FailingAfter = n
	}
	str("SURVEYHOOKS_NOTICE_ACCOUNT", &cfg.NoticeAccount)
	if cfg.NoticeAccount != "" && !api.ValidID(cfg.NoticeAccount) {
		problems = append(problems, fmt.Sprintf("SURVEYHOOKS_NOTICE_ACCOUNT=%q must be an account id: 1 to 128 of A-Z a-z 0-9 . _ : -", cfg.NoticeAccount))
	}
	str("SURVEYHOOKS_CONSOLE_URL", &cfg.ConsoleURL)
	if cfg.ConsoleURL != "" {
		if u, err := url.Parse(cfg.ConsoleURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			problems = append(problems, fmt.Sprintf("SURVEYHOOKS_CONSOLE_URL=%q must be the scheme and host the console is reached at, such as https://hooks.example.com", cfg.ConsoleURL))
		}
	}
	if v, ok := lookup("SURVEYHOOKS_CONSOLE_FRAME_ANCESTORS"); ok && strings.TrimSpace(v) != "" {
		for _, source := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			if !validFrameAncestor(source) {
				problems = append(problems, fmt.Sprintf("SURVEYHOOKS_CONSOLE_FRAME_ANCESTORS: %q must be 'self', 'none' or an origin such as https://app.example.com", source))
			}
			cfg.ConsoleFrameAncestors = append(cfg.ConsoleFrameAncestors, source)
		}
	}
	str("SURVEYHOOKS_CONSOLE_PRODUCT_NAME", &cfg.ConsoleProductName)
	str("SURVEYHOOKS_CONSOLE_LOGO_FILE", &cfg.ConsoleLogoFile)
	str("SURVEYHOOKS_CONSOLE_ACCENT", &cfg.ConsoleAccent)
	if v, ok := lookup("SURVEYHOOKS_RECOVERY_RATE"); ok && strings.TrimSpace(v) != "" {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f <= 0 || math.IsInf(f, 0) {
			problems = append(problems, fmt.Sprintf("SURVEYHOOKS_RECOVERY_RATE=%q must be a positive number of retries a second, such as 20", v))
		}
		cfg.RecoveryRate = f
	}
	if v, ok := lookup("SURVEYHOOKS_ENDPOINT_CONCURRENCY"); ok && strings.TrimSpace(v) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			problems = append(problems, fmt.Sprintf("SURVEYHOOKS_ENDPOINT_CONCURRENCY=%q must be the number of attempts one worker may have in flight to one endpoint, such as 16, or 0 for no bound", v))
		}
		cfg.EndpointConcurrency = n
		if n == 0 {
			cfg.EndpointConcurrency = -1
		}
	}
	if v, ok := lookup("SURVEYHOOKS_DB_MAX_CONNS"); ok && strings.TrimSpace(v) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 2 {
			problems = append(problems, fmt.Sprintf("SURVEYHOOKS_DB_MAX_CONNS=%q must be an integer of at least 2", v))
		}
		cfg.DBMaxConns = n
	}
	switch cfg.LogFormat {
	case "", "text", "json":
	default:
		problems = append(problems, fmt.Sprintf("SURVEYHOOKS_LOG_FORMAT=%q must be text or json", cfg.LogFormat))
	}
	if len(problems) > 0 {
		return config{}, fmt.Errorf("bad configuration: %s", strings.Join(problems, "; "))
	}
	return cfg, nil
}

// urlPolicy is where deliveries may go.
func (c config) urlPolicy() netguard.Policy {
	return netguard.Policy{AllowHTTP: c.AllowHTTP, Allowed: c.AllowedCIDRs}
}

// schedule is the retry schedule of the configured delays and attempt timeout.
func (c config) schedule() delivery.Schedule {
	return delivery.Schedule{Delays: c.RetryDelays, AttemptTimeout: c.AttemptTimeout}
}

func osLookup(name string) (string, bool) {
	return os.LookupEnv(name)
}

// warnUnknownVariables warns about SURVEYHOOKS_ variables in environ (KEY=value lines)
// that surveyhooks does not read: a misspelt setting would otherwise be silently ignored.
// Only names are logged, never values.
func warnUnknownVariables(logger *slog.Logger, environ []string) {
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SURVEYHOOKS_") && !slices.Contains(knownVariables, name) {
			logger.Warn("ignoring an environment variable surveyhooks does not know; misspelt?", "variable", name)
		}
	}
}

// validFrameAncestor accepts the CSP frame-ancestors sources the console allows: 'self',
// 'none', or an http(s) origin (a host may start with *. for its subdomains).
func validFrameAncestor(source string) bool {
	if source == "'self'" || source == "'none'" {
		return true
	}
	u, err := url.Parse(source)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.Path == "" &&
		u.RawQuery == "" && u.User == nil && !strings.ContainsAny(source, "; '")
}
