package activities

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/store"
)

// ErrTypeHeld is the error type of an attempt that was not made because its endpoint cannot
// take it now: the receiver asked for a pause, the webhook's rate limit is reached, or this
// worker has as many attempts in flight to the endpoint as it allows. Nothing was sent or
// recorded, so the wait costs no attempt of the schedule; the error's NextRetryDelay says
// when to try again.
const ErrTypeHeld = "DeliveryAttemptHeld"

// DefaultEndpointConcurrency is how many attempts one worker has in flight to one endpoint
// at most (SURVEYHOOKS_ENDPOINT_CONCURRENCY), so that a slow or hanging endpoint holds a
// bounded share of the worker's activity slots and connections.
const DefaultEndpointConcurrency = 16

// Bounds of the wait of an attempt held because its endpoint is busy. The wait starts at
// how long the endpoint's oldest attempt in flight has been waiting for its answer (at
// least minBusyWait), or at the attempt timeout while the endpoint is probed, and doubles
// with each hold of the same attempt, so that deliveries waiting on a slow or hanging
// endpoint ask seldom: each try costs a task and a read, which the healthy endpoints'
// deliveries need.
const (
	minBusyWait = time.Second
	maxBusyWait = 5 * time.Minute
)

// endpointGate bounds the attempts this worker has in flight to each endpoint (the URL's
// host and port), so that attempts to one endpoint cannot take every activity slot or
// connection. An endpoint whose last attempt timed out is probed with one attempt at a time
// until one gets an answer in time: a hanging endpoint then holds one slot per worker, not
// limit slots for the attempt timeout each.
type endpointGate struct {
	limit int
	// timeout is the attempt timeout: how long a probe may hang.
	timeout time.Duration
	mu      sync.Mutex
	hosts   map[string]*endpointState
	next    uint64
}

type endpointState struct {
	// inFlight holds the start of each attempt in flight, by a number of the gate's.
	inFlight map[uint64]time.Time
	// probing: the last attempt that ended timed out.
	probing bool
}

func newEndpointGate(limit int, timeout time.Duration) *endpointGate {
	return &endpointGate{limit: limit, timeout: timeout, hosts: map[string]*endpointState{}}
}

