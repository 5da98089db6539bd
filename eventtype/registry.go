package eventtype

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultRefresh is how long a Registry serves the types it read before it reads them
// again. A change made through another API process is seen by this one within it; a change
// made through this process's own Registry is seen at once (Invalidate). Reading the
// table this often costs one small query per process every few seconds, never one per
// publish.
const DefaultRefresh = 5 * time.Second

// retryAfterFailure is how long a Registry whose read failed serves what it read before
// until it reads again.
const retryAfterFailure = time.Second

// Source reads the registered types (store.Store).
type Source interface {
	ListEventTypes(ctx context.Context) ([]Type, error)
}

// UnknownError answers a publish of a type that is not registered, or that no publisher
// may send (WebhookTest).
type UnknownError struct {
	Name string
}

func (e *UnknownError) Error() string {
	if e.Name == WebhookTest {
		return WebhookTest + " is sent by the test endpoint only"
	}
	return fmt.Sprintf("unknown event type %q", e.Name)
}

// Registry serves the registered types from a cache that it reads again from its Source
// every refresh interval, compiling each schema once (again only when it changes). The
// publish path asks it for a type on every event: a lookup in memory, and at most one
// query per interval. It is safe for concurrent use.
type Registry struct {
	src     Source
	refresh time.Duration
	now     func() time.Time
	set     atomic.Pointer[Set]
	// gen counts Invalidate calls: a Set read before the latest one is not served.
	gen atomic.Uint64
	// reading lets one caller read the Source at a time; the others wait for its Set, or
	// go on with the one they have when it has only aged.
	reading chan struct{}
}

// NewRegistry returns a Registry over src that reads it again every refresh (0 means
// DefaultRefresh).
func NewRegistry(src Source, refresh time.Duration) *Registry {
	if refresh <= 0 {
		refresh = DefaultRefresh
	}
	return &Registry{src: src, refresh: refresh, now: time.Now, reading: make(chan struct{}, 1)}
}

// Invalidate makes the next lookup read the Source again: a caller that changed a type
// calls it so that its own process sees the change at once.
func (r *Registry) Invalidate() {
	r.gen.Add(1)
}

// Check returns nil when an event of type name with data may be published: the type is
// registered (archived or not) and data matches its schema. Otherwise it returns an
// *UnknownError, a *DataError, or the error of reading the Source.
func (r *Registry) Check(ctx context.Context, name string, data json.RawMessage) error {
	set, err := r.Set(ctx)
	if err != nil {
		return err
	}
	return set.Check(name, data)
}

// Set returns the registered types as this process knows them: read at most the refresh
// interval ago, and after the latest Invalidate.
func (r *Registry) Set(ctx context.Context) (*Set, error) {
	set := r.set.Load()
	if set != nil && set.gen == r.gen.Load() && r.now().Sub(set.readAt) < r.refresh {
		return set, nil
	}
	return r.read(ctx, set)
}

// Reload reads the Source now, for the readers that must see the table as it is (the
// API's list of types).
func (r *Registry) Reload(ctx context.Context) (*Set, error) {
	r.Invalidate()
	return r.read(ctx, r.set.Load())
}

// read reads the Source into a new Set, or waits for the caller that is reading it. A Set
// that has only aged is served meanwhile; one that an Invalidate has passed is not.
func (r *Registry) read(ctx context.Context, old *Set) (*Set, error) {
	aged := old != nil && old.gen == r.gen.Load()
	select {
	case r.reading <- struct{}{}:
	default:
		if aged {
			return old, nil
		}
		select {
		case r.reading <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for the event types: %w", ctx.Err())
		}
	}
	defer func() { <-r.reading }()

	gen := r.gen.Load()
	if cur := r.set.Load(); cur != nil && cur.gen == gen && r.now().Sub(cur.readAt) < r.refresh {
		return cur, nil // read by the caller this one waited for
	}
	readAt := r.now()
	types, err := r.src.ListEventTypes(ctx)
	if err != nil {
		if aged {
			// Serve what was read before while the database does not answer: types
			// change rarely, and the publish that follows fails on its own if the
			// database is down. The next read is tried retryAfterFailure from now, not
			// by every lookup, which would wait on the database twice per publish.
			retry := *old
			retry.readAt = readAt.Add(min(retryAfterFailure, r.refresh) - r.refresh)
			r.set.Store(&retry)
			return old, nil
		}
		return nil, fmt.Errorf("read event types: %w", err)
	}
	set := newSet(types, r.set.Load())
	set.gen, set.readAt = gen, readAt
	r.set.Store(set)
	return set, nil
}

