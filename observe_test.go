package shadowlane_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/shadowlane/shadowlane"
)

func TestSpanAttributes(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	rt, _ := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}})
	defer rt.Close()
	ctx, span := tp.Tracer("t").Start(context.Background(), "server")
	rt.Admit(ctx, nil, http.Header{"X-Shadowlane-Run": {"r1"}, "X-Shadowlane-Env": {"proj-a"}})
	span.End()
	ctx, span = tp.Tracer("t").Start(context.Background(), "plain")
	rt.Admit(ctx, nil, http.Header{})
	span.End()
	got := map[string]map[string]string{}
	for _, s := range rec.Ended() {
		attrs := map[string]string{}
		for _, a := range s.Attributes() {
			attrs[string(a.Key)] = a.Value.AsString()
		}
		got[s.Name()] = attrs
	}
	if got["server"]["shadowlane.run"] != "r1" || got["server"]["shadowlane.env"] != "proj-a" {
		t.Fatalf("marked span attributes: %v", got["server"])
	}
	if len(got["plain"]) != 0 {
		t.Fatalf("unmarked span got attributes %v", got["plain"])
	}
}

// A flood of forged marks produces one log line per reason per interval,
// with a count of what was suppressed.
func TestUntrustedLogsAreRateLimited(t *testing.T) {
	logs := &lockedBuffer{}
	rt, _ := shadowlane.New(edgeConfig(), shadowlane.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	defer rt.Close()
	for i := 0; i < 1000; i++ {
		rt.Admit(context.Background(), nil, http.Header{"X-Shadowlane-Run": {"forged"}})
	}
	if n := strings.Count(logs.String(), "not trusted"); n != 1 {
		t.Fatalf("%d log lines for 1000 forged marks:\n%s", n, logs.String())
	}
	if rt.Stats().TokensRejected["missing"] != 1000 {
		t.Fatalf("counted %v", rt.Stats().TokensRejected)
	}
}
