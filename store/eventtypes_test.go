package store_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/store"
)

// TestEventTypeDefaults checks migration 0005's rows: the survey types, each with a schema
// that compiles and an example that matches it.
func TestEventTypeDefaults(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)

	types, err := st.ListEventTypes(t.Context())
	require.NoError(t, err)
	var names []string
	for _, typ := range types {
		names = append(names, typ.Name)
		require.NoError(t, eventtype.CheckName(typ.Name))
		require.NotEmpty(t, typ.Description, typ.Name)
		require.False(t, typ.Archived(), typ.Name)
		require.False(t, typ.CreatedAt.IsZero(), typ.Name)
		_, err := eventtype.CheckDefinition(typ.Schema, typ.Example)
		require.NoError(t, err, typ.Name)
	}
	require.Equal(t, []string{
		eventtype.FormSubmissionCreated,
		eventtype.SurveyResponseCompleted,
		eventtype.SurveyResponseDisqualified,
		eventtype.SurveyResponseUpdated,
	}, names)
}

func TestCreateEventType(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()

	// Stored as sent, member order and all: json, not jsonb.
	schema := json.RawMessage(`{"type":"object","required":["z","a"],"properties":{"z":{"type":"string"},"a":{"type":"integer"}}}`)
	example := json.RawMessage(`{"z":"last first","a":1}`)
	created, err := st.CreateEventType(ctx, eventtype.Type{Name: "survey.response.created",
		Description: "A new response.", Schema: schema, Example: example})
	require.NoError(t, err)
	require.Equal(t, "survey.response.created", created.Name)
	require.Equal(t, "A new response.", created.Description)
	require.Equal(t, string(schema), string(created.Schema))
	require.Equal(t, string(example), string(created.Example))
	require.Nil(t, created.ArchivedAt)
	require.WithinDuration(t, time.Now(), created.CreatedAt, time.Minute)
	require.Equal(t, created.CreatedAt, created.UpdatedAt)

	got, err := st.GetEventType(ctx, "survey.response.created")
	require.NoError(t, err)
	require.Equal(t, created, got)

	_, err = st.CreateEventType(ctx, eventtype.Type{Name: "survey.response.created", Schema: schema, Example: example})
	require.ErrorIs(t, err, store.ErrDuplicate)
	_, err = st.GetEventType(ctx, "survey.response.deleted")
	require.ErrorIs(t, err, store.ErrNotFound)

	types, err := st.ListEventTypes(ctx)
	require.NoError(t, err)
	require.Len(t, types, 5)
	require.Equal(t, "survey.response.created", types[2].Name, "in name order")
}

func TestUpdateEventType(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	before, err := st.GetEventType(ctx, eventtype.FormSubmissionCreated)
	require.NoError(t, err)

	schema := json.RawMessage(`{"type":"object","required":["submission"]}`)
	updated, err := st.UpdateEventType(ctx, eventtype.FormSubmissionCreated, func(typ *eventtype.Type) error {
		require.Equal(t, before, *typ, "change gets the stored type")
		typ.Schema = schema
		typ.Description = "A form was sent."
		typ.Name = "renamed.never" // the name is the row's
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, eventtype.FormSubmissionCreated, updated.Name)
	require.Equal(t, string(schema), string(updated.Schema))
	require.Equal(t, string(before.Example), string(updated.Example))
	require.Equal(t, "A form was sent.", updated.Description)
	require.Equal(t, before.CreatedAt, updated.CreatedAt)
	require.True(t, updated.UpdatedAt.After(before.UpdatedAt))

	// An error of change writes nothing.
	refused := errors.New("refused")
	_, err = st.UpdateEventType(ctx, eventtype.FormSubmissionCreated, func(typ *eventtype.Type) error {
		typ.Description = "lost"
		return refused
	})
	require.ErrorIs(t, err, refused)
	got, err := st.GetEventType(ctx, eventtype.FormSubmissionCreated)
	require.NoError(t, err)
	require.Equal(t, updated, got)

	now := time.Now()
	archived, err := st.UpdateEventType(ctx, eventtype.FormSubmissionCreated, func(typ *eventtype.Type) error {
		typ.ArchivedAt = &now
		return nil
	})
	require.NoError(t, err)
	require.True(t, archived.Archived())
	require.WithinDuration(t, now, *archived.ArchivedAt, time.Millisecond)

	_, err = st.UpdateEventType(ctx, "survey.response.deleted", func(*eventtype.Type) error { return nil })
	require.ErrorIs(t, err, store.ErrNotFound)
}

// TestUpdateEventTypeInAudit checks that a change made in an Audited transaction commits
// with its audit entry and rolls back with it.
func TestUpdateEventTypeInAudit(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()

	entry := &store.AuditEntry{AccountID: store.DefaultAccount, KeyPrefix: "platform-test", Action: "event_type.updated",
		Resource: eventtype.SurveyResponseUpdated}
	failed := errors.New("failed after the change")
	err := st.Audited(ctx, entry, func(tx *store.Store) error {
		_, err := tx.UpdateEventType(ctx, eventtype.SurveyResponseUpdated, func(typ *eventtype.Type) error {
			typ.Description = "rolled back"
			return nil
		})
		require.NoError(t, err)
		return failed
	})
	require.ErrorIs(t, err, failed)
	got, err := st.GetEventType(ctx, eventtype.SurveyResponseUpdated)
	require.NoError(t, err)
	require.NotEqual(t, "rolled back", got.Description)

	err = st.Audited(ctx, entry, func(tx *store.Store) error {
		_, err := tx.UpdateEventType(ctx, eventtype.SurveyResponseUpdated, func(typ *eventtype.Type) error {
			typ.Description = "kept"
			return nil
		})
		return err
	})
	require.NoError(t, err)
	got, err = st.GetEventType(ctx, eventtype.SurveyResponseUpdated)
	require.NoError(t, err)
	require.Equal(t, "kept", got.Description)
	entries, err := st.ListAudit(ctx, store.DefaultAccount, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "event_type.updated", entries[0].Action)
}

// TestEventTypeRegistryAcrossProcesses: a change made through one API process is seen at
// once by that process (its registry is invalidated) and by another process once its
// registry's refresh interval has passed.
func TestEventTypeRegistryAcrossProcesses(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	here := eventtype.NewRegistry(st, time.Hour)
	there := eventtype.NewRegistry(st, 200*time.Millisecond)
	data := json.RawMessage(`{"form":{"id":"frm_1"}}`)
	require.NoError(t, here.Check(ctx, eventtype.FormSubmissionCreated, data))
	require.NoError(t, there.Check(ctx, eventtype.FormSubmissionCreated, data))

	_, err := st.UpdateEventType(ctx, eventtype.FormSubmissionCreated, func(typ *eventtype.Type) error {
		typ.Schema = json.RawMessage(`{"type":"object","required":["submission"]}`)
		typ.Example = json.RawMessage(`{"submission":{}}`)
		return nil
	})
	require.NoError(t, err)
	here.Invalidate()

	var derr *eventtype.DataError
	require.ErrorAs(t, here.Check(ctx, eventtype.FormSubmissionCreated, data), &derr)
	require.Equal(t, "/submission", derr.Problems[0].Pointer)
	require.Eventually(t, func() bool {
		return errors.As(there.Check(ctx, eventtype.FormSubmissionCreated, data), &derr)
	}, 5*time.Second, 20*time.Millisecond)
}
