package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane"
	slamqp "github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/cmd/shadowlane/internal/storecfg"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// storeCheckFlags are the non-SQL store flags of `shadowlane check`: which
// Redis, Kafka, RabbitMQ and NATS servers to look at, which production
// names to check there, and how their shadow twins are named (the
// adapters' defaults unless told otherwise).
type storeCheckFlags struct {
	redis, keys, keyPrefix string
	scan                   int
	kafka, topics          string
	topicSuffix            string
	amqp, exchanges        string
	queues, amqpSuffix     string
	nats, subjects         string
	streams                string
	subjectPrefix          string
	streamSuffix           string
	rocketmq               rocketmqCheckFlags
	timeout                time.Duration
}

func registerStoreCheckFlags(fs *flag.FlagSet) *storeCheckFlags {
	f := &storeCheckFlags{}
	fs.StringVar(&f.redis, "redis", "", "Redis address (host:port or redis:// URL): reachability, version, mode and shadow keys")
	fs.StringVar(&f.keys, "keys", "", "comma-separated production Redis keys whose shadow twins must exist with the same type (e.g. seeded stock counters)")
	fs.StringVar(&f.keyPrefix, "key-prefix", shadow.DefaultKey.Prefix, "prefix that names a shadow Redis key")
	fs.IntVar(&f.scan, "scan", 1000, "at most this many Redis keys are sampled (SCAN) when looking for shadow keys")
	fs.StringVar(&f.kafka, "kafka", "", "comma-separated Kafka seed brokers whose shadow topics to check")
	fs.StringVar(&f.topics, "topics", "", "comma-separated production Kafka topics (needed with --kafka)")
	fs.StringVar(&f.topicSuffix, "topic-suffix", shadow.DefaultTopic.Suffix, "suffix that names a shadow topic")
	fs.StringVar(&f.amqp, "amqp", "", "AMQP URL (amqp://user:pass@host:5672/vhost) whose shadow exchanges and queues to check")
	fs.StringVar(&f.exchanges, "exchanges", "", "comma-separated production AMQP exchanges")
	fs.StringVar(&f.queues, "queues", "", "comma-separated production AMQP queues")
	fs.StringVar(&f.amqpSuffix, "amqp-suffix", shadow.DefaultTopic.Suffix, "suffix that names a shadow exchange or queue")
	fs.StringVar(&f.nats, "nats", "", "NATS URL (nats://host:4222) whose shadow streams and subjects to check")
	fs.StringVar(&f.subjects, "subjects", "", "comma-separated production NATS subjects: if a JetStream stream captures one, one must capture its shadow subject")
	fs.StringVar(&f.streams, "streams", "", "comma-separated production JetStream streams whose shadow twins to check")
	fs.StringVar(&f.subjectPrefix, "subject-prefix", shadow.DefaultSubject.Prefix, "prefix that names a shadow NATS subject")
	fs.StringVar(&f.streamSuffix, "stream-suffix", "_shadow", "suffix that names a shadow JetStream stream")
	f.rocketmq.register(fs)
	fs.DurationVar(&f.timeout, "store-timeout", 10*time.Second, "time limit for each store's checks")
	return f
}

// Severity of a finding. A warning does not fail the check.
type severity int

const (
	sevOK severity = iota
	sevWarning
	sevError
)

func (s severity) String() string {
	return [...]string{"ok", "warning", "error"}[s]
}

// finding is one line of the report: what was looked at and what was found.
// unreachable marks the store as not reachable at all (exit code 3).
type finding struct {
	sev         severity
	subject     string
	msg         string
	unreachable bool
}

func findOK(subject, format string, a ...any) finding {
	return finding{sevOK, subject, fmt.Sprintf(format, a...), false}
}
func findWarn(subject, format string, a ...any) finding {
	return finding{sevWarning, subject, fmt.Sprintf(format, a...), false}
}
func findErr(subject, format string, a ...any) finding {
	return finding{sevError, subject, fmt.Sprintf(format, a...), false}
}
func findUnreachable(subject string, err error) finding {
	return finding{sevError, subject, "unreachable: " + err.Error(), true}
}

