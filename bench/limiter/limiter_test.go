package limiter_test

import (
	"context"
	"os"
	"sync"
	"testing"

	sentinel "github.com/alibaba/sentinel-golang/api"
	"github.com/alibaba/sentinel-golang/core/config"
	"github.com/alibaba/sentinel-golang/core/flow"
	"github.com/alibaba/sentinel-golang/logging"
	"github.com/go-kratos/aegis/ratelimit"
	"github.com/go-kratos/aegis/ratelimit/bbr"
	"golang.org/x/time/rate"

	"github.com/shadowlane/shadowlane/bench/internal/measure"
	"github.com/shadowlane/shadowlane/limiter"
)

func run(b *testing.B, parallel bool, f func()) {
	b.ReportAllocs()
	if !parallel {
		measure.GrowStack(8)
		for b.Loop() {
			measure.Op(f)
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f()
		}
	})
}

func modes(b *testing.B, f func()) {
	b.Run("serial", func(b *testing.B) { run(b, false, f) })
	b.Run("parallel", func(b *testing.B) { run(b, true, f) })
}

// BenchmarkShadowlane: Entry+Exit on a resource with one rule holding a QPS
// and a concurrency limit.
func BenchmarkShadowlane(b *testing.B) { benchShadowlane(b) }

// BenchmarkShadowlaneQPS: Entry+Exit on a resource with one plain QPS rule,
// the comparison with x/time/rate's Allow (issue 13: within 1.2× its
// instructions; measure with callgrind, see RESULTS in the note).
func BenchmarkShadowlaneQPS(b *testing.B) {
	l := limiter.New()
	if err := l.SetRules([]limiter.Rule{{Resource: "GET /orders/:id", QPS: 1e9, Burst: 1 << 30}}); err != nil {
		b.Fatal(err)
	}
	res := l.Resource("GET /orders/:id")
	ctx := context.Background()
	modes(b, func() {
		tok, err := res.Entry(ctx)
		if err != nil {
			b.Fatal(err)
		}
		tok.Exit()
	})
}

// BenchmarkShadowlanePreciseClock is BenchmarkShadowlane reading the
// precise clock at Entry and at Exit (limiter.WithPreciseClock), to show
// what the coarse clock saves.
func BenchmarkShadowlanePreciseClock(b *testing.B) { benchShadowlane(b, limiter.WithPreciseClock()) }

func benchShadowlane(b *testing.B, opts ...limiter.Option) {
	l := limiter.New(opts...)
	if err := l.SetRules([]limiter.Rule{{Resource: "GET /orders/:id", QPS: 1e9, Burst: 1 << 30, Concurrency: 1 << 20}}); err != nil {
		b.Fatal(err)
	}
	res := l.Resource("GET /orders/:id")
	ctx := context.Background()
	modes(b, func() {
		tok, err := res.Entry(ctx)
		if err != nil {
			b.Fatal(err)
		}
		tok.Exit()
	})
}

// sentinelInit initialises sentinel-golang once per process.
var sentinelInit = sync.OnceValue(func() error {
	cfg := config.NewDefaultConfig()
	cfg.Sentinel.Log.Logger = logging.NewConsoleLogger()
	cfg.Sentinel.Log.Dir = os.TempDir()
	cfg.Sentinel.Log.Metric.FlushIntervalSec = 0
	return sentinel.InitWithConfig(cfg)
})

var sentinelReady = func() error {
	if err := sentinelInit(); err != nil {
		return err
	}
	_, err := flow.LoadRulesOfResource("GET /orders/:id", []*flow.Rule{{
		Resource:               "GET /orders/:id",
		TokenCalculateStrategy: flow.Direct,
		ControlBehavior:        flow.Reject,
		Threshold:              1e9,
		StatIntervalInMs:       1000,
	}})
	return err
}

// BenchmarkSentinel: sentinel-golang v1.0.4 Entry+Exit with a flow rule.
func BenchmarkSentinel(b *testing.B) {
	if err := sentinelReady(); err != nil {
		b.Fatal(err)
	}
	modes(b, func() {
		e, be := sentinel.Entry("GET /orders/:id")
		if be != nil {
			b.Fatal(be)
		}
		e.Exit()
	})
}

// BenchmarkXRate: golang.org/x/time/rate Limiter.Allow.
func BenchmarkXRate(b *testing.B) {
	l := rate.NewLimiter(1e9, 1<<30)
	modes(b, func() {
		if !l.Allow() {
			b.Fatal("refused")
		}
	})
}

// BenchmarkAegisBBR: go-kratos/aegis BBR Allow + done.
func BenchmarkAegisBBR(b *testing.B) {
	l := bbr.NewLimiter()
	modes(b, func() {
		done, err := l.Allow()
		if err != nil {
			b.Fatal(err)
		}
		done(ratelimit.DoneInfo{})
	})
}
