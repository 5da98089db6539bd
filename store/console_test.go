package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/store"
)

func sessionKey(prefix string) store.ConsoleLinkKey {
	return store.ConsoleLinkKey{Key: prefix + "_secret", Prefix: prefix, Hash: []byte("hash of " + prefix)}
}

// TestConsoleLinkOpensOneSession: a link opens one session, of its account, acting with
// the key minted for it, until the link's expiry; used again or expired it opens nothing.
func TestConsoleLinkOpensOneSession(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	expires := time.Now().Add(time.Hour).Truncate(time.Second)
	require.NoError(t, st.CreateConsoleLink(ctx, "acme", []byte("link-1"), expires))

	session, err := st.RedeemConsoleLink(ctx, []byte("link-1"), []byte("session-1"), "csrf-1", sessionKey("shka_a"))
	require.NoError(t, err)
	require.Equal(t, "acme", session.AccountID)
	require.False(t, session.Operator())
	require.True(t, expires.Equal(session.ExpiresAt))
	require.NotNil(t, session.APIKeyID)

	_, err = st.RedeemConsoleLink(ctx, []byte("link-1"), []byte("session-2"), "csrf-2", sessionKey("shka_b"))
	require.ErrorIs(t, err, store.ErrNotFound, "a link opens once")
	_, _, err = st.FindAPIKey(ctx, "shka_b")
	require.ErrorIs(t, err, store.ErrNotFound, "the refused redemption minted no key")

	found, credential, err := st.FindConsoleSession(ctx, []byte("session-1"))
	require.NoError(t, err)
	require.Equal(t, session.ID, found.ID)
	require.Equal(t, "shka_a_secret", credential)
	require.Equal(t, "csrf-1", found.CSRFToken)
	key, _, err := st.FindAPIKey(ctx, "shka_a")
	require.NoError(t, err)
	require.True(t, expires.Equal(*key.ExpiresAt), "the key expires with the session")

	require.NoError(t, st.CreateConsoleLink(ctx, "acme", []byte("link-old"), time.Now().Add(-time.Second)))
	_, err = st.RedeemConsoleLink(ctx, []byte("link-old"), []byte("session-3"), "csrf-3", sessionKey("shka_c"))
	require.ErrorIs(t, err, store.ErrNotFound, "an expired link opens nothing")
}

// TestConsoleSessionRevocation: signing out, revoking the account's sessions and revoking
// a session's key each end it; an operator's session is not an account's.
func TestConsoleSessionRevocation(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	later := time.Now().Add(time.Hour)

	operator, err := st.CreateConsoleSession(ctx, []byte("op"), "csrf-op", "platform-key", later)
	require.NoError(t, err)
	require.True(t, operator.Operator())
	_, credential, err := st.FindConsoleSession(ctx, []byte("op"))
	require.NoError(t, err)
	require.Equal(t, "platform-key", credential)

	for i, link := range []string{"l1", "l2", "l3"} {
		require.NoError(t, st.CreateConsoleLink(ctx, "acme", []byte(link), later))
		if i < 2 {
			_, err := st.RedeemConsoleLink(ctx, []byte(link), []byte("s-"+link), "c", sessionKey("shka_"+link))
			require.NoError(t, err)
		}
	}
	s1, _, err := st.FindConsoleSession(ctx, []byte("s-l1"))
	require.NoError(t, err)
	require.NoError(t, st.RevokeConsoleSession(ctx, s1.ID))
	_, _, err = st.FindConsoleSession(ctx, []byte("s-l1"))
	require.ErrorIs(t, err, store.ErrNotFound)
	key, _, err := st.FindAPIKey(ctx, "shka_l1")
	require.NoError(t, err)
	require.NotNil(t, key.RevokedAt, "signing out revokes the session's key")

	n, err := st.RevokeConsoleSessions(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	_, _, err = st.FindConsoleSession(ctx, []byte("s-l2"))
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = st.RedeemConsoleLink(ctx, []byte("l3"), []byte("s-l3"), "c", sessionKey("shka_l3"))
	require.ErrorIs(t, err, store.ErrNotFound, "links not opened yet are revoked too")
	_, _, err = st.FindConsoleSession(ctx, []byte("op"))
	require.NoError(t, err, "the operator's session is no account's")
}

// Console access that ended goes a day later: the used link, the session and the key
// minted for it, an operator's session; what is still live, or ended less than a day ago,
// stays.
func TestDeleteEndedConsoleAccess(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	ctx := t.Context()
	now := time.Now()
	require.NoError(t, st.CreateConsoleLink(ctx, "acme", []byte("link-used"), now.Add(time.Hour)))
	_, err := st.RedeemConsoleLink(ctx, []byte("link-used"), []byte("session-a"), "csrf-a", sessionKey("shka_d"))
	require.NoError(t, err)
	require.NoError(t, st.CreateConsoleLink(ctx, "acme", []byte("link-live"), now.Add(72*time.Hour)))
	_, err = st.CreateConsoleSession(ctx, []byte("session-op"), "csrf-op", "platform-key", now.Add(time.Hour))
	require.NoError(t, err)
	count := func(table string) int {
		var n int
		require.NoError(t, db.Get(&n, `SELECT count(*) FROM `+table))
		return n
	}
	n, err := st.DeleteEndedConsoleAccess(ctx, now.Add(2*time.Hour))
	require.NoError(t, err)
	require.Zero(t, n, "ended less than a day ago (the used link: just now)")

	n, err = st.DeleteEndedConsoleAccess(ctx, now.Add(26*time.Hour))
	require.NoError(t, err)
	require.Equal(t, 3, n, "the used link, the minted key (its session goes with it) and the operator's session")
	require.Equal(t, 1, count("console_links"), "the live link stays")
	require.Zero(t, count("console_sessions"))
	_, _, err = st.FindAPIKey(ctx, "shka_d")
	require.ErrorIs(t, err, store.ErrNotFound)
}