// checkStores reports what in the user's setup is not ready for a pressure
// test: unsafe or incomplete settings in the config, then each store given
// by flag (Redis, Kafka topics, AMQP exchanges and queues, NATS streams and
// subjects). It prints one line per finding with its severity and returns
// exitOK when nothing is an error (warnings allowed), exitViolation when a
// finding is an error, exitSetup when a store cannot be reached, and
// exitUsage for bad flags.
func checkStores(cfg shadowlane.Config, stores storecfg.Stores, f *storeCheckFlags, stdout, stderr io.Writer) int {
	if msg := f.usage(); msg != "" {
		fmt.Fprintln(stderr, "shadowlane check:", msg)
		return exitUsage
	}
	var all []finding
	section := func(title string, fs []finding) {
		fmt.Fprintln(stdout, title)
		for _, x := range fs {
			fmt.Fprintf(stdout, "  %-7s %s: %s\n", x.sev, x.subject, x.msg)
		}
		all = append(all, fs...)
	}
	section("config:", configFindings(cfg, stores, os.Getenv))
	run := func(title string, check func(ctx context.Context) []finding) {
		ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
		defer cancel()
		section(title, check(ctx))
	}
	if f.redis != "" {
		run("redis "+redactURL(f.redis)+":", func(ctx context.Context) []finding {
			fs := checkRedis(ctx, f.redis, splitList(f.keys), shadow.Naming{Prefix: f.keyPrefix}, f.scan, f.timeout)
			if cfg.Redis.Scripts == "" && stores.Redis == "" { // not said in the config section already
				fs = append(fs, scriptsFinding(cfg))
			}
			return fs
		})
	}
	if f.kafka != "" {
		run("kafka "+f.kafka+":", func(ctx context.Context) []finding {
			return checkKafka(ctx, splitList(f.kafka), splitList(f.topics), shadow.Naming{Suffix: f.topicSuffix}, f.timeout)
		})
	}
	if f.amqp != "" {
		run("amqp "+redactURL(f.amqp)+":", func(ctx context.Context) []finding {
			top := stores.AMQPTopology
			return checkAMQP(ctx, f.amqp, amqpExchangeNames(splitList(f.exchanges), top), amqpQueueNames(splitList(f.queues), top), top, shadow.Naming{Suffix: f.amqpSuffix}, f.timeout)
		})
	}
	if f.nats != "" {
		run("nats "+redactURL(f.nats)+":", func(ctx context.Context) []finding {
			return checkNATS(ctx, f.nats, splitList(f.streams), splitList(f.subjects),
				shadow.Naming{Suffix: f.streamSuffix}, shadow.Naming{Prefix: f.subjectPrefix}, f.timeout)
		})
	}
	if r := f.rocketmq; r.nameservers != "" {
		run("rocketmq "+r.nameservers+":", func(ctx context.Context) []finding {
			return checkRocketMQ(ctx, rocketmqList(r.nameservers), splitList(r.topics), splitList(r.groups),
				shadow.Naming{Suffix: r.topicSuffix}, shadow.Naming{Suffix: r.groupSuffix}, f.timeout)
		})
	}
	return exitCode(all)
}

// usage returns what is wrong with the flags, or "".
func (f *storeCheckFlags) usage() string {
	needs := []struct{ list, flag, store string }{
		{f.keys, "--keys", f.redis}, {f.topics, "--topics", f.kafka},
		{f.exchanges, "--exchanges", f.amqp}, {f.queues, "--queues", f.amqp},
		{f.streams, "--streams", f.nats}, {f.subjects, "--subjects", f.nats},
	}
	for _, n := range needs {
		if n.list != "" && n.store == "" {
			return n.flag + " needs its store flag (--redis, --kafka, --amqp or --nats)"
		}
	}
	if msg := f.rocketmq.usage(); msg != "" {
		return msg
	}
	if f.kafka != "" && f.topics == "" {
		return "--topics is required with --kafka"
	}
	if f.amqp != "" && f.exchanges == "" && f.queues == "" {
		return "--exchanges or --queues is required with --amqp"
	}
	if f.scan <= 0 || f.timeout <= 0 {
		return "--scan and --store-timeout must be positive"
	}
	for _, n := range []struct {
		flag   string
		naming shadow.Naming
		names  string
	}{
		{"--key-prefix", shadow.Naming{Prefix: f.keyPrefix}, f.keys},
		{"--topic-suffix", shadow.Naming{Suffix: f.topicSuffix}, f.topics},
		{"--amqp-suffix", shadow.Naming{Suffix: f.amqpSuffix}, f.exchanges + "," + f.queues},
		{"--stream-suffix", shadow.Naming{Suffix: f.streamSuffix}, f.streams},
		{"--subject-prefix", shadow.Naming{Prefix: f.subjectPrefix}, f.subjects},
	} {
		if msg := namingProblem(n.flag, n.naming, n.names); msg != "" {
			return msg
		}
	}
	return ""
}

