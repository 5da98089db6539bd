package localtemporal

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

func TestServerLoggerWith(t *testing.T) {
	var out bytes.Buffer
	l, _ := newServerLogger(slog.New(slog.NewTextHandler(&out, nil)))

	// log.With is how the server adds tags.
	// Three levels, so that the parent's tags come from an append with room to spare.
	shard := log.With(log.With(log.With(l, tag.NewStringTag("service", "history")),
		tag.NewStringTag("host", "h")), tag.NewStringTag("ns", "default"))
	// Two children of one parent: each must carry only its own tag.
	a := log.With(shard, tag.NewInt("shard", 1))
	b := log.With(shard, tag.NewInt("shard", 2))
	a.Warn("from a", tag.NewStringTag("k", "v"))
	b.Error("from b")
	shard.Info("below the level")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 records (info is dropped), got %d:\n%s", len(lines), out.String())
	}
	for _, want := range []struct{ line, has, hasNot string }{
		{lines[0], `msg="from a" service=history host=h ns=default shard=1 k=v`, "shard=2"},
		{lines[1], `msg="from b" service=history host=h ns=default shard=2`, "shard=1"},
	} {
		if !strings.Contains(want.line, want.has) || strings.Contains(want.line, want.hasNot) {
			t.Errorf("record %q: want %q and not %q", want.line, want.has, want.hasNot)
		}
	}

	out.Reset()
	shard.(serverLogger).SLog().Warn("through slog")
	if !strings.Contains(out.String(), `msg="through slog" service=history`) {
		t.Errorf("SLog lost With's tags: %q", out.String())
	}
}
