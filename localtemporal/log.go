package localtemporal

import (
	"context"
	"log/slog"
	"slices"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// serverLogger routes the Temporal server's logs to slog. The server is very chatty at info
// level (service start-up, shard ownership, membership), none of which a surveyhooks user can
// act on, so only warnings and errors get through.
type serverLogger struct {
	log *slog.Logger
	// tags are With's, kept as they are until a record gets through: the history service
	// calls With for every task it runs (tasks.InitializeLogger), and formatting the tags
	// took 1% of a bench pass's CPU, for loggers that then log nothing.
	tags []tag.Tag
}

var (
	_ log.Logger      = serverLogger{}
	_ log.WithLogger  = serverLogger{}
	_ log.SLogWrapper = serverLogger{}
)

// newServerLogger returns the server's logger and the level it lets through, which Stop
// raises: a stopping server warns about every poll and connection it cuts.
func newServerLogger(l *slog.Logger) (serverLogger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(slog.LevelWarn)
	return serverLogger{log: slog.New(minLevelHandler{min: level, next: l.Handler()})}, level
}

func (l serverLogger) Debug(msg string, tags ...tag.Tag) { l.emit(slog.LevelDebug, msg, tags) }
func (l serverLogger) Info(msg string, tags ...tag.Tag)  { l.emit(slog.LevelInfo, msg, tags) }
func (l serverLogger) Warn(msg string, tags ...tag.Tag)  { l.emit(slog.LevelWarn, msg, tags) }
func (l serverLogger) Error(msg string, tags ...tag.Tag) { l.emit(slog.LevelError, msg, tags) }

// DPanic, Panic and Fatal only log: a dev server must not take the whole surveyhooks process
// down (zap's Fatal would call os.Exit).
func (l serverLogger) DPanic(msg string, tags ...tag.Tag) { l.emit(slog.LevelError, msg, tags) }
func (l serverLogger) Panic(msg string, tags ...tag.Tag)  { l.emit(slog.LevelError, msg, tags) }
func (l serverLogger) Fatal(msg string, tags ...tag.Tag)  { l.emit(slog.LevelError, msg, tags) }

// With returns a logger that adds tags to every record.
func (l serverLogger) With(tags ...tag.Tag) log.Logger {
	if len(tags) == 0 {
		return l
	}
	// Clipped, so that two loggers made from l never append into the same array.
	return serverLogger{log: l.log, tags: append(slices.Clip(l.tags), tags...)}
}

// SLog lets server components that take a *slog.Logger use the same filtered handler.
func (l serverLogger) SLog() *slog.Logger {
	if len(l.tags) == 0 {
		return l.log
	}
	return l.log.With(attrsAsAny(l.tags)...)
}

func (l serverLogger) emit(level slog.Level, msg string, tags []tag.Tag) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, len(l.tags)+len(tags))
	for _, ts := range [][]tag.Tag{l.tags, tags} {
		for _, t := range ts {
			attrs = append(attrs, slog.Any(t.Key(), t.Value()))
		}
	}
	l.log.LogAttrs(ctx, level, msg, attrs...)
}

func attrsAsAny(tags []tag.Tag) []any {
	args := make([]any, len(tags))
	for i, t := range tags {
		args[i] = slog.Any(t.Key(), t.Value())
	}
	return args
}

// minLevelHandler drops records below min whatever level the wrapped handler accepts.
type minLevelHandler struct {
	min  slog.Leveler
	next slog.Handler
}

func (h minLevelHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= h.min.Level() && h.next.Enabled(ctx, level)
}

func (h minLevelHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.next.Handle(ctx, r)
}

func (h minLevelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevelHandler{min: h.min, next: h.next.WithAttrs(attrs)}
}

func (h minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{min: h.min, next: h.next.WithGroup(name)}
}