// amqpPairFinding is the finding for a production exchange or queue
// (kind) and its twin when they do not both exist (bad), from the errors
// of declaring each passively: missing and its arguments say how to make
// the twin.
func amqpPairFinding(label, kind string, perr, serr error, missing string, a ...any) (f finding, bad bool) {
	switch {
	case amqpNotFound(perr):
		return findErr(label, "production %s not found", kind), true
	case perr != nil:
		return findErr(label, "production %s: %v", kind, perr), true
	case amqpNotFound(serr):
		return findErr(label, missing, a...), true
	case serr != nil:
		return findErr(label, "shadow %s: %v", kind, serr), true
	}
	return finding{}, false
}

// namingProblem says what is wrong with the naming flag's naming, or with
// names (a comma-separated list of production names) under it: "" when
// nothing is.
func namingProblem(flag string, naming shadow.Naming, names string) string {
	if err := naming.Validate(); err != nil {
		return fmt.Sprintf("%s: %v", flag, err)
	}
	for _, name := range splitList(names) {
		if naming.IsShadow(name) {
			return fmt.Sprintf("%q is already a shadow name (%s); list production names", name, flag)
		}
	}
	return ""
}

func exitCode(fs []finding) int {
	code := exitOK
	for _, x := range fs {
		switch {
		case x.unreachable:
			return exitSetup
		case x.sev == sevError:
			code = exitViolation
		}
	}
	return code
}

// redactURL hides the password of a URL (user:***@host).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "***")
		return strings.Replace(u.String(), "%2A%2A%2A", "***", 1)
	}
	return s
}

// ---- config ----

// configFindings looks for settings that make a pressure test unsafe or
// fragile. cfg has passed Validate; getenv resolves secretEnv names.
func configFindings(cfg shadowlane.Config, stores storecfg.Stores, getenv func(string) string) []finding {
	var out []finding
	edge := cfg.Trust.Mode == "" || cfg.Trust.Mode == "edge"
	switch {
	case edge && len(cfg.Trust.Keys) == 0:
		out = append(out, findWarn("trust.keys", "edge mode without token keys: the service starts, but every load-test request at an edge is refused (fail closed); add keys, or trust.mode: internal on services only our own services call"))
	case !edge && len(cfg.Trust.Keys) == 0:
		out = append(out, findOK("trust.keys", "none (internal mode takes marks from peers as sent)"))
	}
	for i, k := range cfg.Trust.Keys {
		field := fmt.Sprintf("trust.keys[%d] (%s)", i, k.ID)
		secret, from := k.Secret, "inline"
		if k.SecretEnv != "" {
			secret, from = getenv(k.SecretEnv), "$"+k.SecretEnv
		}
		n := len(secret)
		if b64, isB64 := strings.CutPrefix(secret, "base64:"); isB64 {
			raw, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				out = append(out, findErr(field, "secret from %s is not valid base64: %v", from, err))
				continue
			}
			n = len(raw)
		}
		switch {
		case n < propagation.MinSecretLen:
			out = append(out, findErr(field, "secret from %s has %d bytes; a token key needs at least %d", from, n, propagation.MinSecretLen))
		case k.SecretEnv == "":
			out = append(out, findWarn(field, "%d-byte secret is inline in the file: anyone who reads the file can sign load-test tokens; use secretEnv", n))
		default:
			out = append(out, findOK(field, "%d-byte secret from %s", n, from))
		}
	}
	switch {
	case !edge:
		out = append(out, findWarn("trust.mode", "internal: marks from callers are taken as sent; only our own services may reach this one"))
	case cfg.Trust.OnUntrusted == "":
		out = append(out, findOK("trust.onUntrusted", "not set: reject (the default): load-test requests without a valid token are refused with 403 / PermissionDenied"))
	case cfg.Trust.OnUntrusted == "strip":
		out = append(out, findWarn("trust.onUntrusted", "strip: load-test requests whose token is missing, expired or invalid continue as production traffic (an expiring token turns the load into production load on real data and third parties); prefer reject"))
	default:
		out = append(out, findOK("trust.onUntrusted", "%s", cfg.Trust.OnUntrusted))
	}
	// The outbound rules are judged by the runtime's own validator (an
	// allow-list entry that allows every host is refused there), so check
	// and the runtime cannot disagree.
	outboundOK := true
	var fes interface{ Unwrap() []error }
	if errors.As(cfg.ValidateEnv(getenv), &fes) {
		for _, e := range fes.Unwrap() {
			var fe *shadowlane.FieldError
			if errors.As(e, &fe) && strings.HasPrefix(fe.Field, "outbound.") {
				out = append(out, findErr(fe.Field, "%s", fe.Msg))
				outboundOK = false
			}
		}
	}
	if outboundOK {
		out = append(out, findOK("outbound.allow", "%d host pattern(s); load-test calls elsewhere are blocked or mocked", len(cfg.Outbound.Allow)))
	}
	if a := cfg.Admin.Addr; a == "" {
		out = append(out, findOK("admin.addr", "endpoint off"))
	} else {
		host, _, _ := net.SplitHostPort(a)
		ip := net.ParseIP(host)
		if host == "localhost" || (ip != nil && ip.IsLoopback()) {
			out = append(out, findOK("admin.addr", "%s (loopback only)", a))
		} else {
			out = append(out, findWarn("admin.addr", "%s is reachable off this host: the kill switch and status answer anyone holding the token; prefer a loopback address", a))
		}
		if cfg.Admin.Token != "" && cfg.Admin.TokenEnv == "" {
			out = append(out, findWarn("admin.token", "inline in the file; use tokenEnv"))
		}
	}
	if cfg.LoadTest.Enabled != nil && !*cfg.LoadTest.Enabled {
		out = append(out, findWarn("loadTest.enabled", "false: the kill switch is on and every load-test request will be refused"))
	}
	if cfg.Redis.Scripts != "" || stores.Redis != "" {
		out = append(out, scriptsFinding(cfg))
	}
	return out
}

