package limiter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/shadowlane/shadowlane/limiter"
)

func TestTotalsOutliveTheWindow(t *testing.T) {
	l, clk := newLimiter(t, limiter.Rule{Resource: "a", QPS: 1, Burst: 1})
	res := l.Resource("a")
	for range 90 { // 90 s: more than the 60 s window
		tok, err := res.Entry(prod)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(10 * time.Millisecond)
		tok.ExitErr(errors.New("boom"))
		res.Entry(prod) // refused
		clk.Advance(990 * time.Millisecond)
	}
	tot := l.Totals()
	if len(tot) != 1 || tot[0].Pass != 90 || tot[0].Blocked.QPS != 90 || tot[0].Error != 90 || tot[0].Exited != 90 || tot[0].Latency != 900*time.Millisecond {
		t.Fatalf("totals %+v", tot)
	}
	if s := res.Stats().Classes[0].Sum(time.Time{}); s.Pass != 59 { // seconds 31..89; the current second (90) is empty
		t.Fatalf("window keeps %d seconds of passes, want 59", s.Pass)
	}
}

func TestRegisterMetrics(t *testing.T) {
	l, clk := newLimiter(t, limiter.Rule{Resource: "GET /x", QPS: 1, Burst: 2, Concurrency: 5})
	res := l.Resource("GET /x")
	held, _ := res.Entry(lt)
	tok, _ := res.Entry(prod)
	clk.Advance(20 * time.Millisecond)
	tok.Exit()
	res.Entry(prod) // blocked by qps
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	reg, err := l.RegisterMetrics(mp.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			add := func(attrs attribute.Set, v float64) {
				k := m.Name
				for _, kv := range attrs.ToSlice() {
					k += " " + string(kv.Key) + "=" + kv.Value.AsString()
				}
				got[k] = v
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, float64(p.Value))
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, p.Value)
				}
			}
		}
	}
	for k, want := range map[string]float64{
		"shadowlane.limiter.passed class=production resource=GET /x":             1,
		"shadowlane.limiter.passed class=loadtest resource=GET /x":               1,
		"shadowlane.limiter.blocked class=production reason=qps resource=GET /x": 1,
		"shadowlane.limiter.completed class=production resource=GET /x":          1,
		"shadowlane.limiter.latency class=production resource=GET /x":            0.02,
		"shadowlane.limiter.in_flight class=loadtest resource=GET /x":            1,
		"shadowlane.limiter.in_flight class=production resource=GET /x":          0,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}
	if t.Failed() {
		t.Logf("collected: %v", got)
	}
	held.Exit()
}
