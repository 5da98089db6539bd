package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// healthcheck GETs the URL in args and succeeds on 200: container images without curl
// use it as their health check.
func healthcheck(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: surveyhooks healthcheck http://127.0.0.1:8080/readyz")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return fmt.Errorf("bad URL: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", args[0], resp.StatusCode)
	}
	return nil
}
