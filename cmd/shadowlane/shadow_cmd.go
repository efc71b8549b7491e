package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/shadow"
)

// cmdShadow runs `shadowlane shadow plan|create|purge`.
func cmdShadow(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "plan" && args[0] != "create" && args[0] != "purge") {
		fmt.Fprint(stderr, `usage: shadowlane shadow plan|create|purge [flags]

  plan    print the DDL that creates the shadow twins of the config's stores (or the flags')
  create  apply it: idempotent, creates or fixes shadow objects only, never alters production;
          copies the Redis seed keys (--keys patterns) to their shadow names
  purge   count (dry run) or, with --yes, delete the load-test data in the shadow twins:
          --run R deletes the rows of run R where the twin has the run column (--run-column),
          --all empties every twin, deletes every shadow Redis key, empties the shadow
          Kafka topics, NATS streams and RabbitMQ queues
`)
		return exitUsage
	}
	sub := args[0]
	fs := newFlagSet("shadow "+sub, stderr)
	cfgFile, sq, st := registerStoreFlags(fs, storesConfigUsage)
	seedTTL := fs.Duration("seed-ttl", 0, "create: TTL of the copied seed keys (0 keeps them without expiry)")
	runID := fs.String("run", "", "purge: the run whose rows to delete")
	all := fs.Bool("all", false, "purge: empty every shadow twin and delete every shadow key")
	yes := fs.Bool("yes", false, "purge: really delete (without it purge only counts)")
	runCol := fs.String("run-column", "shadowlane_run", "purge: column of a shadow table that holds the run id of a row")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	stores, cfgCode := storesFromConfig(*cfgFile, true, fs, sq, st, stderr)
	if cfgCode != exitOK {
		return cfgCode
	}
	amqpTop := stores.AMQPTopology
	keyNaming := shadow.Naming{Prefix: st.keyPrefix}
	if err := keyNaming.Validate(); err != nil {
		fmt.Fprintln(stderr, "shadowlane shadow:", err)
		return exitUsage
	}
	naming, tables, ok := productionTables("shadowlane shadow", sq, stderr)
	if !ok {
		return exitUsage
	}
	if sub == "purge" {
		if (*runID == "") == !*all {
			fmt.Fprintln(stderr, "shadowlane shadow purge: give --run R or --all")
			return exitUsage
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(sq.timeout, st.timeout)*6)
	defer cancel()
	code := exitOK
	did := false
	for _, t := range []struct{ driver, dsn string }{{"mysql", sq.mysql}, {"pgx", sq.postgres}, {"sqlite", sq.sqlite}} {
		if t.dsn == "" {
			continue
		}
		did = true
		if len(tables) == 0 {
			fmt.Fprintln(stderr, "shadowlane shadow: --tables is required with a database")
			return exitUsage
		}
		db, err := openDB(ctx, t.driver, t.dsn)
		if err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow: %s: cannot connect: %v\n", t.driver, err)
			code = worst(code, exitSetup)
			continue
		}
		var c int
		switch sub {
		case "plan", "create":
			c = shadowSchema(ctx, db, t.driver, tables, naming, sub == "create", stdout, stderr)
		case "purge":
			c = purgeSQL(ctx, db, t.driver, tables, naming, *runID, *runCol, *yes, stdout, stderr)
		}
		db.Close()
		code = worst(code, c)
	}
	if st.redis != "" {
		did = true
		var c int
		switch sub {
		case "plan", "create":
			c = seedRedis(ctx, st.redis, splitList(st.keys), keyNaming, *seedTTL, sub == "create", stdout, stderr)
		case "purge":
			c = purgeRedis(ctx, st.redis, keyNaming, *all, *yes, stdout, stderr)
		}
		code = worst(code, c)
	}
	if st.kafka != "" && st.topics != "" {
		did = true
		topicNaming := shadow.Naming{Suffix: st.topicSuffix}
		switch {
		case sub != "purge":
			code = worst(code, kafkaTwins(ctx, splitList(st.kafka), splitList(st.topics), topicNaming, sub == "create", stdout, stderr))
		case *all:
			code = worst(code, kafkaPurge(ctx, splitList(st.kafka), splitList(st.topics), topicNaming, *yes, stdout, stderr))
		default:
			fmt.Fprintln(stdout, "kafka: records carry the run in headers only: skipped (use --all to empty the shadow topics)")
		}
	}
	if st.nats != "" && st.streams != "" {
		did = true
		streamNaming, subjNaming := shadow.Naming{Suffix: st.streamSuffix}, shadow.Naming{Prefix: st.subjectPrefix}
		switch {
		case sub != "purge":
			code = worst(code, natsTwins(ctx, st.nats, splitList(st.streams), streamNaming, subjNaming, sub == "create", stdout, stderr))
		case *all:
			code = worst(code, natsPurge(ctx, st.nats, splitList(st.streams), streamNaming, *yes, stdout, stderr))
		default:
			fmt.Fprintln(stdout, "nats: messages carry the run in headers only: skipped (use --all to purge the shadow streams)")
		}
	}
	if st.amqp != "" {
		did = true
		amqpNaming := shadow.Naming{Suffix: st.amqpSuffix}
		if err := amqpNaming.Validate(); err != nil {
			fmt.Fprintln(stderr, "shadowlane shadow: --amqp-suffix:", err)
			return exitUsage
		}
		switch {
		case sub != "purge":
			code = worst(code, amqpTwins(st.amqp, splitList(st.exchanges), splitList(st.queues), amqpTop, amqpNaming, st.timeout, sub == "create", stdout, stderr))
		case *all:
			code = worst(code, amqpPurge(st.amqp, amqpQueueNames(splitList(st.queues), amqpTop), amqpNaming, st.timeout, *yes, stdout, stderr))
		default:
			fmt.Fprintln(stdout, "amqp: messages carry the run in headers only: skipped (use --all to purge the shadow queues)")
		}
	}
	if r := st.rocketmq; r.nameservers != "" {
		did = true
		if msg := r.usage(); msg != "" {
			fmt.Fprintln(stderr, "shadowlane shadow:", msg)
			return exitUsage
		}
		if sub != "purge" {
			code = worst(code, rocketmqTwins(ctx, rocketmqList(r.nameservers), splitList(r.topics), splitList(r.groups),
				shadow.Naming{Suffix: r.topicSuffix}, shadow.Naming{Suffix: r.groupSuffix}, st.timeout, sub == "create", stdout, stderr))
		} else {
			fmt.Fprintln(stdout, "rocketmq: not purged: the remoting protocol cannot empty a topic (shadow messages expire with the broker's retention, or delete the shadow topics with mqadmin deleteTopic)")
		}
	}
	if !did {
		fmt.Fprintln(stderr, "shadowlane shadow: no store given (--config with a stores: section, or --mysql/--postgres/--sqlite with --tables, --redis, --kafka with --topics, --nats with --streams, --amqp, --rocketmq with --rocketmq-topics)")
		return exitUsage
	}
	return code
}

