package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// cmdVerify runs `shadowlane verify --run R`: after a pressure test it
// reads the stores with plain clients (no shadowlane hook in the way) and
// checks that the run's writes are in the shadow twins and none in
// production, wherever the data carries the run:
//
//   - SQL: rows whose run column (--run-column, default shadowlane_run)
//     holds R, in each production table and its twin;
//   - Redis: keys matching --keys (globs of production names) and their
//     shadow names whose name holds R as a word, whose string value holds
//     R as a word, or whose hash has the run column field equal to R;
//   - NATS JetStream streams and Kafka topics: messages with the run
//     header (X-Shadowlane-Run, any letter case) equal to R;
//   - RabbitMQ queues (--queues, stores.amqpTopology): the messages still
//     waiting with that run header, read without acknowledging and put
//     back (verify_amqp.go says what that costs).
//   - RocketMQ topics (--rocketmq-topics, stores.rocketmq): messages with
//     the run property, pulled without committing an offset, so reading
//     consumes nothing (verify_rocketmq.go).
//
// Exit codes as for check: 0 every target clean and some evidence of the
// run found in a twin, 1 a production target holds data of the run (or
// the run left nothing anywhere), 2 usage, 3 a store unreachable.
func cmdVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify", stderr)
	cfgFile, sq, st := registerStoreFlags(fs, storesConfigUsage)
	runID := fs.String("run", "", "the run to look for (required)")
	runCol := fs.String("run-column", "shadowlane_run", "column (SQL) or hash field (Redis) that holds the run id")
	limit := fs.Int("limit", 1_000_000, "at most this many keys or messages are read per target (a target with more is reported incomplete)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "shadowlane verify: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *runID == "" {
		fmt.Fprintln(stderr, "shadowlane verify: --run is required")
		return exitUsage
	}
	if !propagation.ValidID(*runID) {
		fmt.Fprintf(stderr, "shadowlane verify: %q is not a run id ([A-Za-z0-9_-]{1,64})\n", *runID)
		return exitUsage
	}
	if *limit <= 0 {
		fmt.Fprintln(stderr, "shadowlane verify: --limit must be positive")
		return exitUsage
	}
	stores, cfgCode := storesFromConfig(*cfgFile, false, fs, sq, st, stderr)
	if cfgCode != exitOK {
		return cfgCode
	}
	top := stores.AMQPTopology
	if msg := st.usage(); msg != "" {
		fmt.Fprintln(stderr, "shadowlane verify:", msg)
		return exitUsage
	}
	naming, tables, ok := productionTables("shadowlane verify", sq, stderr)
	if !ok {
		return exitUsage
	}
	v := verifier{run: *runID, runCol: *runCol, limit: *limit, stdout: stdout}
	did := false
	for _, t := range []struct{ driver, dsn string }{{"mysql", sq.mysql}, {"pgx", sq.postgres}, {"sqlite", sq.sqlite}} {
		if t.dsn == "" {
			continue
		}
		if len(tables) == 0 {
			fmt.Fprintln(stderr, "shadowlane verify: --tables is required with a database")
			return exitUsage
		}
		did = true
		v.section(inspectors[t.driver].label+":", sq.timeout, func(ctx context.Context) []finding {
			return v.sql(ctx, t.driver, t.dsn, tables, naming)
		})
	}
	if st.redis != "" {
		did = true
		v.section("redis "+redactURL(st.redis)+":", st.timeout, func(ctx context.Context) []finding {
			return v.redis(ctx, st.redis, splitList(st.keys), shadow.Naming{Prefix: st.keyPrefix})
		})
	}
	if st.nats != "" && st.streams != "" {
		did = true
		v.section("nats "+redactURL(st.nats)+":", st.timeout, func(ctx context.Context) []finding {
			return v.nats(ctx, st.nats, splitList(st.streams), shadow.Naming{Suffix: st.streamSuffix})
		})
	}
	if st.kafka != "" {
		did = true
		v.section("kafka "+st.kafka+":", st.timeout, func(ctx context.Context) []finding {
			return v.kafka(ctx, splitList(st.kafka), splitList(st.topics), shadow.Naming{Suffix: st.topicSuffix})
		})
	}
	if st.amqp != "" {
		if qs := amqpQueueNames(splitList(st.queues), top); len(qs) > 0 {
			did = true
			v.section("amqp "+redactURL(st.amqp)+":", st.timeout, func(ctx context.Context) []finding {
				return v.amqp(ctx, st.amqp, qs, shadow.Naming{Suffix: st.amqpSuffix}, st.timeout)
			})
		} else {
			fmt.Fprintln(stdout, "amqp: not verified (no queues: list them with --queues or under stores.amqpTopology)")
		}
	}
	if r := st.rocketmq; r.nameservers != "" {
		did = true
		v.section("rocketmq "+r.nameservers+":", st.timeout, func(ctx context.Context) []finding {
			return v.rocketmq(ctx, rocketmqList(r.nameservers), splitList(r.topics), shadow.Naming{Suffix: r.topicSuffix}, st.timeout)
		})
	}
	if !did {
		fmt.Fprintln(stderr, "shadowlane verify: no store given (--config with a stores: section, or --mysql/--postgres/--sqlite with --tables, --redis, --nats with --streams, --kafka with --topics, --amqp with --queues)")
		return exitUsage
	}
	code := exitCode(v.all)
	if code == exitOK && v.evidence == 0 {
		fmt.Fprintf(stdout, "FAIL run %s: no data of the run in any shadow twin (wrong run id, nothing written, or already purged)\n", v.run)
		return exitViolation
	}
	switch code {
	case exitOK:
		fmt.Fprintf(stdout, "PASS run %s: %d item(s) of the run in shadow twins, none in production\n", v.run, v.evidence)
	case exitViolation:
		fmt.Fprintf(stdout, "FAIL run %s: see the errors above\n", v.run)
	default:
		fmt.Fprintf(stdout, "INCOMPLETE run %s: a store could not be read\n", v.run)
	}
	return code
}

