package keyring

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	old, cur := Generate(), Generate()
	k, err := Parse(cur + ", " + old)
	if err != nil {
		t.Fatal(err)
	}
	onlyOld, err := Parse(old)
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("webhooks/1/secret")
	sealed, err := onlyOld.Seal([]byte("whsec_x"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("whsec_x")) {
		t.Fatal("sealed value holds the plaintext")
	}
	plain, err := k.Open(sealed, aad)
	if err != nil || string(plain) != "whsec_x" {
		t.Fatalf("Open under the second key = %q, %v", plain, err)
	}
	if k.Current(sealed) {
		t.Fatal("a value under the old key reads as current")
	}
	resealed, err := k.Seal(plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Current(resealed) {
		t.Fatal("a value under the first key does not read as current")
	}
	if _, err := onlyOld.Open(resealed, aad); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Open with a keyring lacking the key: %v, want ErrUnknownKey", err)
	}
	if _, err := k.Open(sealed, []byte("webhooks/2/secret")); err == nil {
		t.Fatal("a value opened under another row's aad")
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := k.Open(tampered, aad); err == nil {
		t.Fatal("a changed value opened")
	}
	again, _ := k.Seal(plain, aad)
	if bytes.Equal(again, resealed) {
		t.Fatal("two seals of one value are equal: the nonce repeats")
	}
}

func TestParseRefuses(t *testing.T) {
	k := Generate()
	for _, in := range []string{"", " , ", "not base64!", "c2hvcnQ=", k + "," + k} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		} else if strings.Contains(err.Error(), k) {
			t.Errorf("Parse(%q) error shows the key: %v", in, err)
		}
	}
	for _, in := range []string{k, strings.TrimRight(k, "="), strings.NewReplacer("+", "-", "/", "_").Replace(k)} {
		if _, err := Parse(in); err != nil {
			t.Errorf("Parse(%q): %v", in, err)
		}
	}
}