// shadowSchema prints the plan and, with apply, runs it and plans again
// to prove nothing is left.
func shadowSchema(ctx context.Context, db *sql.DB, driver string, tables []string, naming shadow.Naming, apply bool, stdout, stderr io.Writer) int {
	p, err := planners[driver](ctx, db, tables, naming)
	if err != nil {
		fmt.Fprintln(stderr, "shadowlane shadow:", err)
		return exitViolation
	}
	writePlan(stdout, p)
	if !apply {
		return exitOK
	}
	for _, a := range p.Actions {
		for _, s := range a.SQL {
			if err := assertShadowDDL(s, naming); err != nil {
				fmt.Fprintf(stderr, "shadowlane shadow create: refusing %q: %v\n", s, err)
				return exitViolation
			}
		}
	}
	for _, a := range p.Actions {
		for _, s := range a.SQL {
			if _, err := db.ExecContext(ctx, s); err != nil {
				fmt.Fprintf(stderr, "shadowlane shadow create: %s: %s: %v\n", a.Object, s, err)
				return exitViolation
			}
		}
		fmt.Fprintf(stdout, "created %s\n", a.Object)
	}
	again, err := planners[driver](ctx, db, tables, naming)
	if err != nil {
		fmt.Fprintln(stderr, "shadowlane shadow:", err)
		return exitViolation
	}
	if len(again.Actions) > 0 {
		fmt.Fprintf(stderr, "shadowlane shadow create: %d action(s) still pending after create:\n", len(again.Actions))
		writePlan(stderr, again)
		return exitViolation
	}
	if len(p.Reviews) > 0 {
		fmt.Fprintf(stdout, "%s: twins created; %d object(s) above need your review (REVIEW)\n", p.Dialect, len(p.Reviews))
		return exitOK
	}
	fmt.Fprintf(stdout, "%s: shadow twins complete\n", p.Dialect)
	return exitOK
}