// scriptsFinding says whether marked Redis scripts are allowed: a script
// can build key names itself, and then reads or writes production keys.
func scriptsFinding(cfg shadowlane.Config) finding {
	if cfg.Redis.RefusesScripts() {
		return findOK("redis.scripts", "refuse: marked EVAL/EVALSHA/FCALL are refused")
	}
	how := "allow"
	if cfg.Redis.Scripts == "" {
		how = "not set, allowed by default"
	}
	return findWarn("redis.scripts", "%s: marked EVAL/EVALSHA/FCALL run with their declared keys renamed, but a script that builds key names itself touches production keys; set redis.scripts: refuse unless every script declares every key it touches", how)
}

// ---- Redis ----

func checkRedis(ctx context.Context, addr string, keys []string, naming shadow.Naming, scan int, timeout time.Duration) []finding {
	opts, err := redisOptions(addr)
	if err != nil {
		return []finding{findErr("address", "%v", err)}
	}
	opts.DialTimeout, opts.MaxRetries, opts.PoolSize = min(timeout, 5*time.Second), -1, 1
	//lostctx:ok check probes the real server with a plain client on purpose
	c := redis.NewClient(opts)
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		return []finding{findUnreachable("reachability", err)}
	}
	var out []finding
	info, err := c.Info(ctx, "server").Result()
	version, mode := infoField(info, "redis_version"), infoField(info, "redis_mode")
	switch {
	case err != nil:
		out = append(out, findWarn("server", "reachable, but INFO failed (%v): version and mode unknown", err))
	case mode == "cluster":
		out = append(out, findWarn("server", "reachable, version %s, mode cluster: this check sees one node only (SCAN samples it alone); use a ClusterClient with the goredis hook", version))
	case mode == "":
		out = append(out, findOK("server", "reachable, version %s", version))
	default:
		out = append(out, findOK("server", "reachable, version %s, mode %s", version, mode))
	}
	// A bounded sample: SCAN COUNT 100 calls until scan keys were examined.
	found, examined, complete := 0, 0, false
	var cursor uint64
	var example string
	for examined < scan && ctx.Err() == nil {
		page, next, err := c.Scan(ctx, cursor, "*", int64(min(100, scan))).Result()
		if err != nil {
			out = append(out, findErr("shadow keys", "SCAN: %v", err))
			break
		}
		examined += len(page)
		for _, k := range page {
			if naming.IsShadow(k) {
				found++
				if example == "" {
					example = k
				}
			}
		}
		if cursor = next; cursor == 0 {
			complete = true
			break
		}
	}
	sample := fmt.Sprintf("a sample of %d keys", examined)
	if complete {
		sample = fmt.Sprintf("all %d keys", examined)
	}
	if found > 0 {
		out = append(out, findOK("shadow keys", "%d under %q in %s (e.g. %s)", found, naming.Prefix, sample, example))
	} else {
		out = append(out, findWarn("shadow keys", "none under %q in %s: fine before a first run if load-test reads may miss; seed what they must find (list it with --keys)", naming.Prefix, sample))
	}
	// A key with glob characters is a pattern (as `shadow create --keys`
	// takes it): every production key it matches (SCAN, at most scan of
	// them) must have its twin.
	var expanded []string
	for _, k := range keys {
		if !strings.ContainsAny(k, "*?[") {
			expanded = append(expanded, k)
			continue
		}
		var matched []string
		it := c.Scan(ctx, 0, k, 500).Iterator()
		for it.Next(ctx) && len(matched) < scan {
			if !naming.IsShadow(it.Val()) {
				matched = append(matched, it.Val())
			}
		}
		if err := it.Err(); err != nil {
			out = append(out, findErr(k, "SCAN: %v", err))
			continue
		}
		if len(matched) == 0 {
			out = append(out, findErr(k, "no production key matches the pattern"))
			continue
		}
		sort.Strings(matched)
		expanded = append(expanded, matched...)
	}
	for _, k := range expanded {
		twin := naming.Shadow(k)
		pt, err1 := c.Type(ctx, k).Result()
		st, err2 := c.Type(ctx, twin).Result()
		if err := errors.Join(err1, err2); err != nil {
			out = append(out, findErr(k, "TYPE: %v", err))
			continue
		}
		switch {
		case st == "none" && pt == "none":
			out = append(out, findErr(k+" -> "+twin, "neither the production key nor its shadow twin exists"))
		case st == "none":
			out = append(out, findErr(k+" -> "+twin, "missing: load-test reads of this key will not find it; seed the shadow twin before the run"))
		case pt == "none":
			out = append(out, findWarn(k+" -> "+twin, "shadow twin exists (%s) but the production key does not", st))
		case pt != st:
			out = append(out, findErr(k+" -> "+twin, "different: type %s in production, %s in shadow", pt, st))
		default:
			out = append(out, findOK(k+" -> "+twin, "exists (%s)", st))
		}
	}
	return out
}

