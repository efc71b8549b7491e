package slnats_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slnats"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// A broker migration's JetStream side: the wrapper is a migrate.Sender (a
// marked message lands on the shadow subject, with the message id
// header), and Migrating puts a consumer's handler behind the Reader,
// which in phase 1 (dual write) handles the old system's copies and skips
// the new system's.
func ExampleJetStream_Sender() {
	dir, _ := os.MkdirTemp("", "shadowlane-example-mig")
	defer os.RemoveAll(dir)
	srv, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	go srv.Start()
	srv.ReadyForConnections(5 * time.Second)
	defer srv.Shutdown()
	nc, _ := natsgo.Connect(srv.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()

	rt, err := shadowlane.New(shadowlane.Config{Service: "orders", Migration: shadowlane.MigrationConfig{
		Phase: 1, Topics: map[string]string{"orders.created": "orders2.created"}}})
	if err != nil {
		log.Fatal(err)
	}
	s, err := slnats.New(slnats.WithRuntime(rt), slnats.WithShadowSubjects("orders.>", "orders2.>"))
	if err != nil {
		log.Fatal(err)
	}
	for _, st := range []jetstream.StreamConfig{{Name: "OLD", Subjects: []string{"orders.>"}}, {Name: "NEW", Subjects: []string{"orders2.>"}}} {
		js.CreateStream(ctx, st)
		s.CreateShadowStream(ctx, js, st.Name)
	}
	pub := s.JetStream(js)
	prod, _ := migrate.NewProducer(rt, pub.Sender(), pub.Sender())
	_ = prod.Send(propagation.With(ctx, propagation.Mark{Run: "run-7"}), "orders.created", &migrate.Message{ID: "order-1", Value: []byte("created")})

	rd := migrate.NewReader(rt, 0)
	done := make(chan struct{}, 2)
	for _, c := range []struct {
		stream string
		side   migrate.Side
	}{{"OLD", migrate.Old}, {"NEW", migrate.New}} {
		side := c.side
		h := slnats.Migrating(rd, side, func(ctx context.Context, m jetstream.Msg) error {
			fmt.Println(side, "handles", m.Subject(), propagation.FromContext(ctx))
			return nil
		})
		cons, _ := s.ConsumeJetStream(ctx, js, c.stream, jetstream.ConsumerConfig{Durable: c.stream + "-reader"},
			func(ctx context.Context, m jetstream.Msg) error {
				err := h(ctx, m)
				done <- struct{}{}
				return err
			})
		defer cons.Stop()
	}
	<-done
	<-done
	fmt.Printf("%+v\n", rd.Stats())
	// Output:
	// old handles shadow.orders.created run=run-7
	// {Handled:1 NoID:0 Skipped:1 Duplicates:0 Released:0 Evicted:0}
}
