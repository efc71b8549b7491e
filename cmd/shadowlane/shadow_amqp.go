package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	slamqp "github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/cmd/shadowlane/internal/storecfg"
	"github.com/shadowlane/shadowlane/shadow"
)

// RabbitMQ twins. AMQP 0-9-1 cannot read an exchange's kind or a queue's
// bindings back (that needs the management plugin), so the production
// topology is the one described under stores.amqpTopology; the twins are
// derived from it by the amqp adapter's ShadowTopology (the same helper
// an app's Declare uses: twin names, dead-letter and alternate exchanges
// re-pointed at twins) and every name is checked to be a shadow name
// before anything is declared or purged.

// amqpDial connects with a dial timeout.
func amqpDial(uri string, timeout time.Duration) (*amqp.Connection, error) {
	return amqp.DialConfig(uri, amqp.Config{Dial: amqp.DefaultDial(min(timeout, 5*time.Second))})
}

// amqpOn runs f on a throwaway channel: a failed declare closes its
// channel.
func amqpOn(conn *amqp.Connection, f func(ch *amqp.Channel) error) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	return f(ch)
}

func amqpNotFound(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == amqp.NotFound
}

func amqpExchangeExists(conn *amqp.Connection, name string) error {
	return amqpOn(conn, func(ch *amqp.Channel) error {
		return ch.ExchangeDeclarePassive(name, amqp.ExchangeDirect, false, false, false, false, nil) // kind and flags are ignored when passive
	})
}

func amqpQueueInspect(conn *amqp.Connection, name string) (q amqp.Queue, err error) {
	err = amqpOn(conn, func(ch *amqp.Channel) error {
		q, err = ch.QueueDeclarePassive(name, false, false, false, false, nil)
		return err
	})
	return q, err
}

// amqpTable converts YAML-decoded arguments (nested maps and lists
// included) to an AMQP table.
func amqpTable(m map[string]any) amqp.Table {
	if m == nil {
		return nil
	}
	var conv func(v any) any
	conv = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			t := amqp.Table{}
			for k, e := range x {
				t[k] = conv(e)
			}
			return t
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = conv(e)
			}
			return out
		case uint64:
			return int64(x)
		}
		return v
	}
	return conv(m).(amqp.Table)
}

// adapterTopology converts the config's description to the adapter's.
func adapterTopology(t storecfg.AMQPTopology) slamqp.Topology {
	var out slamqp.Topology
	for _, x := range t.Exchanges {
		out.Exchanges = append(out.Exchanges, slamqp.Exchange{Name: x.Name, Kind: x.Kind, Durable: x.Durable, AutoDelete: x.AutoDelete, Internal: x.Internal, Args: amqpTable(x.Args)})
	}
	for _, q := range t.Queues {
		out.Queues = append(out.Queues, slamqp.Queue{Name: q.Name, Durable: q.Durable, AutoDelete: q.AutoDelete, Args: amqpTable(q.Args)})
	}
	for _, b := range t.Bindings {
		out.Bindings = append(out.Bindings, slamqp.Binding{Exchange: b.Exchange, Queue: b.Queue, Key: b.Key, Args: amqpTable(b.Args)})
	}
	return out
}

// shadowTopology derives the twins of every described exchange and queue.
func shadowTopology(t storecfg.AMQPTopology, naming shadow.Naming) (slamqp.Topology, slamqp.Topology, error) {
	prod := adapterTopology(t)
	var xs, qs []string
	for _, x := range prod.Exchanges {
		xs = append(xs, x.Name)
	}
	for _, q := range prod.Queues {
		qs = append(qs, q.Name)
	}
	s, err := slamqp.New(slamqp.WithShadowExchanges(xs...), slamqp.WithShadowQueues(qs...), slamqp.WithNaming(naming))
	if err != nil {
		return prod, slamqp.Topology{}, err
	}
	twins, err := s.ShadowTopology(prod)
	return prod, twins, err
}

