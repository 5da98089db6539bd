package eventtype

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// table is an in-memory Source that counts its reads; a read may be held until released,
// to show what other callers do meanwhile.
type table struct {
	mu    sync.Mutex
	types []Type
	err   error
	reads atomic.Int32
	hold  chan struct{}
}

func (tb *table) ListEventTypes(ctx context.Context) ([]Type, error) {
	tb.reads.Add(1)
	tb.mu.Lock()
	types, err, hold := slices.Clone(tb.types), tb.err, tb.hold
	tb.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return types, err
}

func (tb *table) put(types []Type, err error, hold chan struct{}) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.types, tb.err, tb.hold = types, err, hold
}

// clock is a Registry's time, moved by the test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func withSchema(name, schema string) Type {
	return Type{Name: name, Schema: json.RawMessage(schema), Example: json.RawMessage(`{}`)}
}

func newTestRegistry(types ...Type) (*Registry, *table, *clock) {
	tb := &table{types: types}
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := NewRegistry(tb, time.Second)
	r.now = c.Now
	return r, tb, c
}

const requireID = `{"type":"object","required":["id"]}`

func TestRegistryCachesUntilRefresh(t *testing.T) {
	t.Parallel()
	r, tb, c := newTestRegistry(withSchema("form.submission.created", `{"type":"object"}`))
	ctx := t.Context()

	for range 100 {
		require.NoError(t, r.Check(ctx, "form.submission.created", json.RawMessage(`{}`)))
	}
	require.EqualValues(t, 1, tb.reads.Load(), "one read serves every lookup of its interval")
	first, err := r.Set(ctx)
	require.NoError(t, err)

	// Another process changes the type: this one sees it after the refresh interval.
	tb.put([]Type{withSchema("form.submission.created", requireID)}, nil, nil)
	c.Add(999 * time.Millisecond)
	require.NoError(t, r.Check(ctx, "form.submission.created", json.RawMessage(`{}`)))
	c.Add(time.Millisecond)
	var derr *DataError
	require.ErrorAs(t, r.Check(ctx, "form.submission.created", json.RawMessage(`{}`)), &derr)
	require.Equal(t, "form.submission.created", derr.Type)
	require.EqualValues(t, 2, tb.reads.Load())

	// A schema that did not change is not compiled again.
	tb.put([]Type{withSchema("form.submission.created", requireID), withSchema("survey.response.created", `{}`)}, nil, nil)
	c.Add(time.Second)
	before, _ := r.Set(ctx)
	c.Add(time.Second)
	after, err := r.Set(ctx)
	require.NoError(t, err)
	require.NotSame(t, before, after)
	b, _ := before.lookup("form.submission.created")
	a, _ := after.lookup("form.submission.created")
	require.Same(t, b.schema, a.schema)
	require.NotSame(t, first, after)
}

func TestRegistryInvalidate(t *testing.T) {
	t.Parallel()
	r, tb, _ := newTestRegistry(withSchema("form.submission.created", `{"type":"object"}`))
	ctx := t.Context()
	require.NoError(t, r.Check(ctx, "form.submission.created", json.RawMessage(`{}`)))

	// This process changed the type: it sees the change at once.
	tb.put([]Type{withSchema("form.submission.created", requireID)}, nil, nil)
	r.Invalidate()
	require.Error(t, r.Check(ctx, "form.submission.created", json.RawMessage(`{}`)))
	require.EqualValues(t, 2, tb.reads.Load())
}

// TestRegistryInvalidateWaitsForARead checks that a read that started before an Invalidate
// is not served after it: it may have missed the change.
func TestRegistryInvalidateWaitsForARead(t *testing.T) {
	t.Parallel()
	r, tb, c := newTestRegistry(withSchema("form.submission.created", `{"type":"object"}`))
	ctx := t.Context()
	_, err := r.Set(ctx)
	require.NoError(t, err)

	hold := make(chan struct{})
	tb.put([]Type{withSchema("form.submission.created", `{"type":"object"}`)}, nil, hold)
	c.Add(time.Second)
	reading := make(chan error, 1)
	go func() { _, err := r.Set(ctx); reading <- err }()
	require.Eventually(t, func() bool { return tb.reads.Load() == 2 }, 5*time.Second, time.Millisecond)

	// Aged only: served while the other caller reads.
	require.NoError(t, r.Check(ctx, "form.submission.created", json.RawMessage(`{}`)))

	// The change commits and is invalidated while the old read is in flight.
	tb.put([]Type{withSchema("form.submission.created", requireID)}, nil, nil)
	r.Invalidate()
	checked := make(chan error, 1)
	go func() { checked <- r.Check(ctx, "form.submission.created", json.RawMessage(`{}`)) }()
	close(hold)
	require.NoError(t, <-reading)
	var derr *DataError
	require.ErrorAs(t, <-checked, &derr, "the check waited for a read after the change")
	require.EqualValues(t, 3, tb.reads.Load())
}

