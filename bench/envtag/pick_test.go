package envtag_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"

	"google.golang.org/grpc/balancer"
	_ "google.golang.org/grpc/balancer/roundrobin"
	"google.golang.org/grpc/connectivity"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/resolver"

	"github.com/shadowlane/shadowlane/adapters/slgrpc/envbalancer"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

type noopRecorder struct{ estats.MetricsRecorder }

func (noopRecorder) RecordInt64Count(*estats.Int64CountHandle, int64, ...string)             {}
func (noopRecorder) RecordFloat64Count(*estats.Float64CountHandle, float64, ...string)       {}
func (noopRecorder) RecordInt64Histo(*estats.Int64HistoHandle, int64, ...string)             {}
func (noopRecorder) RecordFloat64Histo(*estats.Float64HistoHandle, float64, ...string)       {}
func (noopRecorder) RecordInt64Gauge(*estats.Int64GaugeHandle, int64, ...string)             {}
func (noopRecorder) RecordInt64UpDownCount(*estats.Int64UpDownCountHandle, int64, ...string) {}
func (noopRecorder) RegisterAsyncReporter(estats.AsyncMetricReporter, ...estats.AsyncMetric) func() {
	return func() {}
}

// fakeCC is a balancer.ClientConn whose subchannels become READY (and
// healthy) as soon as they are asked to connect.
type fakeCC struct {
	balancer.ClientConn
	wg    sync.WaitGroup
	mu    sync.Mutex
	state balancer.State
}

type fakeSC struct {
	balancer.SubConn
	cc       *fakeCC
	listener func(balancer.SubConnState)
}

func (c *fakeCC) NewSubConn(_ []resolver.Address, o balancer.NewSubConnOptions) (balancer.SubConn, error) {
	return &fakeSC{cc: c, listener: o.StateListener}, nil
}
func (c *fakeCC) RemoveSubConn(balancer.SubConn)                       {}
func (c *fakeCC) UpdateAddresses(balancer.SubConn, []resolver.Address) {}
func (c *fakeCC) ResolveNow(resolver.ResolveNowOptions)                {}
func (c *fakeCC) Target() string                                       { return "bench:///orders" }
func (c *fakeCC) MetricsRecorder() estats.MetricsRecorder              { return noopRecorder{} }
func (c *fakeCC) UpdateState(s balancer.State) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
}

func (s *fakeSC) async(f func()) {
	s.cc.wg.Add(1)
	go func() { defer s.cc.wg.Done(); f() }()
}
func (s *fakeSC) Connect() {
	s.async(func() {
		s.listener(balancer.SubConnState{ConnectivityState: connectivity.Connecting})
		s.listener(balancer.SubConnState{ConnectivityState: connectivity.Ready})
	})
}
func (s *fakeSC) RegisterHealthListener(f func(balancer.SubConnState)) {
	s.async(func() { f(balancer.SubConnState{ConnectivityState: connectivity.Ready}) })
}
func (s *fakeSC) UpdateAddresses([]resolver.Address) {}
func (s *fakeSC) Shutdown()                          {}

// readyPicker builds the named balancer over eps and returns its picker
// once every subchannel is READY.
func readyPicker(b *testing.B, name string, eps []resolver.Endpoint) balancer.Picker {
	b.Helper()
	builder := balancer.Get(name)
	if builder == nil {
		b.Fatalf("balancer %q not registered", name)
	}
	cc := &fakeCC{}
	u, _ := url.Parse("bench:///orders")
	bal := builder.Build(cc, balancer.BuildOptions{Target: resolver.Target{URL: *u}})
	b.Cleanup(bal.Close)
	st := balancer.ClientConnState{ResolverState: resolver.State{Endpoints: eps}}
	if p, ok := builder.(balancer.ConfigParser); ok {
		c, err := p.ParseConfig([]byte(`{}`))
		if err != nil {
			b.Fatal(err)
		}
		st.BalancerConfig = c
	}
	if err := bal.UpdateClientConnState(st); err != nil {
		b.Fatal(err)
	}
	cc.wg.Wait()
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.state.ConnectivityState != connectivity.Ready {
		b.Fatalf("%s: state %v, want READY", name, cc.state.ConnectivityState)
	}
	return cc.state.Picker
}

