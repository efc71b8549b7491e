package shadowlane

import (
	"context"
	"log/slog"

	"github.com/shadowlane/shadowlane/propagation"
)

// LogHandler wraps an slog.Handler so that every record logged with a marked
// context carries the mark as attributes "shadowlane.run" and
// "shadowlane.env". Records logged with unmarked contexts pass unchanged.
//
//	slog.SetDefault(slog.New(shadowlane.LogHandler(slog.NewJSONHandler(os.Stderr, nil))))
//	slog.InfoContext(ctx, "order placed") // ... "shadowlane.run":"r1"
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ h slog.Handler }

func (l logHandler) Enabled(ctx context.Context, lv slog.Level) bool { return l.h.Enabled(ctx, lv) }

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if m := propagation.FromContext(ctx); !m.IsZero() {
		r = r.Clone()
		if m.Run != "" {
			r.AddAttrs(slog.String("shadowlane.run", m.Run))
		}
		if m.Env != "" {
			r.AddAttrs(slog.String("shadowlane.env", m.Env))
		}
	}
	return l.h.Handle(ctx, r)
}

func (l logHandler) WithAttrs(as []slog.Attr) slog.Handler { return logHandler{l.h.WithAttrs(as)} }
func (l logHandler) WithGroup(name string) slog.Handler    { return logHandler{l.h.WithGroup(name)} }
