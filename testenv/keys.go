package testenv

import (
	"github.com/surveyhooks/surveyhooks/keyring"
)

// encryptionKey is this test binary's key for webhook secrets: every store and every
// process a test starts seals with it.
var encryptionKey = keyring.Generate()

// EncryptionKeys returns the SURVEYHOOKS_ENCRYPTION_KEYS value that processes started by
// this test binary need to read its stores' secrets.
func EncryptionKeys() string {
	return encryptionKey
}

// Keyring returns the keyring of EncryptionKeys.
func Keyring() *keyring.Keyring {
	k, err := keyring.Parse(encryptionKey)
	if err != nil {
		panic(err) // the key is generated above
	}
	return k
}
