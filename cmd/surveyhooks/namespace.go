package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/retention"
)

// namespaceSetupTimeout bounds the calls a starting worker makes to prepare the namespace.
const namespaceSetupTimeout = 30 * time.Second

// prepareNamespace readies an existing cluster's namespace when a worker starts: it
// registers the search attributes the event workflows set (a fresh cluster lacks them, and
// starting a workflow with an unknown one fails) and keeps the retention schedule. Neither
// failure stops the worker — an API key without admin rights on Temporal Cloud, say:
// delivering matters more, and the log says what to do instead.
func prepareNamespace(ctx context.Context, cfg config, tc client.Client, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, namespaceSetupTimeout)
	defer cancel()
	if err := delivery.RegisterSearchAttributes(ctx, tc, cfg.TemporalNamespace); err != nil {
		logger.ErrorContext(ctx, "cannot register surveyhooks' search attributes; event workflows will not start until they exist",
			"err", err, "namespace", cfg.TemporalNamespace, "register_with", searchAttributesCommand(cfg.TemporalNamespace))
	}
	ensureRetention(ctx, cfg, tc, logger)
}

// ensureRetention creates or updates the retention schedule (SURVEYHOOKS_RETENTION), or
// removes it when retention is off. A failure is logged: history then grows until the
// next worker start manages it.
func ensureRetention(ctx context.Context, cfg config, tc client.Client, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, namespaceSetupTimeout)
	defer cancel()
	if cfg.Retention == 0 {
		if err := retention.DeleteSchedule(ctx, tc); err != nil {
			logger.ErrorContext(ctx, "cannot remove the retention schedule", "err", err, "schedule", retention.ScheduleID)
			return
		}
		logger.InfoContext(ctx, "retention is off (SURVEYHOOKS_RETENTION=0): delivery history is kept forever")
		return
	}
	err := retention.EnsureSchedule(ctx, tc, retention.ScheduleOptions{
		TaskQueue: cfg.TaskQueue,
		Input:     retention.Input{MaxAge: cfg.Retention},
	})
	if err != nil {
		logger.ErrorContext(ctx, "cannot create the retention schedule; old delivery history is not deleted",
			"err", err, "schedule", retention.ScheduleID)
		return
	}
	logger.InfoContext(ctx, "retention schedule ready", "schedule", retention.ScheduleID,
		"retention", cfg.Retention.String(), "every", retention.DefaultInterval.String())
}

// searchAttributesCommand is the Temporal CLI command an operator can run instead.
func searchAttributesCommand(namespace string) string {
	want := delivery.SearchAttributes()
	var b strings.Builder
	fmt.Fprintf(&b, "temporal operator search-attribute create --namespace %s", namespace)
	for _, name := range slices.Sorted(maps.Keys(want)) {
		typ := "Keyword"
		if want[name] == enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST {
			typ = "KeywordList"
		}
		fmt.Fprintf(&b, " --name %s --type %s", name, typ)
	}
	return b.String()
}
