// Command surveyhooks runs durable webhook delivery for survey platforms.
//
//	surveyhooks dev       everything in one process on embedded defaults
//	surveyhooks serve     the REST API (and the outbox dispatcher)
//	surveyhooks worker    a Temporal worker that delivers webhooks
//	surveyhooks migrate   apply database migrations and exit
//	surveyhooks rekey     re-encrypt webhook secrets under the first encryption key
//
// Configuration comes from the environment; see README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.temporal.io/sdk/worker"
)

const usage = `usage: surveyhooks <command>

commands:
  dev       run API, worker, Temporal (with Web UI) and PostgreSQL in one process
  serve     run the REST API against DATABASE_URL and TEMPORAL_ADDRESS
  worker    run a delivery worker against DATABASE_URL and TEMPORAL_ADDRESS
  migrate   apply database migrations to DATABASE_URL and exit
  rekey     re-encrypt every webhook secret in DATABASE_URL under the first key of
            SURVEYHOOKS_ENCRYPTION_KEYS and exit (replacing a key: add the new one
            first, rekey, then drop the old one)
  bench     measure throughput and latency on an in-process stack (see BENCHMARKS.md)
  healthcheck URL
            exit 0 when URL answers 200 (container health checks; the image has no curl)

Configuration is read from the environment (see README.md).
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	worker.SetStickyWorkflowCacheSize(workflowCacheSize)

	var run func(context.Context, config) error
	switch os.Args[1] {
	case "dev":
		run = runDev
	case "serve":
		run = runServe
	case "worker":
		run = runWorker
	case "migrate":
		run = runMigrate
	case "rekey":
		run = runRekey
	case "bench":
		run = runBench
	case "healthcheck":
		if err := healthcheck(ctx, os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "surveyhooks healthcheck: %s\n", err)
			os.Exit(1)
		}
		return
	case "help", "-h", "-help", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "surveyhooks: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	cfg, err := loadConfig(osLookup)
	if err == nil {
		err = run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "surveyhooks %s: %s\n", os.Args[1], firstLine(err))
		os.Exit(1)
	}
}