// infoField returns the value of "name:value" in an INFO reply.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, found := strings.CutPrefix(strings.TrimSpace(line), name+":"); found {
			return v
		}
	}
	return ""
}

// ---- Kafka ----

func checkKafka(ctx context.Context, seeds, topics []string, naming shadow.Naming, timeout time.Duration) []finding {
	adm, err := kafkaAdmin(seeds, kgo.DialTimeout(min(timeout, 5*time.Second)))
	if err != nil {
		return []finding{findErr("client", "%v", err)}
	}
	defer adm.Close()
	names := slices.Clone(topics)
	for _, t := range topics {
		names = append(names, naming.Shadow(t))
	}
	md, err := adm.Metadata(ctx, names...)
	if err != nil {
		return []finding{findUnreachable("reachability", err)}
	}
	out := []finding{findOK("cluster", "reachable, %d broker(s)", len(md.Brokers))}
	for _, t := range topics {
		twin := naming.Shadow(t)
		label := t + " -> " + twin
		p, s := md.Topics[t], md.Topics[twin]
		switch {
		case missingTopic(p):
			out = append(out, findErr(label, "production topic not found"))
		case p.Err != nil:
			out = append(out, findErr(label, "production topic: %v", p.Err))
		case missingTopic(s):
			out = append(out, findErr(label, "missing: create %s with %d partitions", twin, len(p.Partitions)))
		case s.Err != nil:
			out = append(out, findErr(label, "shadow topic: %v", s.Err))
		case len(p.Partitions) != len(s.Partitions):
			out = append(out, findErr(label, "different: %d partitions in production, %d in shadow (keyed ordering and consumer parallelism differ)", len(p.Partitions), len(s.Partitions)))
		case p.Partitions.NumReplicas() != s.Partitions.NumReplicas():
			out = append(out, findWarn(label, "replication factor %d in production, %d in shadow", p.Partitions.NumReplicas(), s.Partitions.NumReplicas()))
		default:
			out = append(out, findOK(label, "exists, %d partition(s)", len(s.Partitions)))
		}
	}
	return out
}

