package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/surveyhooks/surveyhooks/bench"
	"github.com/surveyhooks/surveyhooks/keyring"
)

// runSoak runs `surveyhooks bench -soak D`: the production shape as processes of this
// executable beside a Temporal cluster of two nodes, at half its measured maximum rate.
func runSoak(ctx context.Context, cfg config, d time.Duration, out string, concurrency int, failRate float64, jsonOut bool, stdout, stderr io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this executable: %w", err)
	}
	logger := benchLogger(cfg, stderr, false)
	rep, err := bench.Soak(ctx, bench.SoakOptions{
		Duration:       d,
		Concurrency:    concurrency,
		Binary:         self,
		EncryptionKeys: keyring.Generate(),
		FailRate:       failRate,
		Out:            out,
		Logger:         logger,
		Progress:       stderr,
	})
	if err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(stdout)
}
