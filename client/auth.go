package client

import (
	"context"
	"net/http"
)

// WithKey sends key as the bearer token of every request, as every /api route requires:
// a platform key (SURVEYHOOKS_API_KEYS) or an account key (shka_...).
func WithKey(key string) ClientOption {
	header := "Bearer " + key
	return WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", header)
		return nil
	})
}
