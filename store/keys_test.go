package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/store"
)

// createKey stores a key of the account named by its prefix, with a hash made from it.
func createKey(t *testing.T, st *store.Store, accountID, prefix string, expiresAt *time.Time) store.APIKey {
	t.Helper()
	k, err := st.CreateAPIKey(t.Context(), store.APIKey{AccountID: accountID, Name: "key " + prefix, Prefix: prefix,
		ExpiresAt: expiresAt}, []byte("hash of "+prefix))
	require.NoError(t, err)
	return k
}

func TestCreateAndFindAPIKey(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	expires := time.Now().Add(time.Hour).Truncate(time.Microsecond)

	created := createKey(t, st, "acct-a", "sk_a1", &expires)
	require.Equal(t, uuid.Version(7), created.ID.Version())
	require.Equal(t, "acct-a", created.AccountID)
	require.Equal(t, "key sk_a1", created.Name)
	require.Equal(t, "sk_a1", created.Prefix)
	require.WithinDuration(t, time.Now(), created.CreatedAt, time.Minute)
	require.True(t, expires.Equal(*created.ExpiresAt))
	require.Nil(t, created.RevokedAt)

	found, hash, err := st.FindAPIKey(ctx, "sk_a1")
	require.NoError(t, err)
	require.Equal(t, created, found)
	require.Equal(t, []byte("hash of sk_a1"), hash)

	_, _, err = st.FindAPIKey(ctx, "sk_none")
	require.ErrorIs(t, err, store.ErrNotFound)
	// A prefix finds one key: no account, not even another one, may reuse it.
	_, err = st.CreateAPIKey(ctx, store.APIKey{AccountID: "acct-b", Name: "copy", Prefix: "sk_a1"}, []byte("other"))
	require.ErrorIs(t, err, store.ErrDuplicate)
}

func TestListAPIKeysPages(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	var want []uuid.UUID
	for i := range 5 {
		want = append(want, createKey(t, st, "acct-a", fmt.Sprintf("sk_a%d", i), nil).ID)
		createKey(t, st, "acct-b", fmt.Sprintf("sk_b%d", i), nil)
	}

	var got []uuid.UUID
	var sizes []int
	page := store.Page{Limit: 2}
	for {
		keys, err := st.ListAPIKeys(t.Context(), "acct-a", page)
		require.NoError(t, err)
		sizes = append(sizes, len(keys))
		if len(keys) == 0 {
			break
		}
		for _, k := range keys {
			require.Equal(t, "acct-a", k.AccountID)
			got = append(got, k.ID)
		}
		page.After = &keys[len(keys)-1].ID
	}
	require.Equal(t, []int{2, 2, 1, 0}, sizes)
	require.Equal(t, want, got, "creation order")
}

