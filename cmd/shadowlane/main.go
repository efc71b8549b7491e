package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/cmd/shadowlane/drill"
	"github.com/shadowlane/shadowlane/cmd/shadowlane/internal/storecfg"
)

// Exit codes.
const (
	exitOK        = 0
	exitViolation = 1 // drill invariant violated, config invalid
	exitUsage     = 2 // bad flags or arguments
	exitSetup     = 3 // the drill could not start, a file could not be read
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// command is a sub-command: its name, what runs it and its lines in the
// usage (the first beside the name).
type command struct {
	name string
	run  func(args []string, stdout, stderr io.Writer) int
	help string
}

// commands are the sub-commands, in the order the usage lists them.
func commands() []command {
	return []command{
		{"drill", cmdDrill, `run the end-to-end isolation drill (embedded SQLite, miniredis, kfake by default;
--redis/--mysql/--postgres/--kafka for real backends); exit 0 only if every invariant holds`},
		{"token", cmdToken, `mint a signed load-test token for an edge, printed ready to use
(--format token|header|curl|hey|vegeta|k6|env), with its expiry`},
		{"check", cmdCheck, `validate a config file and, with --mysql/--postgres/--sqlite, the shadow twins of --tables`},
		{"shadow", cmdShadow, `plan|create|purge the shadow twins of the config's stores (tables with their own
sequences, foreign keys, views; Redis seed keys); purge --run R | --all [--yes]`},
		{"verify", cmdVerify, `after a run: check from the stores that the run's rows, keys and messages are in the
shadow twins and none in production (--run R; exit 0 ok, 1 leak, 3 unreachable)`},
		{"vet", cmdVet, `report code that loses the mark (runs shadowlane-vet; see "shadowlane vet -h")`},
		{"run", cmdRun, `pressure-test your own HTTP entry points from a scenario file: paced load-test requests with
the run's token (re-minted before expiry), production probes, abort conditions, per-service
evidence (--services), results as JSON lines and an HTML report; --part i/n on several machines`},
		{"report", cmdReport, `merge the results files of the parts of a run into one report (report merge FILE...)`},
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, "usage: shadowlane <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-7s %s\n", c.name, strings.ReplaceAll(c.help, "\n", "\n"+strings.Repeat(" ", 10)))
	}
	fmt.Fprint(w, "\nrun \"shadowlane <command> -h\" for the flags of a command\n")
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "--help":
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "shadowlane: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func cmdDrill(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("drill", stderr)
	n := fs.Int("requests", 20, "requests per scenario")
	c := fs.Int("concurrency", 8, "parallel clients")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	redisAddr := fs.String("redis", os.Getenv("SHADOWLANE_DRILL_REDIS"), "Redis address to use instead of the embedded miniredis (e.g. 127.0.0.1:6379)")
	mysqlDSN := fs.String("mysql", os.Getenv("SHADOWLANE_DRILL_MYSQL"), "MySQL/MariaDB DSN to use instead of the embedded SQLite (e.g. 'root@tcp(127.0.0.1:3306)/test')")
	pgDSN := fs.String("postgres", os.Getenv("SHADOWLANE_DRILL_POSTGRES"), "PostgreSQL DSN to use instead of the embedded SQLite (e.g. 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable')")
	duration := fs.Duration("duration", 0, "also run a timed phase of mixed traffic this long (e.g. 60s)")
	rate := fs.Int("rate", 200, "requests per second of the timed phase")
	mixFlag := fs.String("mix", "production=60,loadtest=25,forged=10,env=5", "traffic mix of the timed phase (parts per class)")
	reportDir := fs.String("report", "drill-report", "directory for the HTML report (index.html); '' to skip")
	kafkaSeeds := fs.String("kafka", os.Getenv("SHADOWLANE_DRILL_KAFKA"), "comma-separated Kafka brokers to use instead of the in-process kfake")
	natsURL := fs.String("nats", os.Getenv("SHADOWLANE_DRILL_NATS"), "NATS URL (JetStream enabled) to use instead of the embedded nats-server (e.g. nats://127.0.0.1:4222)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the drill to this file (for diagnosing the drill's own cost)")
	faults := fs.Bool("faults", false, "put a TCP fault proxy in front of every store and broker and kill, blackhole and slow each in turn during the timed phase (default --duration 20s)")
	amqpURL := fs.String("amqp", os.Getenv("SHADOWLANE_DRILL_AMQP"), "RabbitMQ URL for the fulfilment bus (e.g. amqp://guest:guest@127.0.0.1:5672/); without it that bus is left out")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *n <= 0 || *c <= 0 {
		fmt.Fprintln(stderr, "shadowlane drill: --requests and --concurrency must be positive")
		return exitUsage
	}
	if *mysqlDSN != "" && *pgDSN != "" {
		fmt.Fprintln(stderr, "shadowlane drill: give --mysql or --postgres, not both")
		return exitUsage
	}
	if *duration < 0 || (*duration > 0 && *rate <= 0) {
		fmt.Fprintln(stderr, "shadowlane drill: --duration must be >= 0 and --rate positive")
		return exitUsage
	}
	if *faults && *duration == 0 {
		*duration = 20 * time.Second
	}
	mix, err := drill.ParseMix(*mixFlag)
	if err != nil {
		fmt.Fprintln(stderr, "shadowlane drill:", err)
		return exitUsage
	}
	var progress drill.Progress
	if f, ok := stdout.(*os.File); ok && !*asJSON && isTerminal(f) && *duration > 0 {
		progress = func(sent, total int, elapsed time.Duration) {
			const width = 30
			done := width * sent / max(total, 1)
			fmt.Fprintf(f, "\r[%s%s] %d/%d requests %5.1fs ", strings.Repeat("=", done), strings.Repeat(" ", width-done), sent, total, elapsed.Seconds())
			if sent >= total {
				fmt.Fprint(f, "\r\033[K")
			}
		}
	}
	var seeds []string
	for _, s := range strings.Split(*kafkaSeeds, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "shadowlane drill:", err)
			return exitSetup
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "shadowlane drill:", err)
			return exitSetup
		}
		defer pprof.StopCPUProfile()
	}
	notes := stdout // the fault schedule, before the run
	if *asJSON {
		notes = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := drill.Run(ctx, drill.Options{Requests: *n, Concurrency: *c,
		Backends: drill.Backends{Redis: *redisAddr, MySQL: *mysqlDSN, Postgres: *pgDSN, Kafka: seeds, NATS: *natsURL, AMQP: *amqpURL},
		Duration: *duration, Rate: *rate, Mix: mix, Progress: progress, Faults: *faults, Notes: notes})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitSetup
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		rep.Summary(stdout)
	}
	if *reportDir != "" {
		path, err := rep.WriteReportDir(*reportDir)
		if err != nil {
			fmt.Fprintln(stderr, "shadowlane drill: writing the report:", err)
			return exitSetup
		}
		// On stderr with --json, so stdout stays one JSON document.
		out := stdout
		if *asJSON {
			out = stderr
		}
		fmt.Fprintln(out, "report:", path)
	}
	if !rep.OK {
		return exitViolation
	}
	return exitOK
}