func TestRegistryWhenTheSourceFails(t *testing.T) {
	t.Parallel()
	down := errors.New("database down")
	r, tb, c := newTestRegistry(withSchema("form.submission.created", `{"type":"object"}`))
	ctx := t.Context()
	tb.put(nil, down, nil)

	// Nothing read yet: the lookup fails.
	require.ErrorIs(t, r.Check(ctx, "form.submission.created", json.RawMessage(`{}`)), down)

	tb.put([]Type{withSchema("form.submission.created", `{"type":"object"}`)}, nil, nil)
	require.NoError(t, r.Check(ctx, "form.submission.created", json.RawMessage(`{}`)))

	// Read before: what was read is served while the source fails, and the source is
	// asked again a moment later, not by every lookup.
	tb.put(nil, down, nil)
	c.Add(time.Hour)
	require.NoError(t, r.Check(ctx, "form.submission.created", json.RawMessage(`{}`)))
	reads := tb.reads.Load()
	for range 10 {
		require.NoError(t, r.Check(ctx, "form.submission.created", json.RawMessage(`{}`)))
	}
	require.Equal(t, reads, tb.reads.Load())
	c.Add(retryAfterFailure)
	tb.put([]Type{withSchema("form.submission.created", requireID)}, nil, nil)
	require.Error(t, r.Check(ctx, "form.submission.created", json.RawMessage(`{}`)))
	require.Equal(t, reads+1, tb.reads.Load())
}

func TestSetCheck(t *testing.T) {
	t.Parallel()
	at := time.Now()
	archived := withSchema("legacy.response.done", requireID)
	archived.ArchivedAt = &at
	r, _, _ := newTestRegistry(withSchema("form.submission.created", requireID), archived)
	set, err := r.Set(t.Context())
	require.NoError(t, err)

	require.NoError(t, set.Check("form.submission.created", json.RawMessage(`{"id":1}`)))
	var derr *DataError
	require.ErrorAs(t, set.Check("form.submission.created", json.RawMessage(`{}`)), &derr)
	require.Equal(t, []Problem{{Pointer: "/id", Keyword: "required", Message: "is required"}}, derr.Problems)

	// Archived types are still published, and still checked.
	require.NoError(t, set.Check("legacy.response.done", json.RawMessage(`{"id":1}`)))
	require.ErrorAs(t, set.Check("legacy.response.done", json.RawMessage(`{}`)), &derr)

	var unknown *UnknownError
	require.ErrorAs(t, set.Check("survey.response.created", json.RawMessage(`{}`)), &unknown)
	require.Equal(t, "survey.response.created", unknown.Name)
	require.ErrorAs(t, set.Check(WebhookTest, json.RawMessage(`{"webhook":{"id":"x"},"message":"m"}`)), &unknown)
	require.ErrorAs(t, set.Check(WebhookDisabled, webhookDisabled.Example), &unknown, "a notice cannot be published")

	// A stored type named like the built-in one does not replace it.
	r, _, _ = newTestRegistry(withSchema(WebhookTest, `{}`))
	set, err = r.Set(t.Context())
	require.NoError(t, err)
	test, ok := set.Lookup(WebhookTest)
	require.True(t, ok)
	require.Equal(t, webhookTest, test)
	require.Len(t, set.All(), 4, "the built-in types only")
}

// BenchmarkRegistryCheck is the publish path's cost of the registry: a lookup in memory and
// the validation of a survey response's data against a schema like the defaults'.
func BenchmarkRegistryCheck(b *testing.B) {
	schema := `{"type":"object","properties":{"survey":{"type":"object","required":["id"],"properties":{"id":{"type":"string"}}},` +
		`"response":{"type":"object","required":["id"],"properties":{"id":{"type":"string"},"answers":{"type":"array","items":{"type":"object"}},` +
		`"completed_at":{"type":"string","format":"date-time"}}}}}`
	r, tb, _ := newTestRegistry(withSchema("survey.response.completed", schema))
	data := json.RawMessage(`{"survey":{"id":"survey-1","title":"NPS"},"response":{"id":"r-1","completed_at":"2026-01-01T00:00:00Z",` +
		`"answers":[{"questionId":"q1","value":9},{"questionId":"q2","value":"Great service!"}]}}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Check(ctx, "survey.response.completed", data); err != nil {
			b.Fatal(err)
		}
	}
	if tb.reads.Load() != 1 {
		b.Fatalf("%d reads", tb.reads.Load())
	}
}