// A revocation is for good: revoking again keeps the first revocation's time, and another
// account cannot revoke the key.
func TestRevokeAPIKey(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	k := createKey(t, st, "acct-a", "sk_a1", nil)

	_, err := st.RevokeAPIKey(ctx, "acct-b", k.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = st.RevokeAPIKey(ctx, "acct-a", uuid.New())
	require.ErrorIs(t, err, store.ErrNotFound)
	found, _, err := st.FindAPIKey(ctx, "sk_a1")
	require.NoError(t, err)
	require.Nil(t, found.RevokedAt, "untouched by the refused revocations")

	revoked, err := st.RevokeAPIKey(ctx, "acct-a", k.ID)
	require.NoError(t, err)
	require.NotNil(t, revoked.RevokedAt)
	require.False(t, revoked.Usable(time.Now()))
	again, err := st.RevokeAPIKey(ctx, "acct-a", k.ID)
	require.NoError(t, err)
	require.Equal(t, revoked, again)
	found, _, err = st.FindAPIKey(ctx, "sk_a1")
	require.NoError(t, err)
	require.Equal(t, revoked, found)
}

func TestAPIKeyUsable(t *testing.T) {
	t.Parallel()
	now := time.Now()
	later, earlier := now.Add(time.Minute), now.Add(-time.Minute)
	for name, tc := range map[string]struct {
		key  store.APIKey
		want bool
	}{
		"no expiry":        {store.APIKey{}, true},
		"expires later":    {store.APIKey{ExpiresAt: &later}, true},
		"expires now":      {store.APIKey{ExpiresAt: &now}, false},
		"expired":          {store.APIKey{ExpiresAt: &earlier}, false},
		"revoked":          {store.APIKey{RevokedAt: &earlier}, false},
		"revoked, expires": {store.APIKey{ExpiresAt: &later, RevokedAt: &earlier}, false},
	} {
		require.Equal(t, tc.want, tc.key.Usable(now), name)
	}
}

// auditedCreate creates a webhook of the account in an Audited change whose fn returns
// fnErr after the creation, and returns the webhook it created.
func auditedCreate(t *testing.T, st *store.Store, accountID string, fnErr error) (store.Webhook, error) {
	t.Helper()
	entry := &store.AuditEntry{AccountID: accountID, KeyPrefix: "sk_a1", Action: "webhook.created"}
	var created store.Webhook
	err := st.Audited(t.Context(), entry, func(tx *store.Store) error {
		w := newWebhook("", "audited")
		w.AccountID = accountID
		var err error
		created, err = tx.CreateWebhook(t.Context(), w)
		require.NoError(t, err)
		entry.Resource = created.ID.String()
		entry.Changes = json.RawMessage(`{"name":"audited"}`)
		return fnErr
	})
	return created, err
}

func TestAuditedCommitsTheChangeWithItsEntry(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()

	created, err := auditedCreate(t, st, "acct-a", nil)
	require.NoError(t, err)
	_, err = st.GetWebhook(ctx, store.Scope{AccountID: "acct-a"}, created.ID)
	require.NoError(t, err)
	entries, err := st.ListAudit(ctx, "acct-a", store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, entries, 1)
	e := entries[0]
	require.Equal(t, uuid.Version(7), e.ID.Version())
	require.Equal(t, "acct-a", e.AccountID)
	require.Equal(t, "sk_a1", e.KeyPrefix)
	require.Equal(t, "webhook.created", e.Action)
	require.Equal(t, created.ID.String(), e.Resource, "fn completes the entry")
	require.JSONEq(t, `{"name":"audited"}`, string(e.Changes))
	require.WithinDuration(t, time.Now(), e.At, time.Minute)
}

// When fn fails, neither its change nor the entry is stored.
func TestAuditedRollsBackTheChangeAndItsEntry(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	errRefused := errors.New("refused")

	created, err := auditedCreate(t, st, "acct-a", errRefused)
	require.ErrorIs(t, err, errRefused)
	_, err = st.GetWebhook(ctx, store.Scope{AccountID: "acct-a"}, created.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	entries, err := st.ListAudit(ctx, "acct-a", store.Page{Limit: 10})
	require.NoError(t, err)
	require.Empty(t, entries)
}

func TestListAuditNewestFirst(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	var want []string
	for i := range 5 {
		for _, account := range []string{"acct-a", "acct-b"} {
			entry := &store.AuditEntry{AccountID: account, KeyPrefix: "sk_1", Action: fmt.Sprintf("action.%d", i)}
			require.NoError(t, st.Audited(ctx, entry, func(*store.Store) error { return nil }))
		}
		want = append([]string{fmt.Sprintf("action.%d", i)}, want...)
	}

	var got []string
	var sizes []int
	page := store.Page{Limit: 2}
	for {
		entries, err := st.ListAudit(ctx, "acct-a", page)
		require.NoError(t, err)
		sizes = append(sizes, len(entries))
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			require.Equal(t, "acct-a", e.AccountID)
			require.JSONEq(t, `{}`, string(e.Changes), "no changes recorded as an empty object")
			got = append(got, e.Action)
		}
		page.After = &entries[len(entries)-1].ID
	}
	require.Equal(t, []int{2, 2, 1, 0}, sizes)
	require.Equal(t, want, got)
}
