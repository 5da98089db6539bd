package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/surveyhooks/surveyhooks/store"
)

// caller is who sent a request: a platform key, which reaches every account, or an
// account key, which reaches its account only.
type caller struct {
	// AccountID is the account key's account; "" for a platform key.
	AccountID string
	// KeyPrefix names the key in logs, lists and the audit log; it is not secret.
	KeyPrefix string
}

// platform reports whether the caller holds a platform key.
func (c caller) platform() bool {
	return c.AccountID == ""
}

// defaultAccount is the account a request acts in when its path names none: the key's
// account, or the default account for a platform key (a single-tenant deployment never
// names one).
func (c caller) defaultAccount() string {
	if c.platform() {
		return store.DefaultAccount
	}
	return c.AccountID
}

type callerKey struct{}

// callerOf returns the authenticated caller of r.
func callerOf(r *http.Request) caller {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return c
}

// platformKey is a platform key, kept as its digest: comparing digests of equal length
// keeps the comparison constant-time whatever the length of the keys.
type platformKey struct {
	hash   [sha256.Size]byte
	prefix string
}

func newPlatformKey(key string) platformKey {
	hash := sha256.Sum256([]byte(key))
	// The platform keys' names are made from their digest: the keys themselves may have
	// no non-secret part.
	return platformKey{hash: hash, prefix: "platform-" + hex.EncodeToString(hash[:4])}
}

// Account keys look like shka_<prefix>_<secret>: the prefix finds the key's row, the
// whole key's SHA-256 must match the stored hash. A key has 256 random bits, so a fast
// hash is safe (nothing to brute-force).
const (
	accountKeyScheme = "shka_"
	prefixChars      = 10
	secretBytes      = 32
)

var prefixEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newAccountKey returns a new account key, its prefix and the hash to store.
func newAccountKey() (key, prefix string, hash []byte) {
	var p [8]byte
	secret := make([]byte, secretBytes)
	_, _ = rand.Read(p[:]) // never fails (crypto/rand)
	_, _ = rand.Read(secret)
	prefix = accountKeyScheme + prefixEncoding.EncodeToString(p[:])[:prefixChars]
	key = prefix + "_" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
	sum := sha256.Sum256([]byte(key))
	return key, prefix, sum[:]
}

// accountKeyPrefix returns the prefix of a token shaped like an account key.
func accountKeyPrefix(token string) (string, bool) {
	if !strings.HasPrefix(token, accountKeyScheme) || len(token) < len(accountKeyScheme)+prefixChars+2 {
		return "", false
	}
	prefix := token[:len(accountKeyScheme)+prefixChars]
	return prefix, token[len(prefix)] == '_'
}

var errUnauthorized = Errorf(CodeUnauthorized, "A valid API key is required: send Authorization: Bearer <key>.")

// authenticate lets a request through when it carries "Authorization: Bearer <key>" with
// a platform key or a usable (not revoked, not expired) account key, and notes who sent it.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			s.writeError(w, r, errUnauthorized)
			return
		}
		c, err := s.identify(r.Context(), token)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		noteKey(r, c.KeyPrefix)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// identify finds the key of token.
func (s *Server) identify(ctx context.Context, token string) (caller, error) {
	sum := sha256.Sum256([]byte(token))
	// Every platform key is compared, so that the time taken says nothing of which matched.
	match := -1
	for i, k := range s.platformKeys {
		if subtle.ConstantTimeCompare(sum[:], k.hash[:]) == 1 {
			match = i
		}
	}
	if match >= 0 {
		return caller{KeyPrefix: s.platformKeys[match].prefix}, nil
	}
	prefix, ok := accountKeyPrefix(token)
	if !ok {
		return caller{}, errUnauthorized
	}
	key, hash, err := s.store.FindAPIKey(ctx, prefix)
	if errors.Is(err, store.ErrNotFound) {
		return caller{}, errUnauthorized
	}
	if err != nil {
		return caller{}, err
	}
	if subtle.ConstantTimeCompare(sum[:], hash) != 1 || !key.Usable(time.Now()) {
		return caller{}, errUnauthorized
	}
	return caller{AccountID: key.AccountID, KeyPrefix: key.Prefix}, nil
}

// bearerToken extracts the token of a Bearer authorization header; the scheme is
// case-insensitive (RFC 9110).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// limiters holds one token bucket per key, made at the key's first request. Only
// authenticated keys get one, so their number is bounded by the keys that exist.
type limiters struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	byKey map[string]*rate.Limiter
}

func newLimiters(perSecond float64, burst int) *limiters {
	if perSecond == 0 {
		perSecond = DefaultRateLimit
	}
	if perSecond < 0 {
		return &limiters{limit: rate.Inf}
	}
	if burst <= 0 {
		// Capped so that a huge rate cannot overflow the burst.
		burst = int(math.Min(math.Ceil(2*perSecond), math.MaxInt32))
	}
	return &limiters{limit: rate.Limit(perSecond), burst: burst, byKey: map[string]*rate.Limiter{}}
}

// wait returns how long the key must wait before its next request is let through; 0 lets
// this one through now.
func (l *limiters) wait(key string, now time.Time) time.Duration {
	if l.limit == rate.Inf {
		return 0
	}
	l.mu.Lock()
	lim, ok := l.byKey[key]
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.byKey[key] = lim
	}
	l.mu.Unlock()
	res := lim.ReserveN(now, 1)
	delay := res.DelayFrom(now)
	if delay > 0 {
		// Refused: the request takes no token, so waiting as told lets the next one in.
		res.CancelAt(now)
	}
	return delay
}

// limitRate answers 429 with Retry-After to a key past its rate; other keys are not
// affected.
func (s *Server) limitRate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := callerOf(r)
		if wait := s.limits.wait(c.KeyPrefix, time.Now()); wait > 0 {
			seconds := int(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(seconds))
			s.writeError(w, r, Errorf(CodeTooManyRequests,
				"This key sends more than %g requests per second: retry after %d s.", float64(s.limits.limit), seconds))
			return
		}
		next.ServeHTTP(w, r)
	})
}