func missingTopic(d kadm.TopicDetail) bool {
	return d.Topic == "" || errors.Is(d.Err, kerr.UnknownTopicOrPartition)
}

// ---- AMQP ----

// checkAMQP checks that the twin of every exchange and queue exists and,
// for those described in top, that it has the described attributes (an
// existing twin is redeclared with them: a no-op when they agree).
func checkAMQP(ctx context.Context, uri string, exchanges, queues []string, top storecfg.AMQPTopology, naming shadow.Naming, timeout time.Duration) []finding {
	_, twins, terr := shadowTopology(top, naming)
	if terr != nil {
		twins = slamqp.Topology{}
	}
	twinX := map[string]slamqp.Exchange{}
	for _, x := range twins.Exchanges {
		twinX[x.Name] = x
	}
	twinQ := map[string]slamqp.Queue{}
	for _, q := range twins.Queues {
		twinQ[q.Name] = q
	}
	conn, err := amqpDial(uri, timeout)
	if err != nil {
		return []finding{findUnreachable("reachability", err)}
	}
	defer conn.Close()
	props := conn.Properties
	out := []finding{findOK("server", "reachable, %v %v", props["product"], props["version"])}
	for _, x := range exchanges {
		if ctx.Err() != nil {
			break
		}
		twin := naming.Shadow(x)
		label := "exchange " + x + " -> " + twin
		perr, serr := amqpExchangeExists(conn, x), amqpExchangeExists(conn, twin)
		if f, bad := amqpPairFinding(label, "exchange", perr, serr, "missing: declare %s like %s (same type and bindings, to shadow queues)", twin, x); bad {
			out = append(out, f)
			continue
		}
		d, ok := twinX[twin]
		if !ok {
			out = append(out, findOK(label, "exists (type and bindings are not visible over AMQP 0-9-1; describe it under stores.amqpTopology to check them)"))
			continue
		}
		diff, err := amqpTwinDiffers(ctx, conn, func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare(d.Name, d.Kind, d.Durable, d.AutoDelete, d.Internal, false, d.Args)
		})
		switch {
		case err != nil:
			out = append(out, findErr(label, "shadow exchange: %v", err))
		case diff != "":
			out = append(out, findErr(label, "differs from stores.amqpTopology: %s", diff))
		default:
			out = append(out, findOK(label, "exists, %s as described (bindings are not visible over AMQP 0-9-1)", d.Kind))
		}
	}
	for _, q := range queues {
		if ctx.Err() != nil {
			break
		}
		twin := naming.Shadow(q)
		label := "queue " + q + " -> " + twin
		p, perr := amqpQueueInspect(conn, q)
		s, serr := amqpQueueInspect(conn, twin)
		qdiff := ""
		if d, ok := twinQ[twin]; ok && perr == nil && serr == nil {
			qdiff = amqpQueueDiff(ctx, conn, d)
		}
		if f, bad := amqpPairFinding(label, "queue", perr, serr, "missing: declare %s like %s", twin, q); bad {
			out = append(out, f)
			continue
		}
		switch {
		case qdiff != "":
			out = append(out, findErr(label, "differs from stores.amqpTopology: %s", qdiff))
		case s.Consumers == 0 && p.Consumers > 0:
			out = append(out, findWarn(label, "exists, but no consumer while production has %d: load-test messages will pile up (%d ready)", p.Consumers, s.Messages))
		default:
			out = append(out, findOK(label, "exists, %d consumer(s), %d message(s) ready", s.Consumers, s.Messages))
		}
	}
	if terr != nil {
		out = append(out, findErr("amqpTopology", "%v", terr))
	}
	if ctx.Err() != nil {
		out = append(out, findErr("checks", "stopped: %v", ctx.Err()))
	}
	return out
}

// amqpQueueDiff returns how the existing twin q differs from its
// description ("" when it agrees or cannot be compared).
func amqpQueueDiff(ctx context.Context, conn *amqp.Connection, q slamqp.Queue) string {
	diff, err := amqpTwinDiffers(ctx, conn, func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare(q.Name, q.Durable, q.AutoDelete, false, false, q.Args)
		return err
	})
	if err != nil {
		return err.Error()
	}
	return diff
}