// newFlagSet is the flag set of the command name: its errors and -h go to
// stderr, and Parse returns them (the command then exits with exitUsage).
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// configFlag registers --config, the config file, by default
// $SHADOWLANE_CONFIG; usage says what the command reads from it.
func configFlag(fs *flag.FlagSet, usage string) *string {
	return fs.String("config", os.Getenv("SHADOWLANE_CONFIG"), usage)
}

// storesConfigUsage is the --config usage of the commands that act on the
// config's stores.
const storesConfigUsage = "config file whose stores: section names the stores and production targets"

// registerStoreFlags registers --config (with usage configUsage) and the
// database and store flags, which the config's stores section fills (see
// storesFromConfig).
func registerStoreFlags(fs *flag.FlagSet, configUsage string) (*string, *sqlCheckFlags, *storeCheckFlags) {
	cfgFile := configFlag(fs, configUsage)
	return cfgFile, registerSQLCheckFlags(fs), registerStoreCheckFlags(fs)
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", stderr)
	cfgFile, sqlFlags, storeFlags := registerStoreFlags(fs, "config file to check")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *cfgFile == "" {
		fmt.Fprintln(stderr, "shadowlane check: --config is required")
		return exitUsage
	}
	cfg, stores, code := loadConfig(*cfgFile, stderr)
	if code != exitOK {
		return code
	}
	if err := errors.Join(cfg.Validate(), stores.Validate()); err != nil {
		fmt.Fprintf(stdout, "%s: invalid\n", *cfgFile)
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stdout, "  -", line)
		}
		return exitViolation
	}
	fmt.Fprintf(stdout, "%s: valid (service %q, trust %s)\n", *cfgFile, cfg.Service, orDefault(cfg.Trust.Mode, "edge"))
	applyStoresConfig(stores, flagsSet(fs), sqlFlags, storeFlags, os.Getenv)
	// Every check runs; the exit code is the worst: 3 (a store unreachable)
	// over 1 (something missing or different) over 0.
	return worst(checkSQL(sqlFlags, stdout, stderr), checkStores(cfg, stores, storeFlags, stdout, stderr))
}

