package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/surveyhooks/surveyhooks/eventtype"
)

const eventTypeColumns = `name, description, schema, example, archived_at, created_at, updated_at`

// listEventTypesQuery orders by bytes (COLLATE "C"), as Go compares strings: a locale's
// collation would skip the dots and underscores.
const listEventTypesQuery = `SELECT ` + eventTypeColumns + ` FROM event_types ORDER BY name COLLATE "C"`

const getEventTypeQuery = `SELECT ` + eventTypeColumns + ` FROM event_types WHERE name = $1`

// lockEventTypeQuery reads a type to change it: concurrent changes of one type take turns,
// so that each checks its schema and example against what the other wrote.
const lockEventTypeQuery = getEventTypeQuery + ` FOR UPDATE`

const insertEventTypeQuery = `INSERT INTO event_types (name, description, schema, example)
	VALUES (:name, :description, :schema, :example)
	RETURNING ` + eventTypeColumns

const updateEventTypeQuery = `UPDATE event_types SET
	description = :description,
	schema = :schema,
	example = :example,
	archived_at = :archived_at,
	updated_at = now()
	WHERE name = :name
	RETURNING ` + eventTypeColumns

// eventTypeRow is a row of event_types; json columns are read as text, kept byte for byte.
type eventTypeRow struct {
	Name        string     `db:"name"`
	Description string     `db:"description"`
	Schema      string     `db:"schema"`
	Example     string     `db:"example"`
	ArchivedAt  *time.Time `db:"archived_at"`
	CreatedAt   time.Time  `db:"created_at"`
	UpdatedAt   time.Time  `db:"updated_at"`
}

func (r eventTypeRow) eventType() eventtype.Type {
	return eventtype.Type{
		Name: r.Name, Description: r.Description,
		Schema: json.RawMessage(r.Schema), Example: json.RawMessage(r.Example),
		ArchivedAt: r.ArchivedAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

func eventTypeRowOf(t eventtype.Type) eventTypeRow {
	return eventTypeRow{Name: t.Name, Description: t.Description, Schema: string(t.Schema),
		Example: string(t.Example), ArchivedAt: t.ArchivedAt}
}

// ListEventTypes returns every registered type, archived ones included, in name order
// (eventtype.Source). webhook.test is built in and not among them.
func (s *Store) ListEventTypes(ctx context.Context) ([]eventtype.Type, error) {
	var rows []eventTypeRow
	if err := s.q.SelectContext(ctx, &rows, listEventTypesQuery); err != nil {
		return nil, fmt.Errorf("list event types: %w", err)
	}
	types := make([]eventtype.Type, 0, len(rows))
	for _, r := range rows {
		types = append(types, r.eventType())
	}
	return types, nil
}

// GetEventType returns the registered type called name, or ErrNotFound.
func (s *Store) GetEventType(ctx context.Context, name string) (eventtype.Type, error) {
	var r eventTypeRow
	if err := s.q.GetContext(ctx, &r, getEventTypeQuery, name); err != nil {
		return eventtype.Type{}, fmt.Errorf("get event type %s: %w", name, mapError(err))
	}
	return r.eventType(), nil
}

// CreateEventType registers t (its name, description, schema and example; the times are
// the database's), or returns ErrDuplicate when the name is taken. The caller has checked
// t (eventtype.CheckName, eventtype.CheckDefinition).
func (s *Store) CreateEventType(ctx context.Context, t eventtype.Type) (eventtype.Type, error) {
	var r eventTypeRow
	if err := namedGet(ctx, s.q, &r, insertEventTypeQuery, eventTypeRowOf(t)); err != nil {
		return eventtype.Type{}, fmt.Errorf("insert event type %s: %w", t.Name, mapError(err))
	}
	return r.eventType(), nil
}

// UpdateEventType changes the type called name: change gets the stored type, locked for
// the change, and edits its description, schema, example or archive time; an error from
// change is returned as it is and writes nothing. It returns the stored result, or
// ErrNotFound. It runs in the transaction of the Store it is called on (an Audited one),
// or in its own.
func (s *Store) UpdateEventType(ctx context.Context, name string, change func(*eventtype.Type) error) (eventtype.Type, error) {
	var updated eventtype.Type
	err := s.inTxOrCurrent(ctx, func(q queryer) error {
		var r eventTypeRow
		if err := q.GetContext(ctx, &r, lockEventTypeQuery, name); err != nil {
			return fmt.Errorf("get event type %s: %w", name, mapError(err))
		}
		t := r.eventType()
		if err := change(&t); err != nil {
			return err
		}
		t.Name = name
		if err := namedGet(ctx, q, &r, updateEventTypeQuery, eventTypeRowOf(t)); err != nil {
			return fmt.Errorf("update event type %s: %w", name, mapError(err))
		}
		updated = r.eventType()
		return nil
	})
	return updated, err
}

// inTxOrCurrent runs fn in the Store's transaction when it has one (an Audited Store), or
// else in a new one.
func (s *Store) inTxOrCurrent(ctx context.Context, fn func(q queryer) error) error {
	if _, inTx := s.q.(*sqlx.Tx); inTx {
		return fn(s.q)
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return fn(tx) })
}

// namedGet runs a statement with :name parameters taken from arg and scans its one row.
func namedGet(ctx context.Context, q queryer, dest any, query string, arg any) error {
	bound, args, err := sqlx.Named(query, arg)
	if err != nil {
		return fmt.Errorf("bind %T: %w", arg, err)
	}
	return q.GetContext(ctx, dest, q.Rebind(bound), args...)
}