// verifier collects the findings of every store and the count of the
// run's items found in shadow twins.
type verifier struct {
	run, runCol string
	limit       int
	stdout      io.Writer
	all         []finding
	evidence    int64
}

func (v *verifier) section(title string, timeout time.Duration, f func(ctx context.Context) []finding) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	fs := f(ctx)
	fmt.Fprintln(v.stdout, title)
	for _, x := range fs {
		fmt.Fprintf(v.stdout, "  %-7s %s: %s\n", x.sev, x.subject, x.msg)
	}
	v.all = append(v.all, fs...)
}

// countVerdict is [verifier.verdict] for counts that may have stopped at
// --limit (incomplete): an OK verdict then says so, naming what was
// counted (limitUnit: "keys", "messages", "records").
func (v *verifier) countVerdict(subject, unit, limitUnit string, prod, twin int64, twinName string, samples []string, incomplete bool) finding {
	f := v.verdict(subject, unit, prod, twin, twinName, samples)
	if incomplete && f.sev == sevOK {
		f = findWarn(subject, "%s; stopped after --limit %d %s", f.msg, v.limit, limitUnit)
	}
	return f
}

// verdict turns the counts of one production target and its twin into a
// finding, and adds the twin's count to the evidence.
func (v *verifier) verdict(subject, unit string, prod, twin int64, twinName string, samples []string) finding {
	v.evidence += twin
	if prod > 0 {
		s := ""
		if len(samples) > 0 {
			s = " (" + strings.Join(samples, ", ") + ")"
		}
		return findErr(subject, "%d %s of run %s in PRODUCTION%s; %d in %s", prod, unit, v.run, s, twin, twinName)
	}
	if twin == 0 {
		return findWarn(subject, "0 %s of run %s in production, 0 in %s (nothing of the run here)", unit, v.run, twinName)
	}
	return findOK(subject, "0 %s of run %s in production, %d in %s", unit, v.run, twin, twinName)
}

// ---- SQL ----