// amqpTwins plans (apply false) or declares the twins of the described
// topology. Exchanges and queues listed (stores.exchanges/queues, flags)
// but not described are reported: their kind cannot be read over AMQP.
func amqpTwins(uri string, listedX, listedQ []string, top storecfg.AMQPTopology, naming shadow.Naming, timeout time.Duration, apply bool, stdout, stderr io.Writer) int {
	code := exitOK
	described := map[string]bool{}
	for _, x := range top.Exchanges {
		described["x:"+x.Name] = true
	}
	for _, q := range top.Queues {
		described["q:"+q.Name] = true
	}
	for _, x := range listedX {
		if !described["x:"+x] {
			fmt.Fprintf(stderr, "shadowlane shadow: amqp: exchange %s: describe it under stores.amqpTopology.exchanges (kind and flags cannot be read over AMQP 0-9-1)\n", x)
			code = exitViolation
		}
	}
	for _, q := range listedQ {
		if !described["q:"+q] {
			fmt.Fprintf(stderr, "shadowlane shadow: amqp: queue %s: describe it under stores.amqpTopology.queues (flags, arguments and bindings cannot be read over AMQP 0-9-1)\n", q)
			code = exitViolation
		}
	}
	prod, twins, err := shadowTopology(top, naming)
	if err != nil {
		fmt.Fprintln(stderr, "shadowlane shadow: amqp:", err)
		return exitViolation
	}
	// Every twin must be a shadow name and not a production one.
	isProd := map[string]bool{}
	for _, x := range prod.Exchanges {
		isProd[x.Name] = true
	}
	for _, q := range prod.Queues {
		isProd[q.Name] = true
	}
	refuse := func(kind, name string) bool {
		if !naming.IsShadow(name) || isProd[name] {
			fmt.Fprintf(stderr, "shadowlane shadow: amqp: refusing %s %q: not a shadow name\n", kind, name)
			return true
		}
		return false
	}
	for _, x := range twins.Exchanges {
		if refuse("exchange", x.Name) {
			return exitViolation
		}
	}
	for _, q := range twins.Queues {
		if refuse("queue", q.Name) {
			return exitViolation
		}
	}
	for _, b := range twins.Bindings {
		if refuse("exchange", b.Exchange) || refuse("queue", b.Queue) {
			return exitViolation
		}
	}
	conn, err := amqpDial(uri, timeout)
	if err != nil {
		fmt.Fprintf(stderr, "shadowlane shadow: amqp: cannot connect: %v\n", err)
		return exitSetup
	}
	defer conn.Close()
	// Twins of production objects that do not exist are not made.
	missing := map[string]bool{}
	for _, x := range prod.Exchanges {
		if err := amqpExchangeExists(conn, x.Name); err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow: amqp: production exchange %s: %v\n", x.Name, err)
			missing[naming.Shadow(x.Name)], code = true, exitViolation
		}
	}
	for _, q := range prod.Queues {
		if _, err := amqpQueueInspect(conn, q.Name); err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow: amqp: production queue %s: %v\n", q.Name, err)
			missing[naming.Shadow(q.Name)], code = true, exitViolation
		}
	}
	for _, x := range twins.Exchanges {
		if missing[x.Name] {
			continue
		}
		c := amqpDeclareTwin(conn, "exchange", x.Name, fmt.Sprintf("%s, durable %v", x.Kind, x.Durable), apply, stdout, stderr,
			func() error { return amqpExchangeExists(conn, x.Name) },
			func(ch *amqp.Channel) error {
				return ch.ExchangeDeclare(x.Name, x.Kind, x.Durable, x.AutoDelete, x.Internal, false, x.Args)
			})
		if c == exitSetup {
			return c
		}
		code = worst(code, c)
	}
	for _, q := range twins.Queues {
		if missing[q.Name] {
			continue
		}
		c := amqpDeclareTwin(conn, "queue", q.Name, fmt.Sprintf("durable %v", q.Durable), apply, stdout, stderr,
			func() error { _, err := amqpQueueInspect(conn, q.Name); return err },
			func(ch *amqp.Channel) error {
				_, err := ch.QueueDeclare(q.Name, q.Durable, q.AutoDelete, false, false, q.Args)
				return err
			})
		if c == exitSetup {
			return c
		}
		code = worst(code, c)
	}
	for _, b := range twins.Bindings {
		if missing[b.Exchange] || missing[b.Queue] {
			continue
		}
		if !apply {
			fmt.Fprintf(stdout, "amqp binding %s -> %s [%s]: would bind (idempotent)\n", b.Exchange, b.Queue, b.Key)
			continue
		}
		if err := amqpOn(conn, func(ch *amqp.Channel) error { return ch.QueueBind(b.Queue, b.Key, b.Exchange, false, b.Args) }); err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow: amqp: bind %s -> %s: %v\n", b.Exchange, b.Queue, err)
			code = exitViolation
			continue
		}
		fmt.Fprintf(stdout, "amqp binding %s -> %s [%s]: bound\n", b.Exchange, b.Queue, b.Key)
	}
	return code
}

