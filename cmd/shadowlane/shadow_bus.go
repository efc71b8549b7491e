package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shadowlane/shadowlane/shadow"
)

// The message twins are made with the clients directly: the adapters have
// no topology helpers (yet). Kafka: a shadow topic with the production
// topic's partitions, replication factor and topic-level configs. NATS
// JetStream: a shadow stream with the production stream's configuration,
// capturing the shadow subjects. RabbitMQ is left out: AMQP 0-9-1 cannot
// list an exchange's bindings (that needs the management API).

// kafkaTwins plans (apply false) or creates the shadow topics of topics.
func kafkaTwins(ctx context.Context, seeds, topics []string, naming shadow.Naming, apply bool, stdout, stderr io.Writer) int {
	adm, err := kafkaAdmin(seeds)
	if err != nil {
		fmt.Fprintln(stderr, "shadowlane shadow: kafka:", err)
		return exitUsage
	}
	defer adm.Close()
	names := append([]string(nil), topics...)
	for _, t := range topics {
		if naming.IsShadow(t) {
			fmt.Fprintf(stderr, "shadowlane shadow: kafka: %q is already a shadow topic; list production topics\n", t)
			return exitUsage
		}
		names = append(names, naming.Shadow(t))
	}
	md, err := adm.Metadata(ctx, names...)
	if err != nil {
		fmt.Fprintf(stderr, "shadowlane shadow: kafka: cannot connect: %v\n", err)
		return exitSetup
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil && !errors.Is(err, kadm.ErrEmpty) {
		fmt.Fprintln(stderr, "shadowlane shadow: kafka:", err)
		return exitSetup
	}
	code := exitOK
	for _, t := range topics {
		twin := naming.Shadow(t)
		p := md.Topics[t]
		if missingTopic(p) || p.Err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow: kafka: production topic %s not found\n", t)
			code = exitViolation
			continue
		}
		if !missingTopic(md.Topics[twin]) {
			fmt.Fprintf(stdout, "kafka %s: exists\n", twin)
			continue
		}
		conf := map[string]*string{}
		var keys []string
		for _, rc := range cfgs {
			if rc.Name != t {
				continue
			}
			for _, c := range rc.Configs {
				if c.Source == kmsg.ConfigSourceDynamicTopicConfig && c.Value != nil {
					conf[c.Key] = c.Value
					keys = append(keys, c.Key+"="+*c.Value)
				}
			}
		}
		sort.Strings(keys)
		parts, rf := int32(len(p.Partitions)), int16(p.Partitions.NumReplicas())
		if !apply {
			fmt.Fprintf(stdout, "kafka %s: would create with %d partition(s), replication %d, configs [%s]\n", twin, parts, rf, strings.Join(keys, ", "))
			continue
		}
		if _, err := adm.CreateTopic(ctx, parts, rf, conf, twin); err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow: kafka: create %s: %v\n", twin, err)
			code = exitViolation
			continue
		}
		fmt.Fprintf(stdout, "kafka %s: created with %d partition(s), replication %d, configs [%s]\n", twin, parts, rf, strings.Join(keys, ", "))
	}
	return code
}

// kafkaPurge counts and, with yes, deletes the records of the shadow
// topics of topics (DeleteRecords up to the end offsets; the topics stay).
func kafkaPurge(ctx context.Context, seeds, topics []string, naming shadow.Naming, yes bool, stdout, stderr io.Writer) int {
	adm, err := kafkaAdmin(seeds)
	if err != nil {
		fmt.Fprintln(stderr, "shadowlane shadow purge: kafka:", err)
		return exitUsage
	}
	defer adm.Close()
	var twins []string
	for _, t := range topics {
		twin, ok := purgeTwin(naming, t)
		if !ok {
			fmt.Fprintf(stderr, "shadowlane shadow purge: kafka: refusing %q: not a shadow topic\n", twin)
			return exitViolation
		}
		twins = append(twins, twin)
	}
	ends, err := adm.ListEndOffsets(ctx, twins...)
	if err != nil {
		fmt.Fprintf(stderr, "shadowlane shadow purge: kafka: %v\n", err)
		return exitSetup
	}
	starts, err := adm.ListStartOffsets(ctx, twins...)
	if err != nil {
		fmt.Fprintf(stderr, "shadowlane shadow purge: kafka: %v\n", err)
		return exitSetup
	}
	count := map[string]int64{}
	to := kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return
		}
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok && s.Err == nil {
			count[o.Topic] += o.Offset - s.Offset
		}
		to.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset})
	})
	for _, tw := range twins {
		if _, ok := ends[tw]; !ok {
			fmt.Fprintf(stdout, "kafka %s: no such shadow topic, skipped\n", tw)
			continue
		}
		verb := "would delete"
		if yes {
			verb = "deleting"
		}
		fmt.Fprintf(stdout, "kafka %s: %s %d record(s)\n", tw, verb, count[tw])
	}
	if !yes {
		return exitOK
	}
	res, err := adm.DeleteRecords(ctx, to)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		fmt.Fprintf(stderr, "shadowlane shadow purge: kafka: %v\n", err)
		return exitViolation
	}
	return exitOK
}

