package migrate

import (
	"context"
	"iter"
	"strings"

	"github.com/shadowlane/shadowlane/shadow/bus"
)

// IsHeaderID reports whether a header (or property) name is [HeaderID] in
// any ASCII letter case.
func IsHeaderID(name string) bool { return strings.EqualFold(name, HeaderID) }

// WireHeaders yields the headers a [Sender] writes for m, the same on
// every bus: its application headers but mark headers
// ([bus.IsMarkHeader]; the adapter writes the mark) and [HeaderID] in any
// letter case, then HeaderID with m.ID, last.
func (m Message) WireHeaders() iter.Seq2[string, string] {
	return func(yield func(name, value string) bool) {
		for k, v := range m.Headers {
			if !bus.IsMarkHeader(k) && !IsHeaderID(k) && !yield(k, v) {
				return
			}
		}
		yield(HeaderID, m.ID)
	}
}

// Wrap wraps h, a handler of the messages a consumer of side reads, the
// way every adapter's Migrating does: rd decides from the phase in force
// and the message id (id reads it from a message) whether h runs; a copy
// rd skips or drops as a duplicate returns nil without running h, so the
// consumer takes it as done. h's error is returned as it is.
func Wrap[M any, H ~func(context.Context, M) error](rd *Reader, side Side, id func(M) string, h H) H {
	return func(ctx context.Context, m M) error {
		_, err := rd.Handle(side, id(m), func() error { return h(ctx, m) })
		return err
	}
}