// enter takes a place for one attempt to host at now, or, when there is none, returns how
// long an attempt held for the held-th time should wait (busyWait). leave gives the place
// back with whether the attempt timed out.
func (g *endpointGate) enter(host string, now time.Time, held int) (leave func(timedOut bool), wait time.Duration) {
	if g.limit <= 0 {
		return func(bool) {}, 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.hosts[host]
	if st == nil {
		st = &endpointState{inFlight: map[uint64]time.Time{}}
		g.hosts[host] = st
	}
	limit := g.limit
	if st.probing {
		limit = 1
	}
	if len(st.inFlight) >= limit {
		return nil, st.busyWait(now, held, g.timeout)
	}
	g.next++
	id := g.next
	st.inFlight[id] = now
	return func(timedOut bool) {
		g.mu.Lock()
		defer g.mu.Unlock()
		delete(st.inFlight, id)
		st.probing = timedOut
		if len(st.inFlight) == 0 && !st.probing {
			delete(g.hosts, host) // the map holds only busy or hanging endpoints
		}
	}, 0
}

// busyWait is how long an attempt refused for the held-th time waits before it asks again.
func (st *endpointState) busyWait(now time.Time, held int, timeout time.Duration) time.Duration {
	base := minBusyWait
	if st.probing {
		base = max(base, timeout)
	}
	for _, started := range st.inFlight {
		base = max(base, now.Sub(started))
	}
	return min(base<<min(held, 16), maxBusyWait)
}

// endpointOf is the endpoint a webhook URL names, as the gate counts it.
func endpointOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// admit decides whether an attempt of t, which the rule for sending allows, may go now:
// the endpoint gate and the webhook's rate limit, in that order, so that a refused place
// at the gate takes no slot of the rate limit. It returns the function that ends the
// attempt (give back its place) or the hold error to return instead.
func (a *Activities) admit(ctx context.Context, t store.Target, held int) (done func(timedOut bool), err error) {
	leave, wait := a.gate.enter(endpointOf(t.Webhook.URL), time.Now(), held)
	if leave == nil {
		a.metrics.held(ctx, heldBusy)
		return nil, heldError(fmt.Sprintf("this worker has as many attempts in flight to the endpoint as it allows (%d, or 1 while its last attempt timed out)", a.gate.limit), jitter(wait), false)
	}
	if limit := t.Webhook.Limit(); limit != nil {
		wait, err := a.takeSlot(ctx, t.Webhook.ID, *limit)
		if err != nil || wait > 0 {
			leave(false)
		}
		if err != nil {
			return nil, fmt.Errorf("rate limit: %w", err)
		}
		if wait > 0 {
			a.metrics.held(ctx, heldRateLimit)
			return nil, heldError(fmt.Sprintf("the webhook's rate limit (%g/s, burst %d) is reached", limit.PerSecond, limit.Burst), wait, true)
		}
	}
	return leave, nil
}

// takeSlot takes a slot of the webhook's rate limit, waiting here for one that frees within
// store.SlotGrace (the attempt came back at its turn a little early), so that its slot is
// not lost to the next in line. It returns the wait for a slot further off.
func (a *Activities) takeSlot(ctx context.Context, webhookID uuid.UUID, limit store.RateLimit) (time.Duration, error) {
	for {
		wait, err := a.store.TakeSlot(ctx, webhookID, limit, a.now())
		if err != nil || wait == 0 || wait > store.SlotGrace {
			return wait, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// heldTimes is how many times the attempt of this run of Deliver was held before: its
// input's count for a run's first attempt (the workflow holds it), the activity's tries for
// the schedule's (Temporal retries it).
func heldTimes(ctx context.Context, in DeliverInput) int {
	if info := activity.GetInfo(ctx); !info.IsLocalActivity {
		return int(info.Attempt) - 1
	}
	return in.Held
}

// pause records the pause a receiver's answer asks for (delivery.PauseFor). An error is
// logged: the attempt is recorded whatever happens here, and a receiver that still wants
// a pause asks again.
func (a *Activities) pause(ctx context.Context, hook store.Webhook, s sentAttempt) {
	d := delivery.PauseFor(s.statusCode, s.retryAfter)
	if d <= 0 {
		return
	}
	if err := a.store.PauseWebhook(ctx, hook.ID, a.now().Add(d)); err != nil {
		a.logger.ErrorContext(ctx, "could not pause a webhook its receiver asked to slow down", "webhook_id", hook.ID, "error", err)
		return
	}
	a.logger.InfoContext(ctx, "webhook paused", "webhook_id", hook.ID, "status_code", s.statusCode, "pause", d)
}

// heldError is Deliver's answer for an attempt it did not make now: try again after wait.
// turn says the wait is the attempt's turn at the webhook's rate limit, which goes unused
// unless the attempt comes back then; any other hold may come back any time after.
func heldError(why string, wait time.Duration, turn bool) error {
	return temporal.NewApplicationErrorWithOptions(fmt.Sprintf("held: %s; next try in %s", why, wait.Round(time.Millisecond)),
		ErrTypeHeld, expected(temporal.ApplicationErrorOptions{NextRetryDelay: max(wait, time.Millisecond), Details: []any{turn}}))
}

// Hold is Deliver's answer for an attempt it held (ErrTypeHeld).
type Hold struct {
	// Wait is how long until the attempt should come back.
	Wait time.Duration
	// Turn says Wait is its turn at the webhook's rate limit.
	Turn bool
}

// HeldFor reports whether err is Deliver's answer for an attempt it held, and how.
func HeldFor(err error) (Hold, bool) {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrTypeHeld {
		return Hold{}, false
	}
	h := Hold{Wait: appErr.NextRetryDelay()}
	_ = appErr.Details(&h.Turn) // absent: no turn
	return h, true
}

// jitter spreads a wait over [d, 1.25 d), so that attempts held together do not all come
// back at the same moment.
func jitter(d time.Duration) time.Duration {
	return d + rand.N(d/4+1)
}