// kafkaAdmin is an admin client of the brokers seeds; closing it closes
// its client.
func kafkaAdmin(seeds []string, opts ...kgo.Opt) (*kadm.Client, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

func natsJS(uri string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(uri, nats.Timeout(5*time.Second), nats.NoReconnect(), nats.Name("shadowlane shadow"))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// natsTwins plans or creates the shadow streams of streams: the production
// configuration with the shadow name and the shadow subjects.
func natsTwins(ctx context.Context, uri string, streams []string, names, subj shadow.Naming, apply bool, stdout, stderr io.Writer) int {
	nc, js, err := natsJS(uri)
	if err != nil {
		fmt.Fprintf(stderr, "shadowlane shadow: nats: cannot connect: %v\n", err)
		return exitSetup
	}
	defer nc.Close()
	code := exitOK
	for _, name := range streams {
		if names.IsShadow(name) {
			fmt.Fprintf(stderr, "shadowlane shadow: nats: %q is already a shadow stream; list production streams\n", name)
			return exitUsage
		}
		twin := names.Shadow(name)
		p, err := streamConfig(ctx, js, name)
		if err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow: nats: production stream %s: %v\n", name, err)
			code = exitViolation
			continue
		}
		if _, err := js.Stream(ctx, twin); err == nil {
			fmt.Fprintf(stdout, "nats %s: exists\n", twin)
			continue
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			fmt.Fprintf(stderr, "shadowlane shadow: nats: %s: %v\n", twin, err)
			code = exitSetup
			continue
		}
		c := p
		c.Name, c.Subjects = twin, shadowSubjects(p.Subjects, subj)
		c.Sources, c.Mirror = nil, nil
		if !apply {
			fmt.Fprintf(stdout, "nats %s: would create with subjects [%s] (%s, %s storage)\n", twin, strings.Join(c.Subjects, ", "), c.Retention, c.Storage)
			continue
		}
		if _, err := js.CreateStream(ctx, c); err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow: nats: create %s: %v\n", twin, err)
			code = exitViolation
			continue
		}
		fmt.Fprintf(stdout, "nats %s: created with subjects [%s]\n", twin, strings.Join(c.Subjects, ", "))
	}
	return code
}

// natsPurge counts and, with yes, purges the shadow streams of streams.
func natsPurge(ctx context.Context, uri string, streams []string, names shadow.Naming, yes bool, stdout, stderr io.Writer) int {
	nc, js, err := natsJS(uri)
	if err != nil {
		fmt.Fprintf(stderr, "shadowlane shadow purge: nats: cannot connect: %v\n", err)
		return exitSetup
	}
	defer nc.Close()
	for _, name := range streams {
		twin, ok := purgeTwin(names, name)
		if !ok {
			fmt.Fprintf(stderr, "shadowlane shadow purge: nats: refusing %q: not a shadow stream\n", twin)
			return exitViolation
		}
		st, err := js.Stream(ctx, twin)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			fmt.Fprintf(stdout, "nats %s: no such shadow stream, skipped\n", twin)
			continue
		}
		if err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow purge: nats: %s: %v\n", twin, err)
			return exitSetup
		}
		info, err := st.Info(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow purge: nats: %s: %v\n", twin, err)
			return exitSetup
		}
		if !yes {
			fmt.Fprintf(stdout, "nats %s: would purge %d message(s)\n", twin, info.State.Msgs)
			continue
		}
		if err := st.Purge(ctx); err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow purge: nats: %s: %v\n", twin, err)
			return exitViolation
		}
		fmt.Fprintf(stdout, "nats %s: purged %d message(s)\n", twin, info.State.Msgs)
	}
	return exitOK
}
