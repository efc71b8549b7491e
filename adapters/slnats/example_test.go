package slnats_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slnats"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// A message published under a load-test mark goes to the shadow subject;
// the subscriber's handler gets the mark back in its context.
func Example() {
	srv, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	go srv.Start()
	srv.ReadyForConnections(5 * time.Second)
	defer srv.Shutdown()
	nc, _ := natsgo.Connect(srv.ClientURL())
	defer nc.Close()

	rt, err := shadowlane.Init(shadowlane.WithConfig(shadowlane.Config{Service: "billing"}))
	if err != nil {
		panic(err)
	}
	defer rt.Close()
	s, err := slnats.New(slnats.WithRuntime(rt), slnats.WithShadowSubjects("orders.>"))
	if err != nil {
		panic(err)
	}
	c := s.Conn(nc)
	done := make(chan struct{})
	sub, _ := c.Subscribe("orders.created", func(ctx context.Context, m *natsgo.Msg) {
		fmt.Println(m.Subject, propagation.FromContext(ctx))
		close(done)
	})
	defer sub.Unsubscribe()

	ctx := propagation.With(context.Background(), propagation.Mark{Run: "run-7"})
	if err := c.Publish(ctx, "orders.created", []byte("order 1")); err != nil {
		panic(err)
	}
	<-done
	err = c.Publish(ctx, "payments.settled", nil)
	fmt.Println(errors.Is(err, shadow.ErrNoShadowTarget))
	// Output:
	// shadow.orders.created run=run-7
	// true
}

// Publishing on JetStream goes through the wrapper: one call applies the
// rules and publishes, so a marked message cannot reach the production
// stream by a forgotten step.
func ExampleShadow_JetStream() {
	dir, _ := os.MkdirTemp("", "shadowlane-example-js")
	defer os.RemoveAll(dir)
	srv, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	go srv.Start()
	srv.ReadyForConnections(5 * time.Second)
	defer srv.Shutdown()
	nc, _ := natsgo.Connect(srv.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()

	s, _ := slnats.New(slnats.WithShadowSubjects("orders.>"))
	js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	s.CreateShadowStream(ctx, js, "ORDERS") // ORDERS_shadow on shadow.orders.>

	pub := s.JetStream(js)
	ack, err := pub.Publish(propagation.With(ctx, propagation.Mark{Run: "run-7"}), "orders.created", []byte("order 1"))
	fmt.Println(ack.Stream, err)
	ack, err = pub.Publish(ctx, "orders.created", []byte("order 2"))
	fmt.Println(ack.Stream, err)
	// Output:
	// ORDERS_shadow <nil>
	// ORDERS <nil>
}
