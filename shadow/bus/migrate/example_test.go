package migrate_test

import (
	"context"
	"fmt"

	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// Each phase writes to its systems; the Reader handles each id once. Real
// Senders come from the adapters (slnats JetStream.Sender, slkafka
// Producer.Sender, ...), and the Source is usually a *shadowlane.Runtime
// whose "migration:" section a reload changes.
func Example() {
	plan := &migrate.Plan{Phase: migrate.DualWrite, Topics: map[string]string{"orders": "orders-v2"}}
	src := migrate.SourceFunc(func() migrate.Plan { return *plan })
	printer := func(system string) migrate.Sender {
		return migrate.SenderFunc(func(_ context.Context, topic string, m migrate.Message) error {
			fmt.Printf("  %s <- %s %s\n", system, topic, m.Value)
			return nil
		})
	}
	p, _ := migrate.NewProducer(src, printer("nats"), printer("kafka"))
	r := migrate.NewReader(src, 0)

	for _, ph := range []migrate.Phase{migrate.DualWrite, migrate.DualRead, migrate.NewOnly} {
		plan.Phase = ph
		fmt.Println(ph)
		m := &migrate.Message{ID: fmt.Sprint("id-", int(ph)), Value: []byte("order")}
		_ = p.Send(context.Background(), "orders", m)
		for _, side := range []migrate.Side{migrate.Old, migrate.New} {
			o := r.Begin(side, m.ID)
			if o == migrate.Handle {
				r.Done(m.ID, true)
			}
			fmt.Printf("  %s copy: %s\n", side, o)
		}
	}
	// Output:
	// dual-write
	//   nats <- orders order
	//   kafka <- orders-v2 order
	//   old copy: handle
	//   new copy: skip
	// dual-read
	//   nats <- orders order
	//   kafka <- orders-v2 order
	//   old copy: handle
	//   new copy: duplicate
	// new-only
	//   kafka <- orders-v2 order
	//   old copy: skip
	//   new copy: handle
}
