package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/api"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// TestConsoleConfig reads the console's settings, and names each bad one.
func TestConsoleConfig(t *testing.T) {
	cfg, err := loadConfig(mapLookup(map[string]string{
		"SURVEYHOOKS_CONSOLE_URL":             "https://hooks.example.com",
		"SURVEYHOOKS_CONSOLE_FRAME_ANCESTORS": "'self', https://app.example.com https://*.example.org:8443",
		"SURVEYHOOKS_CONSOLE_PRODUCT_NAME":    "Acme Surveys",
		"SURVEYHOOKS_CONSOLE_ACCENT":          "#7b3fe4",
	}))
	require.NoError(t, err)
	require.Equal(t, "https://hooks.example.com", cfg.ConsoleURL)
	require.Equal(t, []string{"'self'", "https://app.example.com", "https://*.example.org:8443"}, cfg.ConsoleFrameAncestors)
	require.Equal(t, "Acme Surveys", cfg.ConsoleProductName)

	for name, value := range map[string]string{
		"SURVEYHOOKS_CONSOLE_URL":             "https://hooks.example.com/console/",
		"SURVEYHOOKS_CONSOLE_FRAME_ANCESTORS": "https://app.example.com; script-src *",
	} {
		_, err := loadConfig(mapLookup(map[string]string{name: value}))
		require.ErrorContains(t, err, name)
	}
	_, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_CONSOLE_FRAME_ANCESTORS": "javascript:alert(1)"}))
	require.ErrorContains(t, err, "SURVEYHOOKS_CONSOLE_FRAME_ANCESTORS")
}

// TestHTTPHandlerMountsConsole: serve's handler answers the console under /console/ and the
// API everywhere else; a logo file that is no image stops it.
func TestHTTPHandlerMountsConsole(t *testing.T) {
	st := store.New(testenv.Postgres(t), testenv.Keyring())
	srv := api.New(api.Config{APIKeys: []string{"k"}}, st, nil, nil)
	cfg, err := loadConfig(mapLookup(nil))
	require.NoError(t, err)
	h, err := newHTTPHandler(cfg, st, srv, "", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	for path, want := range map[string]string{"/console/signin": "Platform API key", "/healthz": `"ok"`} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		require.Equal(t, http.StatusOK, rec.Code, path)
		require.Contains(t, rec.Body.String(), want, path)
	}

	cfg.ConsoleLogoFile = filepath.Join(t.TempDir(), "logo.png")
	require.NoError(t, os.WriteFile(cfg.ConsoleLogoFile, []byte("not an image"), 0o600))
	_, err = newHTTPHandler(cfg, st, srv, "", slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "logo")
}
