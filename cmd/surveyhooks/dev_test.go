package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/keyring"
)

// TestDevEncryptionKeysSurviveRestarts: dev makes its key on the first start, keeps it in
// the data folder for the owner alone, and reads it back on the next start, so that the
// secrets it sealed still open; a key given in the environment wins.
func TestDevEncryptionKeysSurviveRestarts(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	path := filepath.Join(dataDir, encryptionKeyFile)

	first, where, created, err := devEncryptionKeys(config{}, dataDir)
	require.NoError(t, err)
	require.True(t, created)
	require.Contains(t, where, path)
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	saved, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, where, string(saved[:8]), "the banner shows where the key is, not the key")

	sealed, err := first.Seal([]byte("whsec_x"), nil)
	require.NoError(t, err)
	again, _, created, err := devEncryptionKeys(config{}, dataDir)
	require.NoError(t, err)
	require.False(t, created)
	opened, err := again.Open(sealed, nil)
	require.NoError(t, err, "the next start reads what the first sealed")
	require.Equal(t, "whsec_x", string(opened))

	given, err := keyring.Parse(keyring.Generate())
	require.NoError(t, err)
	keys, where, created, err := devEncryptionKeys(config{EncryptionKeys: given}, dataDir)
	require.NoError(t, err)
	require.False(t, created)
	require.Same(t, given, keys)
	require.Contains(t, where, "SURVEYHOOKS_ENCRYPTION_KEYS")

	require.NoError(t, os.WriteFile(path, []byte("not a key\n"), 0o600))
	_, _, _, err = devEncryptionKeys(config{}, dataDir)
	require.ErrorContains(t, err, path, "a damaged key file is refused, not replaced")
}