// sql counts the rows of the run in every production table and its twin.
// A production table without the run column cannot be told apart by run
// and is reported as a warning; a missing twin is an error only when
// production holds rows of the run.
func (v *verifier) sql(ctx context.Context, driver, dsn string, tables []string, naming shadow.Naming) []finding {
	run, runCol := v.run, v.runCol
	db, err := openDB(ctx, driver, dsn)
	if err != nil {
		return []finding{findUnreachable("reachability", err)}
	}
	defer db.Close()
	quote, ph := qPG, "$1"
	switch driver {
	case "mysql":
		quote, ph = qMy, "?"
	case "sqlite":
		ph = "?"
	}
	count := func(table string) (n int64, err error) {
		q := "SELECT COUNT(*) FROM " + quote(table) + " WHERE " + quote(runCol) + " = " + ph
		err = db.QueryRowContext(ctx, q, run).Scan(&n)
		return n, err
	}
	var out []finding
	for _, t := range tables {
		twin := naming.Shadow(t)
		subject := t + " -> " + twin
		isTable, cols, err := purgeColumns(ctx, db, driver, t)
		if err != nil {
			out = append(out, findErr(subject, "%v", err))
			continue
		}
		if !isTable {
			out = append(out, findErr(subject, "production table not found"))
			continue
		}
		if !cols[strings.ToLower(runCol)] {
			out = append(out, findWarn(subject, "no %s column in production: rows cannot be told apart by run (see `shadowlane shadow purge` in the README to add one)", runCol))
			continue
		}
		prod, err := count(t)
		if err != nil {
			out = append(out, findErr(subject, "%v", err))
			continue
		}
		var samples []string
		if prod > 0 {
			rows, err := queryStrings(ctx, db, "SELECT * FROM "+quote(t)+" WHERE "+quote(runCol)+" = "+ph+" LIMIT 3", run)
			if err == nil {
				for _, r := range rows {
					samples = append(samples, "["+strings.Join(r, " ")+"]")
				}
			}
		}
		twinTable, twinCols, err := purgeColumns(ctx, db, driver, twin)
		var sh int64
		switch {
		case err != nil:
			out = append(out, findErr(subject, "%v", err))
			continue
		case !twinTable:
			if prod > 0 {
				out = append(out, findErr(subject, "%d row(s) of run %s in PRODUCTION; no shadow twin", prod, run))
			} else {
				out = append(out, findWarn(subject, "no shadow twin (`shadowlane shadow create` makes it)"))
			}
			continue
		case !twinCols[strings.ToLower(runCol)]:
			out = append(out, findErr(subject, "the twin has no %s column (production has): recreate it with `shadowlane shadow create`", runCol))
			continue
		}
		if sh, err = count(twin); err != nil {
			out = append(out, findErr(subject, "%v", err))
			continue
		}
		out = append(out, v.verdict(subject, "row(s)", prod, sh, twin, samples))
	}
	return out
}

// ---- Redis ----

// holdsRun reports whether s contains run as a word: bounded by the start
// or end of s or by a byte that cannot be part of a run id.
func holdsRun(s, run string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], run)
		if j < 0 {
			return false
		}
		j += i
		before := j == 0 || !idByte(s[j-1])
		end := j + len(run)
		after := end == len(s) || !idByte(s[end])
		if before && after {
			return true
		}
		i = j + 1
	}
}

