// Package keyring encrypts secrets at rest with AES-256-GCM under a list of keys: the first
// key encrypts, every key decrypts, so that keys can be replaced without a moment in which
// some stored secret cannot be read (add the new key first, re-encrypt, then drop the old).
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of every key: AES-256.
const KeySize = 32

// version is the first byte of every sealed value; a new format gets a new number.
const version byte = 1

// idSize is the length of the key id stored with each sealed value: enough to pick the key
// among a handful, and too short to say anything about it.
const idSize = 4

// overhead is what sealing adds to a plaintext: version, key id, nonce and GCM tag.
const overhead = 1 + idSize + 12 + 16

// Keyring holds the keys; it is safe for concurrent use.
type Keyring struct {
	keys []key
}

type key struct {
	id   [idSize]byte
	aead cipher.AEAD
}

// ErrUnknownKey means a value was sealed under a key the keyring does not hold.
var ErrUnknownKey = errors.New("sealed under a key that SURVEYHOOKS_ENCRYPTION_KEYS does not hold")

// Parse reads a comma-separated list of base64 keys of KeySize bytes each (standard or
// URL alphabet, padded or not). The first key encrypts; all of them decrypt.
func Parse(list string) (*Keyring, error) {
	var k Keyring
	for i, field := range strings.Split(list, ",") {
		field = strings.TrimSpace(field)
		if field == "" {
			continue
		}
		raw, err := decodeKey(field)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		if err := k.add(raw); err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
	}
	if len(k.keys) == 0 {
		return nil, errors.New("no key: give one or more base64 keys of 32 bytes, comma-separated")
	}
	return &k, nil
}

// New returns a keyring over raw keys of KeySize bytes each, the first one encrypting.
func New(raw ...[]byte) (*Keyring, error) {
	var k Keyring
	for i, r := range raw {
		if err := k.add(r); err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
	}
	if len(k.keys) == 0 {
		return nil, errors.New("no key")
	}
	return &k, nil
}

// Generate returns a new random key, base64-encoded as Parse reads it.
func Generate() string {
	raw := make([]byte, KeySize)
	_, _ = rand.Read(raw) // never fails (crypto/rand)
	return base64.StdEncoding.EncodeToString(raw)
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(s); err == nil {
			if len(raw) != KeySize {
				return nil, fmt.Errorf("decodes to %d bytes; a key is %d bytes (make one with: openssl rand -base64 32)", len(raw), KeySize)
			}
			return raw, nil
		}
	}
	return nil, errors.New("is not base64 (make one with: openssl rand -base64 32)")
}

func (k *Keyring) add(raw []byte) error {
	if len(raw) != KeySize {
		return fmt.Errorf("is %d bytes; a key is %d bytes", len(raw), KeySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(append([]byte("surveyhooks key id\x00"), raw...))
	var kk key
	copy(kk.id[:], sum[:])
	kk.aead = aead
	for _, other := range k.keys {
		if other.id == kk.id {
			return errors.New("is given twice")
		}
	}
	k.keys = append(k.keys, kk)
	return nil
}

// Seal encrypts plaintext under the first key. aad binds the value to where it is stored
// (the row and column): a sealed value copied to another row does not open there.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	kk := k.keys[0]
	out := make([]byte, 1+idSize, overhead+len(plaintext))
	out[0] = version
	copy(out[1:], kk.id[:])
	nonce := make([]byte, kk.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out = append(out, nonce...)
	return kk.aead.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts a value made by Seal with the same aad, under whichever key sealed it.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	kk, err := k.keyOf(sealed)
	if err != nil {
		return nil, err
	}
	nonceEnd := 1 + idSize + kk.aead.NonceSize()
	plain, err := kk.aead.Open(nil, sealed[1+idSize:nonceEnd], sealed[nonceEnd:], aad)
	if err != nil {
		return nil, errors.New("open sealed value: it was changed, or belongs to another row")
	}
	return plain, nil
}

// Current reports whether sealed was made under the first key, so that a re-encryption
// can skip it.
func (k *Keyring) Current(sealed []byte) bool {
	kk, err := k.keyOf(sealed)
	return err == nil && kk.id == k.keys[0].id
}

func (k *Keyring) keyOf(sealed []byte) (key, error) {
	if len(sealed) < overhead || sealed[0] != version {
		return key{}, errors.New("open sealed value: not a value sealed by this version")
	}
	for _, kk := range k.keys {
		if [idSize]byte(sealed[1:1+idSize]) == kk.id {
			return kk, nil
		}
	}
	return key{}, ErrUnknownKey
}