// Set is the registered types at one moment, with their compiled schemas. It never
// changes.
type Set struct {
	types  []entry
	byName map[string]int
	gen    uint64
	readAt time.Time
}

type entry struct {
	Type
	schema *Schema
	// err is why the stored schema does not compile (it compiled when it was stored, so
	// only a change of the library could cause it); publishing the type fails with it.
	err error
}

// newSet compiles the schemas of types, reusing old's compilation of every schema that has
// not changed. The built-in types are added; the types are kept in name order.
func newSet(types []Type, old *Set) *Set {
	all := slices.DeleteFunc(slices.Clone(types), Type.BuiltIn)
	all = append(all, webhookTest, webhookDisabled, webhookFailing, deliveryExhausted)
	slices.SortFunc(all, func(a, b Type) int { return strings.Compare(a.Name, b.Name) })
	s := &Set{types: make([]entry, 0, len(all)), byName: make(map[string]int, len(all))}
	for _, t := range all {
		e := entry{Type: t}
		if prev, ok := old.lookup(t.Name); ok && bytes.Equal(prev.Schema, t.Schema) && prev.err == nil {
			e.schema = prev.schema
		} else {
			e.schema, e.err = Compile(t.Schema)
		}
		s.byName[t.Name] = len(s.types)
		s.types = append(s.types, e)
	}
	return s
}

func (s *Set) lookup(name string) (entry, bool) {
	if s == nil {
		return entry{}, false
	}
	i, ok := s.byName[name]
	if !ok {
		return entry{}, false
	}
	return s.types[i], true
}

// All returns every type in name order, the built-in ones included.
func (s *Set) All() []Type {
	out := make([]Type, 0, len(s.types))
	for _, e := range s.types {
		out = append(out, e.Type)
	}
	return out
}

// Lookup returns the type called name.
func (s *Set) Lookup(name string) (Type, bool) {
	e, ok := s.lookup(name)
	return e.Type, ok
}

// Check returns nil when an event of type name with data may be published: name is
// registered and data matches its schema. An archived type may still be published, so
// that the webhooks subscribed to it keep receiving it; the built-in ones may not.
func (s *Set) Check(name string, data json.RawMessage) error {
	e, ok := s.lookup(name)
	if !ok || e.BuiltIn() {
		return &UnknownError{Name: name}
	}
	if e.err != nil {
		return fmt.Errorf("schema of %s: %w", name, e.err)
	}
	err := e.schema.Validate(data)
	var derr *DataError
	if errors.As(err, &derr) {
		derr.Type = name
	}
	return err
}

// ValidPattern reports whether a webhook may newly subscribe with p: a registered type
// that is neither archived nor WebhookTest, Wildcard, or a prefix wildcard such as
// "survey.response.*" or "survey.*" that matches at least one type it could subscribe to
// by name. Wildcards that match nothing are refused so that a typo ("survey.respnse.*") is
// caught at subscription time instead of silently never delivering; a wildcard that
// matches goes on to match the types registered after it.
func (s *Set) ValidPattern(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: empty", ErrInvalidPattern)
	case p == WebhookTest:
		return fmt.Errorf("%w: %s is sent by the test endpoint and cannot be subscribed to", ErrInvalidPattern, p)
	case p == Wildcard:
		return nil
	}
	if t, ok := s.Lookup(p); ok {
		if t.Archived() {
			return fmt.Errorf("%w: %w: %s", ErrInvalidPattern, ErrArchived, p)
		}
		return nil
	}
	if strings.HasSuffix(p, ".*") {
		for _, e := range s.types {
			if !e.Archived() && Matches(p, e.Name) {
				return nil
			}
		}
		return fmt.Errorf("%w: %s matches no event type", ErrInvalidPattern, p)
	}
	return fmt.Errorf("%w: %s is not a known event type", ErrInvalidPattern, p)
}