func idByte(c byte) bool {
	return c == '-' || c == '_' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func (v *verifier) redis(ctx context.Context, addr string, patterns []string, naming shadow.Naming) []finding {
	if len(patterns) == 0 {
		return []finding{findWarn("keys", "no --keys patterns given: Redis not verified")}
	}
	c, err := redisClient(addr)
	if err != nil {
		return []finding{findErr("address", "%v", err)}
	}
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		return []finding{findUnreachable("reachability", err)}
	}
	// scan counts the keys matching pat that hold the run; shadow says
	// which side the keys must be on (others are skipped).
	scan := func(pat string, shadowSide bool) (n int64, samples []string, incomplete bool, err error) {
		seen := 0
		it := c.Scan(ctx, 0, pat, 1000).Iterator()
		for it.Next(ctx) {
			k := it.Val()
			if naming.IsShadow(k) != shadowSide {
				continue
			}
			if seen++; seen > v.limit {
				return n, samples, true, nil
			}
			hit := holdsRun(k, v.run)
			if !hit {
				typ, err := c.Type(ctx, k).Result()
				if err != nil {
					return n, samples, false, err
				}
				switch typ {
				case "string":
					s, err := c.Get(ctx, k).Result()
					if err != nil && err != redis.Nil {
						return n, samples, false, err
					}
					hit = holdsRun(s, v.run)
				case "hash":
					s, err := c.HGet(ctx, k, v.runCol).Result()
					if err != nil && err != redis.Nil {
						return n, samples, false, err
					}
					hit = s == v.run
				}
			}
			if hit {
				n++
				if len(samples) < 3 {
					samples = append(samples, k)
				}
			}
		}
		return n, samples, false, it.Err()
	}
	var out []finding
	for _, pat := range patterns {
		if naming.IsShadow(pat) {
			out = append(out, findErr(pat, "a shadow key pattern: list production key patterns"))
			continue
		}
		twinPat := globEscape(naming.Prefix) + pat
		subject := pat + " -> " + twinPat
		prod, samples, inc1, err := scan(pat, false)
		if err != nil {
			return append(out, findUnreachable(subject, err))
		}
		sh, _, inc2, err := scan(twinPat, true)
		if err != nil {
			return append(out, findUnreachable(subject, err))
		}
		out = append(out, v.countVerdict(subject, "key(s)", "keys", prod, sh, "shadow keys", samples, inc1 || inc2))
	}
	return out
}

// ---- NATS JetStream ----

func (v *verifier) nats(ctx context.Context, uri string, streams []string, names shadow.Naming) []finding {
	nc, js, err := natsJS(uri)
	if err != nil {
		return []finding{findUnreachable("reachability", err)}
	}
	defer nc.Close()
	// count reads the stream from its first message with an ordered
	// consumer and counts the messages whose run header is the run.
	count := func(name string) (n int64, samples []string, exists, incomplete bool, err error) {
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return 0, nil, false, false, nil
		}
		if err != nil {
			return 0, nil, false, false, err
		}
		info, err := s.Info(ctx)
		if err != nil || info.State.Msgs == 0 {
			return 0, nil, true, false, err
		}
		last := info.State.LastSeq
		cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
		if err != nil {
			return 0, nil, true, false, err
		}
		read := 0
		for {
			batch, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				return n, samples, true, false, err
			}
			got := 0
			var seq uint64
			for m := range batch.Messages() {
				got++
				read++
				if md, err := m.Metadata(); err == nil {
					seq = md.Sequence.Stream
				}
				for k, vals := range m.Headers() {
					if bus.FieldOf(k) == bus.RunField && len(vals) > 0 && vals[0] == v.run {
						n++
						if len(samples) < 3 {
							samples = append(samples, fmt.Sprintf("%s #%d", m.Subject(), seq))
						}
						break
					}
				}
			}
			if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
				return n, samples, true, false, err
			}
			switch {
			case seq >= last:
				return n, samples, true, false, nil
			case read >= v.limit:
				return n, samples, true, true, nil
			case got == 0 && ctx.Err() != nil:
				return n, samples, true, true, ctx.Err()
			}
		}
	}
	return v.busTwins(streams, names, busTarget{kind: "stream", unit: "message(s)", limitUnit: "messages", count: count, sayNoTwin: true})
}

// ---- Kafka ----