// assertShadowDDL refuses a statement whose target object is not a shadow
// name: CREATE/ALTER/DROP of TABLE, SEQUENCE, VIEW, INDEX (and its ON
// table), the table of ALTER SEQUENCE ... OWNED BY and the sequence of
// SELECT setval('...').
func assertShadowDDL(stmt string, naming shadow.Naming) error {
	var sig []ddlToken
	for _, t := range ddlTokens(stmt) {
		if s := strings.TrimSpace(t.text); s != "" && !strings.HasPrefix(s, "--") && !strings.HasPrefix(s, "/*") {
			sig = append(sig, t)
		}
	}
	// name reads a possibly qualified name at i and returns its last part.
	name := func(i int) (string, int) {
		n := ""
		for i < len(sig) && sig[i].ident {
			n = sig[i].name
			if i+1 < len(sig) && sig[i+1].text == "." {
				i += 2
				continue
			}
			i++
			break
		}
		return n, i
	}
	check := func(n string) error {
		if n == "" || !naming.IsShadow(n) {
			return fmt.Errorf("%q is not a shadow name", n)
		}
		return nil
	}
	if len(sig) < 2 {
		return errors.New("empty statement")
	}
	verb := strings.ToUpper(sig[0].text)
	if verb == "SELECT" {
		if len(sig) > 3 && sig[1].kw("setval") && sig[2].text == "(" && strings.HasPrefix(sig[3].text, "'") {
			lit := strings.Trim(sig[3].text, "'")
			inner := ddlTokens(strings.ReplaceAll(lit, "''", "'"))
			last := ""
			for _, t := range inner {
				if t.ident {
					last = t.name
				}
			}
			return check(last)
		}
		return errors.New("unexpected SELECT")
	}
	if verb != "CREATE" && verb != "ALTER" && verb != "DROP" {
		return fmt.Errorf("unexpected statement %s", verb)
	}
	i := 1
	for i < len(sig) && (sig[i].kw("OR") || sig[i].kw("REPLACE") || sig[i].kw("UNIQUE") || sig[i].kw("TEMP") || sig[i].kw("TEMPORARY")) {
		i++
	}
	if i >= len(sig) {
		return errors.New("truncated statement")
	}
	what := strings.ToUpper(sig[i].text)
	switch what {
	case "TABLE", "SEQUENCE", "VIEW", "INDEX":
	default:
		return fmt.Errorf("unexpected %s %s", verb, what)
	}
	i++
	if i < len(sig) && sig[i].kw("IF") {
		for i < len(sig) && !sig[i].kw("EXISTS") {
			i++
		}
		i++
	}
	n, i := name(i)
	if err := check(n); err != nil {
		return err
	}
	for j := i; j < len(sig); j++ {
		if what == "INDEX" && sig[j].kw("ON") {
			on, _ := name(j + 1)
			return check(on)
		}
		if what == "SEQUENCE" && sig[j].kw("OWNED") && j+2 < len(sig) {
			// OWNED BY schema.table.column: the table is the part before the column.
			k, parts := j+2, []string{}
			for k < len(sig) && sig[k].ident {
				parts = append(parts, sig[k].name)
				if k+1 < len(sig) && sig[k+1].text == "." {
					k += 2
					continue
				}
				break
			}
			if len(parts) < 2 {
				return errors.New("OWNED BY without a table")
			}
			return check(parts[len(parts)-2])
		}
		if what == "TABLE" && verb == "ALTER" && sig[j].kw("REFERENCES") {
			ref, _ := name(j + 1)
			if err := check(ref); err != nil {
				return err
			}
		}
	}
	return nil
}