// endpoints returns n labelled endpoints: a third trunk, the rest spread
// over project environments proj-0, proj-1, ... (at most 10 per env).
func endpoints(n int) []resolver.Endpoint {
	eps := make([]resolver.Endpoint, n)
	for i := range eps {
		env := ""
		if i%3 != 0 {
			env = fmt.Sprintf("proj-%d", i/30)
		}
		eps[i] = envbalancer.Endpoint(env, fmt.Sprintf("10.0.%d.%d:50051", i/250, i%250))
	}
	return eps
}

func benchPick(b *testing.B, p balancer.Picker, ctx context.Context) {
	info := balancer.PickInfo{FullMethodName: "/orders.Orders/Get", Ctx: ctx}
	if _, err := p.Pick(info); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Pick(info); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPick compares one pick of round_robin with the env balancer's
// pick for an untagged call (trunk), a call tagged with an environment that
// has instances (lane) and one tagged with an environment that has none
// (fallback to trunk). The contexts carry a few unrelated values first,
// as real call contexts do, so the mark lookup walks a realistic chain.
func BenchmarkPick(b *testing.B) {
	base := context.Background()
	for i := 0; i < 4; i++ {
		base = context.WithValue(base, ctxKey(i), i)
	}
	lane := propagation.With(base, propagation.Mark{Env: "proj-0"})
	miss := propagation.With(base, propagation.Mark{Env: "proj-none"})
	for _, n := range []int{3, 300} {
		eps := endpoints(n)
		b.Run(fmt.Sprintf("endpoints=%d/round_robin", n), func(b *testing.B) {
			benchPick(b, readyPicker(b, "round_robin", eps), base)
		})
		b.Run(fmt.Sprintf("endpoints=%d/env/untagged", n), func(b *testing.B) {
			benchPick(b, readyPicker(b, envbalancer.Name, eps), base)
		})
		b.Run(fmt.Sprintf("endpoints=%d/env/lane", n), func(b *testing.B) {
			benchPick(b, readyPicker(b, envbalancer.Name, eps), lane)
		})
		b.Run(fmt.Sprintf("endpoints=%d/env/fallback", n), func(b *testing.B) {
			benchPick(b, readyPicker(b, envbalancer.Name, eps), miss)
		})
	}
}

type ctxKey int

// BenchmarkMarkLookup is the share of a pick spent reading the tag from the
// same contexts (propagation.FromContext walks the context chain).
func BenchmarkMarkLookup(b *testing.B) {
	base := context.Background()
	for i := 0; i < 4; i++ {
		base = context.WithValue(base, ctxKey(i), i)
	}
	lane := propagation.With(base, propagation.Mark{Env: "proj-0"})
	for name, ctx := range map[string]context.Context{"untagged": base, "tagged": lane} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if propagation.FromContext(ctx).Env == "x" {
					b.Fatal("x")
				}
			}
		})
	}
}

// BenchmarkPoolPick is the selection rule alone (envtag.Pool, no gRPC).
func BenchmarkPoolPick(b *testing.B) {
	var ms []envtag.Member[int]
	for i := 0; i < 300; i++ {
		env := ""
		if i%3 != 0 {
			env = fmt.Sprintf("proj-%d", i/30)
		}
		ms = append(ms, envtag.Member[int]{Env: env, Item: i})
	}
	p := envtag.NewPool("orders", nil, ms)
	for _, m := range []propagation.Mark{{}, {Env: "proj-0"}, {Env: "proj-none"}} {
		b.Run(fmt.Sprintf("tag=%q", m.Env), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := p.Pick(m); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