func (v *verifier) kafka(ctx context.Context, seeds, topics []string, naming shadow.Naming) []finding {
	adm, err := kafkaAdmin(seeds)
	if err != nil {
		return []finding{findErr("brokers", "%v", err)}
	}
	defer adm.Close()
	if _, err := adm.BrokerMetadata(ctx); err != nil {
		return []finding{findUnreachable("reachability", err)}
	}
	// count reads topic from its start offsets to the end offsets taken
	// now and counts the records whose run header is the run.
	count := func(topic string) (n int64, samples []string, exists, incomplete bool, err error) {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return 0, nil, false, false, err
		}
		starts, err := adm.ListStartOffsets(ctx, topic)
		if err != nil {
			return 0, nil, false, false, err
		}
		from := map[int32]kgo.Offset{}
		want := map[int32]int64{}
		exists = false
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				return
			}
			exists = true
			s, ok := starts.Lookup(o.Topic, o.Partition)
			if ok && s.Err == nil && s.Offset < o.Offset {
				from[o.Partition] = kgo.NewOffset().At(s.Offset)
				want[o.Partition] = o.Offset
			}
		})
		if !exists || len(want) == 0 {
			return 0, nil, exists, false, nil
		}
		//lostctx:ok verify reads production and shadow topics by their real names, with no mark
		rd, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
		if err != nil {
			return 0, nil, true, false, err
		}
		defer rd.Close()
		read := 0
		for len(want) > 0 {
			fs := rd.PollFetches(ctx)
			if ctx.Err() != nil {
				return n, samples, true, true, ctx.Err()
			}
			if errs := fs.Errors(); len(errs) > 0 {
				return n, samples, true, false, errs[0].Err
			}
			fs.EachRecord(func(r *kgo.Record) {
				read++
				for _, h := range r.Headers {
					if bus.FieldOf(h.Key) == bus.RunField && string(h.Value) == v.run {
						n++
						if len(samples) < 3 {
							samples = append(samples, fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset))
						}
						break
					}
				}
				if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
					delete(want, r.Partition)
				}
			})
			if read >= v.limit {
				return n, samples, true, true, nil
			}
		}
		return n, samples, true, false, nil
	}
	sort.Strings(topics)
	return v.busTwins(topics, naming, busTarget{kind: "topic", unit: "record(s)", limitUnit: "records", count: count})
}

// busTarget says how verify reads one kind of message target: a Kafka or
// RocketMQ topic, a NATS stream, a RabbitMQ queue.
type busTarget struct {
	kind      string // "topic", "stream", "queue": in the findings
	unit      string // what is counted, as the verdict says it: "record(s)"
	limitUnit string // what --limit counts: "records"
	// count counts the items of the run in the target name; exists is
	// false when there is no such target.
	count func(name string) (n int64, samples []string, exists, incomplete bool, err error)
	// sayNoTwin words items of the run in production beside a missing
	// twin as "no shadow <kind>" instead of the verdict's "0 in <twin>".
	sayNoTwin bool
}

// busTwins reads every production target of names and its twin as t
// says and turns their counts into findings: an error when production
// holds items of the run or is missing, a warning when the twin is
// missing and production holds none.
func (v *verifier) busTwins(names []string, naming shadow.Naming, t busTarget) []finding {
	var out []finding
	for _, name := range names {
		twin := naming.Shadow(name)
		subject := name + " -> " + twin
		prod, samples, ok, inc1, err := t.count(name)
		if err != nil {
			out = append(out, findErr(subject, "production %s: %v", t.kind, err))
			continue
		}
		if !ok {
			out = append(out, findErr(subject, "production %s not found", t.kind))
			continue
		}
		sh, _, ok, inc2, err := t.count(twin)
		switch {
		case err != nil:
			out = append(out, findErr(subject, "shadow %s: %v", t.kind, err))
		case !ok && prod == 0:
			out = append(out, findWarn(subject, "no shadow %s (`shadowlane shadow create` makes it)", t.kind))
		case !ok && t.sayNoTwin:
			out = append(out, findErr(subject, "%d %s of run %s in PRODUCTION (%s); no shadow %s", prod, t.unit, v.run, strings.Join(samples, ", "), t.kind))
		default:
			out = append(out, v.countVerdict(subject, t.unit, t.limitUnit, prod, sh, twin, samples, inc1 || inc2))
		}
	}
	return out
}