// ---- Redis seeds ----

// redisOptions reads a Redis address: host:port or a redis:// (rediss://)
// URL.
func redisOptions(addr string) (*redis.Options, error) {
	if strings.Contains(addr, "://") {
		return redis.ParseURL(addr)
	}
	return &redis.Options{Addr: addr}, nil
}

func redisClient(addr string) (*redis.Client, error) {
	opts, err := redisOptions(addr)
	if err != nil {
		return nil, err
	}
	opts.MaxRetries, opts.PoolSize = -1, 2
	//lostctx:ok the shadow tooling names production and shadow keys itself and must not be rewritten by a hook
	return redis.NewClient(opts), nil
}

// seedRedis copies every production key matching one of patterns (SCAN
// MATCH globs) to its shadow name with DUMP/RESTORE. A shadow key that
// exists already is kept (create is idempotent, a seed is not reset).
func seedRedis(ctx context.Context, addr string, patterns []string, naming shadow.Naming, ttl time.Duration, apply bool, stdout, stderr io.Writer) int {
	if len(patterns) == 0 {
		return exitOK
	}
	c, err := redisClient(addr)
	if err != nil {
		fmt.Fprintln(stderr, "shadowlane shadow: redis:", err)
		return exitUsage
	}
	defer c.Close()
	copied, kept := 0, 0
	for _, pat := range patterns {
		if naming.IsShadow(pat) {
			fmt.Fprintf(stderr, "shadowlane shadow: redis: %q is a shadow key pattern; list production keys\n", pat)
			return exitUsage
		}
		it := c.Scan(ctx, 0, pat, 500).Iterator()
		for it.Next(ctx) {
			k := it.Val()
			if naming.IsShadow(k) {
				continue
			}
			sk := naming.Shadow(k)
			if !apply {
				fmt.Fprintf(stdout, "redis: would copy %s -> %s\n", k, sk)
				continue
			}
			dump, err := c.Dump(ctx, k).Result()
			if err == redis.Nil {
				continue // gone since SCAN
			}
			if err != nil {
				fmt.Fprintln(stderr, "shadowlane shadow: redis:", err)
				return exitSetup
			}
			err = c.Restore(ctx, sk, ttl, dump).Err()
			switch {
			case err != nil && strings.HasPrefix(err.Error(), "BUSYKEY"):
				kept++
			case err != nil:
				fmt.Fprintln(stderr, "shadowlane shadow: redis:", err)
				return exitSetup
			default:
				copied++
			}
		}
		if err := it.Err(); err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow: redis: cannot connect: %v\n", err)
			return exitSetup
		}
	}
	if apply {
		fmt.Fprintf(stdout, "redis: copied %d seed key(s) to shadow names, kept %d existing\n", copied, kept)
	}
	return exitOK
}

// productionTables returns the SQL naming of the flags and their --tables,
// all production names. On a bad naming or a shadow name in the list it
// prints why, prefixed by cmd, and returns false.
func productionTables(cmd string, sq *sqlCheckFlags, stderr io.Writer) (shadow.Naming, []string, bool) {
	naming := shadow.Naming{Prefix: sq.prefix, Suffix: sq.suffix}
	if err := naming.Validate(); err != nil {
		fmt.Fprintln(stderr, cmd+":", err)
		return naming, nil, false
	}
	tables := splitList(sq.tables)
	for _, t := range tables {
		if naming.IsShadow(t) {
			fmt.Fprintf(stderr, "%s: %q is already a shadow table name; list production tables\n", cmd, t)
			return naming, nil, false
		}
	}
	return naming, tables, true
}
