package retention_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/retention"
)

// TestRetentionClearsExpiredSecrets rotates three webhooks: the run clears the previous
// secrets whose overlap ended, however recently, and keeps the one still signing.
func TestRetentionClearsExpiredSecrets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	insert := func(expires time.Time) uuid.UUID {
		id := uuid.New()
		_, err := b.db.Exec(`INSERT INTO webhooks (id, account_id, survey_id, name, url, events, secret_sealed,
			previous_secret_sealed, previous_secret_expires_at) VALUES ($1, 'default', 'survey-1', 'hook',
			'https://example.com/hook', '{*}', '\x01', '\x02', $2)`, id, expires)
		require.NoError(t, err)
		return id
	}
	longAgo := insert(b.old)
	justNow := insert(b.now.Add(-time.Second))
	running := insert(b.now.Add(time.Hour))

	res := b.run(t, retention.Input{MaxAge: maxAge})
	require.Equal(t, retention.Result{Secrets: 2}, res)
	previous := func(id uuid.UUID) *string {
		var s *string
		require.NoError(t, b.db.Get(&s, `SELECT previous_secret_sealed FROM webhooks WHERE id = $1`, id))
		return s
	}
	require.Nil(t, previous(longAgo))
	require.Nil(t, previous(justNow))
	require.NotNil(t, previous(running))
}