// ---- NATS ----

func checkNATS(ctx context.Context, uri string, streams, subjects []string, names, subj shadow.Naming, timeout time.Duration) []finding {
	nc, err := nats.Connect(uri, nats.Timeout(min(timeout, 5*time.Second)), nats.NoReconnect(), nats.Name("shadowlane check"))
	if err != nil {
		return []finding{findUnreachable("reachability", err)}
	}
	defer nc.Close()
	out := []finding{findOK("server", "reachable, version %s", nc.ConnectedServerVersion())}
	if len(streams) == 0 && len(subjects) == 0 {
		return out
	}
	js, err := jetstream.New(nc)
	if err == nil {
		_, err = js.AccountInfo(ctx)
	}
	if err != nil {
		return append(out, findErr("jetstream", "%v", err))
	}
	for _, name := range streams {
		twin := names.Shadow(name)
		label := "stream " + name + " -> " + twin
		p, perr := streamConfig(ctx, js, name)
		s, serr := streamConfig(ctx, js, twin)
		switch {
		case errors.Is(perr, jetstream.ErrStreamNotFound):
			out = append(out, findErr(label, "production stream not found"))
		case perr != nil:
			out = append(out, findErr(label, "production stream: %v", perr))
		case errors.Is(serr, jetstream.ErrStreamNotFound):
			out = append(out, findErr(label, "missing: create it with subjects %s", strings.Join(shadowSubjects(p.Subjects, subj), ", ")))
		case serr != nil:
			out = append(out, findErr(label, "shadow stream: %v", serr))
		default:
			out = append(out, compareStreams(label, p, s, subj))
		}
	}
	for _, x := range subjects {
		twin := subj.Shadow(x)
		label := "subject " + x + " -> " + twin
		ps, perr := js.StreamNameBySubject(ctx, x)
		ss, serr := js.StreamNameBySubject(ctx, twin)
		switch {
		case perr != nil && !errors.Is(perr, jetstream.ErrStreamNotFound):
			out = append(out, findErr(label, "%v", perr))
		case serr != nil && !errors.Is(serr, jetstream.ErrStreamNotFound):
			out = append(out, findErr(label, "%v", serr))
		case ps == "" && ss == "":
			out = append(out, findOK(label, "core NATS (no stream captures either)"))
		case ps != "" && ss == "":
			out = append(out, findErr(label, "stream %s captures the production subject, no stream captures the shadow one: load-test messages would not be persisted", ps))
		case ps == "":
			out = append(out, findWarn(label, "stream %s captures the shadow subject, none the production one", ss))
		case ps == ss:
			out = append(out, findErr(label, "stream %s captures both: load-test and production messages share one stream", ps))
		default:
			out = append(out, findOK(label, "captured by %s and %s", ps, ss))
		}
	}
	return out
}

func streamConfig(ctx context.Context, js jetstream.JetStream, name string) (jetstream.StreamConfig, error) {
	st, err := js.Stream(ctx, name)
	if err != nil {
		return jetstream.StreamConfig{}, err
	}
	return st.CachedInfo().Config, nil
}

func shadowSubjects(subjects []string, n shadow.Naming) []string {
	out := make([]string, len(subjects))
	for i, s := range subjects {
		out[i] = n.Shadow(s)
	}
	return out
}

// compareStreams checks that the shadow stream captures exactly the shadow
// subjects of the production stream, and no production subject, with the
// same retention and storage.
func compareStreams(label string, p, s jetstream.StreamConfig, subj shadow.Naming) finding {
	want := shadowSubjects(p.Subjects, subj)
	got := slices.Clone(s.Subjects)
	sort.Strings(want)
	sort.Strings(got)
	for _, x := range got {
		if !subj.IsShadow(x) {
			return findErr(label, "captures the production subject %q: production messages would land in the shadow stream", x)
		}
	}
	if !slices.Equal(want, got) {
		return findErr(label, "different: subjects [%s] expected, [%s] in shadow", strings.Join(want, ", "), strings.Join(got, ", "))
	}
	if p.Retention != s.Retention || p.Storage != s.Storage {
		return findWarn(label, "retention %s/%s storage %s/%s (production/shadow)", p.Retention, s.Retention, p.Storage, s.Storage)
	}
	return findOK(label, "exists, subjects %s", strings.Join(got, ", "))
}