// amqpPurge counts and, with yes, purges the ready messages of the shadow
// twins of queues. It refuses any name that is not a shadow name.
func amqpPurge(uri string, queues []string, naming shadow.Naming, timeout time.Duration, yes bool, stdout, stderr io.Writer) int {
	for _, q := range queues {
		if twin, ok := purgeTwin(naming, q); !ok {
			fmt.Fprintf(stderr, "shadowlane shadow purge: amqp: refusing %q: not a shadow queue\n", twin)
			return exitViolation
		}
	}
	conn, err := amqpDial(uri, timeout)
	if err != nil {
		fmt.Fprintf(stderr, "shadowlane shadow purge: amqp: cannot connect: %v\n", err)
		return exitSetup
	}
	defer conn.Close()
	code := exitOK
	for _, q := range queues {
		twin := naming.Shadow(q)
		st, err := amqpQueueInspect(conn, twin)
		if amqpNotFound(err) {
			fmt.Fprintf(stdout, "amqp %s: no such shadow queue, skipped\n", twin)
			continue
		}
		if err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow purge: amqp: %s: %v\n", twin, err)
			return exitSetup
		}
		if !yes {
			fmt.Fprintf(stdout, "amqp %s: would purge %d ready message(s)\n", twin, st.Messages)
			continue
		}
		var n int
		if err := amqpOn(conn, func(ch *amqp.Channel) error {
			n, err = ch.QueuePurge(twin, false)
			return err
		}); err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow purge: amqp: %s: %v\n", twin, err)
			code = exitViolation
			continue
		}
		fmt.Fprintf(stdout, "amqp %s: purged %d message(s)\n", twin, n)
	}
	return code
}

// amqpDeclareTwin plans (apply false) or declares the described twin
// exchange or queue (kind) name: exists says whether it is there, declare
// declares it (idempotent; on an existing twin it fails only when the twin
// differs from the description: PRECONDITION_FAILED), desc words its
// description. It returns exitSetup when the server cannot say whether
// the twin exists, exitViolation when the declare failed, else exitOK.
func amqpDeclareTwin(conn *amqp.Connection, kind, name, desc string, apply bool, stdout, stderr io.Writer, exists func() error, declare func(ch *amqp.Channel) error) int {
	err := exists()
	switch {
	case err == nil && !apply:
		fmt.Fprintf(stdout, "amqp %s %s: exists\n", kind, name)
		return exitOK
	case err != nil && !amqpNotFound(err):
		fmt.Fprintf(stderr, "shadowlane shadow: amqp: %s %s: %v\n", kind, name, err)
		return exitSetup
	}
	existed := err == nil
	if apply {
		if err := amqpOn(conn, declare); err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow: amqp: %s %s: %v\n", kind, name, err)
			return exitViolation
		}
	}
	if existed {
		fmt.Fprintf(stdout, "amqp %s %s: exists\n", kind, name)
		return exitOK
	}
	verb := map[bool]string{false: "would declare", true: "declared"}[apply]
	fmt.Fprintf(stdout, "amqp %s %s: %s (%s)\n", kind, name, verb, desc)
	return exitOK
}

// amqpQueueNames is the union of the listed and described queues, in order.
func amqpQueueNames(listed []string, top storecfg.AMQPTopology) []string {
	return unionNames(listed, top.Queues, func(q storecfg.AMQPQueue) string { return q.Name })
}

// amqpExchangeNames is the union of the listed and described exchanges.
func amqpExchangeNames(listed []string, top storecfg.AMQPTopology) []string {
	return unionNames(listed, top.Exchanges, func(x storecfg.AMQPExchange) string { return x.Name })
}

// unionNames is listed, then the names of described, each name once, in
// order.
func unionNames[T any](listed []string, described []T, name func(T) string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, n := range listed {
		add(n)
	}
	for _, d := range described {
		add(name(d))
	}
	return out
}

// amqpTwinDiffers redeclares an existing twin with its described
// attributes (a no-op when they agree) and returns the server's
// PRECONDITION_FAILED message when they do not ("" when equivalent).
func amqpTwinDiffers(ctx context.Context, conn *amqp.Connection, declare func(ch *amqp.Channel) error) (string, error) {
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	err := amqpOn(conn, declare)
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed {
		return ae.Reason, nil
	}
	return "", err
}
