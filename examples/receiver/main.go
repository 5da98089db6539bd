// Command receiver is a minimal webhook receiver for surveyhooks. It verifies
// every request with the signature package's middleware, drops repeats of a
// webhook-id it has already seen and prints each event as one line.
//
//	WEBHOOK_SECRET='whsec_...' go run ./examples/receiver [-addr 127.0.0.1:9000]
//
// WEBHOOK_PREVIOUS_SECRET, when set, is accepted too, for a secret rotation.
// RECEIVER_ADDR sets the listen address like -addr.
//
// surveyhooks refuses plain http and loopback targets by default. To point a
// local `surveyhooks dev` at this receiver, start it with
// SURVEYHOOKS_ALLOW_HTTP=true and SURVEYHOOKS_ALLOWED_CIDRS=127.0.0.0/8, and
// create the webhook with the URL http://127.0.0.1:9000/webhook and the same
// secret. See docs/receivers.md.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/surveyhooks/surveyhooks/signature"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		os.Exit(1)
	}
}

// run parses the configuration, serves until ctx ends and then shuts down.
// Events go to stdout, the log to stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("receiver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr(getenv, "RECEIVER_ADDR", "127.0.0.1:9000"), "listen address (env RECEIVER_ADDR)")
	path := fs.String("path", "/webhook", "URL path that receives webhooks")
	remember := fs.Int("remember", 10000, "how many webhook-id values to remember for deduplication")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The secret comes only from the environment: command-line arguments are
	// visible to every user of the machine.
	secret := getenv("WEBHOOK_SECRET")
	if secret == "" {
		return errors.New("WEBHOOK_SECRET is not set")
	}
	var opts []signature.Option
	if previous := getenv("WEBHOOK_PREVIOUS_SECRET"); previous != "" {
		opts = append(opts, signature.WithSecrets(previous))
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	mux := http.NewServeMux()
	mux.Handle("POST "+*path, newHandler(secret, opts, newDedup(*remember), stdout))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("receiving webhooks", "url", "http://"+ln.Addr().String()+*path)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// newHandler verifies requests with signature.Middleware and prints each new
// event as one line on out.
func newHandler(secret string, opts []signature.Option, seen *dedup, out io.Writer) http.Handler {
	var mu sync.Mutex // keeps lines from concurrent requests whole
	// Middleware requires the Standard Webhooks headers, so webhook-id is
	// there to deduplicate on.
	return signature.Middleware(secret, opts...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, _ := signature.EventFromContext(r.Context())
		msgID := r.Header.Get(signature.HeaderWebhookID)
		if !seen.add(msgID) {
			// Acknowledge, or surveyhooks would retry what we already have.
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "duplicate\n")
			return
		}
		data := ev.Data
		var compact bytes.Buffer
		if json.Compact(&compact, ev.Data) == nil {
			data = compact.Bytes()
		}
		mu.Lock()
		// webhook-id is the Standard Webhooks message id (surveyhooks sends the delivery's
		// id), not the id of the webhook: print it under a name that cannot be mistaken.
		fmt.Fprintf(out, "%s %s event_id=%s message_id=%s data=%s\n",
			ev.Timestamp.UTC().Format(time.RFC3339), ev.EventType, ev.EventID, msgID, data)
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "OK\n")
	}))
}

// dedup is a bounded set of message IDs: when full it forgets the oldest, so
// memory stays flat however long the receiver runs.
type dedup struct {
	mu    sync.Mutex
	ids   map[string]struct{}
	order []string // ring buffer of ids in insertion order
	next  int
}

func newDedup(size int) *dedup {
	size = max(size, 1)
	return &dedup{ids: make(map[string]struct{}, size), order: make([]string, 0, size)}
}

// add records id and reports whether it was new.
func (d *dedup) add(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.ids[id]; ok {
		return false
	}
	if len(d.order) < cap(d.order) {
		d.order = append(d.order, id)
	} else {
		delete(d.ids, d.order[d.next])
		d.order[d.next] = id
		d.next = (d.next + 1) % len(d.order)
	}
	d.ids[id] = struct{}{}
	return true
}

func envOr(getenv func(string) string, key, fallback string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return fallback
}