// loadConfig reads the config file twice over: the runtime's part, as the
// runtime reads it (shadowlane.LoadFile skips the stores section), and the
// stores section, which is this command's.
// On failure it prints the error to stderr and returns the exit code: 3
// (setup) for a missing file, 1 for one that does not read; else exitOK.
func loadConfig(path string, stderr io.Writer) (shadowlane.Config, storecfg.Stores, int) {
	cfg, err := shadowlane.LoadFile(path)
	var st storecfg.Stores
	if err == nil {
		st, err = storecfg.Load(path)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		if errors.Is(err, os.ErrNotExist) {
			return cfg, st, exitSetup
		}
		return cfg, st, exitViolation
	}
	return cfg, st, exitOK
}

// storesFromConfig reads the config file cfgFile, when given, and fills
// the store flags fs left unset from its stores section (see
// applyStoresConfig); with validate, an invalid config or stores section
// is refused. It returns the stores section (zero without a file) and
// exitOK, or the exit code after saying why on stderr.
func storesFromConfig(cfgFile string, validate bool, fs *flag.FlagSet, sq *sqlCheckFlags, f *storeCheckFlags, stderr io.Writer) (storecfg.Stores, int) {
	if cfgFile == "" {
		return storecfg.Stores{}, exitOK
	}
	cfg, stores, code := loadConfig(cfgFile, stderr)
	if code != exitOK {
		return stores, code
	}
	if validate {
		if err := errors.Join(cfg.Validate(), stores.Validate()); err != nil {
			fmt.Fprintf(stderr, "%s: invalid\n%v\n", cfgFile, err)
			return stores, exitViolation
		}
	}
	applyStoresConfig(stores, flagsSet(fs), sq, f, os.Getenv)
	return stores, exitOK
}

// flagsSet returns the names of the flags the command line set.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// applyStoresConfig fills the store flags the command line left unset from
// the config's stores section, with $NAME/${NAME} expanded in DSNs and
// URLs. A database or store given on the command line replaces the
// config's (with its target list, when that is given too).
func applyStoresConfig(st storecfg.Stores, set map[string]bool, sq *sqlCheckFlags, f *storeCheckFlags, getenv func(string) string) {
	expand := func(s string) string { return os.Expand(s, getenv) }
	list := func(flagName string, dst *string, names []string) {
		if !set[flagName] && len(names) > 0 {
			*dst = strings.Join(names, ",")
		}
	}
	if !set["mysql"] && !set["postgres"] && !set["sqlite"] {
		sq.mysql, sq.postgres, sq.sqlite = expand(st.MySQL), expand(st.Postgres), st.SQLite
	}
	list("tables", &sq.tables, st.Tables)
	if !set["redis"] {
		f.redis = expand(st.Redis)
	}
	list("keys", &f.keys, st.Keys)
	list("kafka", &f.kafka, st.Kafka)
	list("topics", &f.topics, st.Topics)
	if !set["amqp"] {
		f.amqp = expand(st.AMQP)
	}
	list("exchanges", &f.exchanges, amqpExchangeNames(st.Exchanges, st.AMQPTopology))
	list("queues", &f.queues, amqpQueueNames(st.Queues, st.AMQPTopology))
	if !set["nats"] {
		f.nats = expand(st.NATS)
	}
	list("streams", &f.streams, st.Streams)
	list("subjects", &f.subjects, st.Subjects)
	list("rocketmq", &f.rocketmq.nameservers, st.RocketMQ.NameServers)
	list("rocketmq-topics", &f.rocketmq.topics, st.RocketMQ.Topics)
	list("rocketmq-groups", &f.rocketmq.groups, st.RocketMQ.Groups)
}

func worst(codes ...int) int {
	out := exitOK
	for _, c := range codes {
		if c == exitSetup || (c == exitViolation && out != exitSetup) || (c == exitUsage && out == exitOK) {
			out = c
		}
	}
	return out
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
