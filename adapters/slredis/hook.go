package slredis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/rediskeys"
)

// Store is the store name of every [shadow.Error] the hook returns.
const Store = rediskeys.Store

// Hook is a go-redis hook that shadows load-test commands. Add it with
// [Instrument], or rdb.AddHook with a hook from [NewHook], to a *redis.Client, *redis.ClusterClient
// or *redis.Ring (for a cluster, to the ClusterClient itself, so that slots
// are computed from the shadow keys).
type Hook struct {
	rw       rediskeys.Rewriter
	client   redis.UniversalClient // instance mode
	instance bool
	guard    bool
	maxTTL   time.Duration
	rt       *shadowlane.Runtime // nil: the default runtime
	err      error               // configuration problem: marked commands fail closed
	// ownChannels: in instance mode without naming, the shadow client is
	// known to be another server (Instrument compared the two clients),
	// so publishing under production channel names there reaches no
	// production subscriber.
	ownChannels bool
}

var _ redis.Hook = (*Hook)(nil)

// NewHook returns a hook configured by opts. Without options it renames
// marked keys with [shadow.DefaultKey]. A configuration it cannot use is
// refused with a [*shadow.Error] wrapping [shadow.ErrNoShadowTarget].
func NewHook(opts ...Option) (*Hook, error) {
	var c config
	for _, o := range opts {
		o.apply(&c)
	}
	h := &Hook{maxTTL: c.maxTTL, rt: c.rt}
	h.rw.StrictScripts = c.strict
	switch {
	case c.clientSet:
		h.instance, h.rw.Dedicated = true, true
		h.client = c.client
		if c.client == nil {
			h.err = errors.New("WithShadowClient(nil)")
		}
	case !c.namingSet:
		c.naming, c.namingSet = shadow.DefaultKey, true
	}
	if c.namingSet {
		if err := c.naming.Validate(); err != nil {
			h.err = err
		} else {
			h.rw.Naming = c.naming
		}
	}
	if c.maxTTL < 0 {
		h.err = fmt.Errorf("WithMaxTTL(%v): negative", c.maxTTL)
	}
	h.guard = !c.guardOff && h.rw.Renames()
	if h.err != nil {
		return nil, &shadow.Error{Store: Store, Target: "hook", Rule: "slredis: hook misconfigured: " + h.err.Error(), Err: shadow.ErrNoShadowTarget}
	}
	return h, nil
}

// Instrument adds a new hook configured by opts to rdb (a *redis.Client,
// *redis.ClusterClient or *redis.Ring) and returns it. On a Ring it also
// guards the shard clients, present and future, against
// (*redis.Ring).Publish, which skips the ring's hooks; call it right after
// redis.NewRing. In instance mode it notes whether the shadow client is on
// another server (see the pub/sub section of the package doc).
func Instrument(rdb redis.UniversalClient, opts ...Option) (*Hook, error) {
	h, err := NewHook(opts...)
	if err != nil {
		return nil, err
	}
	h.ownChannels = h.instance && otherServer(rdb, h.client)
	rdb.AddHook(h)
	if ring, ok := rdb.(*redis.Ring); ok {
		guardRing(ring, h) // ring.go: Ring.Publish skips the ring's hooks
	}
	return h, nil
}

// otherServer reports whether shadow is known to be a different Redis
// server from prod (two plain clients with different addresses).
func otherServer(prod, shadow redis.UniversalClient) bool {
	a, ok := prod.(*redis.Client)
	b, ok2 := shadow.(*redis.Client)
	if !ok || !ok2 || a == b {
		return false
	}
	oa, ob := a.Options(), b.Options()
	return oa.Network != ob.Network || oa.Addr != ob.Addr
}

// ShadowDB returns a new client with rdb's options but database db, for
// instance mode on the same server: WithShadowClient(ShadowDB(rdb, 1)).
// The caller closes it.
func ShadowDB(rdb *redis.Client, db int) *redis.Client {
	opt := *rdb.Options()
	opt.DB = db
	return redis.NewClient(&opt)
}

// Name returns the name marked work must use for name: the shadow name
// for a marked ctx, name itself otherwise. It fails closed when the hook
// has no naming. To follow pub/sub channels use [Hook.Subscribe] (and
// PSubscribe, SSubscribe), which subscribes to production channels and
// their shadow twins and marks load-test messages.
func (h *Hook) Name(ctx context.Context, name string) (string, error) {
	m := propagation.FromContext(ctx)
	if m.Run == "" {
		return name, nil
	}
	if h.err != nil || !h.rw.Renames() {
		return "", &shadow.Error{Store: Store, Target: name, Rule: "no shadow key naming configured", Mark: m, Err: shadow.ErrNoShadowTarget}
	}
	return h.rw.Naming.Shadow(name), nil
}

// DialHook implements redis.Hook (it does nothing).
func (h *Hook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(ctx, network, addr)
	}
}

type redirectedKey struct{}

// ProcessHook implements redis.Hook.
//
// The unmarked path is the hot one (production traffic): it reads the
// mark, runs the guard's scan and calls next, keeping nothing alive across
// calls; everything else is in separate functions.
func (h *Hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if propagation.FromContext(ctx).Run != "" {
			return h.processMarkedEntry(ctx, cmd, next)
		}
		rt := h.rt // lost-mark guard (lostmark.go, testData:), its no-testData check inlined
		if rt == nil {
			rt = shadowlane.Default()
		}
		if td := rt.TestData(); td != nil {
			if err := h.lostMarkCheck(rt, td, cmd); err != nil {
				return err
			}
		}
		if !h.guard {
			return next(ctx, cmd)
		}
		reply, err := h.rw.Guard(cmd.Args())
		if err == nil && reply == rediskeys.ReplyNone {
			return next(ctx, cmd)
		}
		return h.processGuarded(ctx, cmd, next, reply, err)
	}
}

// processGuarded finishes an unmarked command the guard refused, or whose
// reply may list shadow names.
func (h *Hook) processGuarded(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook, reply rediskeys.Reply, err error) error {
	if err != nil {
		return h.refuse(cmd, err, propagation.FromContext(ctx), shadow.Guard)
	}
	err = next(ctx, cmd)
	if reply != rediskeys.ReplyNone {
		h.filterProduction(cmd)
	}
	return err
}

func (h *Hook) processMarkedEntry(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
	if ctx.Value(redirectedKey{}) != nil || rediskeys.ConnectionSetup(cmd.Args()) {
		// Already shadowed by the hook of the production client, or
		// go-redis setting up the connection it runs on (it sends HELLO,
		// AUTH, SELECT, CLIENT SETNAME... through hooks, with the context
		// of the command that needed a new connection).
		return next(ctx, cmd)
	}
	m := propagation.FromContext(ctx)
	err := h.processMarked(ctx, m, cmd, next)
	if err != nil {
		h.countErr(m.Run, err)
	}
	return err
}

// countErr counts an error a marked command met in the run's evidence
// (see [ErrorReason]). Not counted: redis.Nil (an answer: the key does
// not exist) and the hook's own refusals (*shadow.Error: counted as
// decisions).
func (h *Hook) countErr(run string, err error) {
	var se *shadow.Error
	if err == nil || errors.Is(err, redis.Nil) || errors.As(err, &se) {
		return
	}
	h.decisions().RunError(run, ErrorReason(err))
}

// ErrorReason is the reason the hook counts an error of a marked command
// under in the run's evidence: "redis timeout", "redis canceled", "redis
// closed" ([shadow.ErrorClass], redis.ErrClosed), "redis pool timeout",
// "redis tx failed" (a WATCHed key changed), "redis <PREFIX>" for an
// error reply whose first word is an upper-case code ("redis WRONGTYPE",
// "redis ERR", "redis OOM"), else "redis error". Its cardinality is
// bounded by the server's error codes.
func ErrorReason(err error) string {
	switch {
	case errors.Is(err, redis.ErrPoolTimeout):
		return "redis pool timeout"
	case errors.Is(err, redis.ErrClosed):
		return "redis closed"
	case errors.Is(err, redis.TxFailedErr):
		return "redis tx failed"
	}
	if c := shadow.ErrorClass(err); c != "" {
		return "redis " + c
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		n := 0
		for n < len(msg) && n <= 16 && msg[n] >= 'A' && msg[n] <= 'Z' {
			n++
		}
		if n > 0 && n <= 16 && (n == len(msg) || msg[n] == ' ') {
			return "redis " + msg[:n]
		}
	}
	return "redis error"
}

func (h *Hook) check(args []any) (rediskeys.Result, error) {
	if h.err != nil {
		return rediskeys.Result{}, &shadow.Error{Store: Store, Target: rediskeys.CommandName(args), Rule: "hook misconfigured: " + h.err.Error(), Err: shadow.ErrNoShadowTarget}
	}
	res, err := h.rw.Rewrite(args)
	if err != nil {
		return res, err
	}
	if res.Command.Scripts() && shadowlane.OrDefault(h.rt).Config().Redis.RefusesScripts() {
		res.Restore(args)
		return rediskeys.Result{}, &shadow.Error{Store: Store, Target: res.Command.Name, Rule: "redis.scripts: refuse (a script may touch keys it does not declare)", Err: shadow.ErrBlocked}
	}
	switch res.Command.Name {
	case "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE":
		// Sent as a command (rdb.Do), it would leave a pooled connection
		// subscribed, its replies out of step with the commands that
		// use it next.
		res.Restore(args)
		return rediskeys.Result{}, &shadow.Error{Store: Store, Target: res.Command.Name, Rule: "pub/sub subscriptions do not go through the command path; use Hook.Subscribe, PSubscribe or SSubscribe", Err: shadow.ErrUnsupported}
	}
	if h.instance && !h.rw.Renames() && !h.ownChannels && (res.Command.Name == "PUBLISH" || res.Command.Name == "SPUBLISH") {
		// Pub/sub channels belong to the server, not to a database: on a
		// shadow database of the production server (ShadowDB) a message
		// under the production channel name reaches production
		// subscribers. Unless Instrument saw the shadow client on another
		// server, this fails closed.
		res.Restore(args)
		return rediskeys.Result{}, &shadow.Error{Store: Store, Target: res.Command.Name, Rule: "instance mode without key naming: pub/sub channels are server-wide, and the shadow client is not known to be another server (a shadow database would publish to production subscribers); add WithKeyNaming, or use Instrument with a shadow client on another server", Err: shadow.ErrNoShadowTarget}
	}
	if h.instance && (res.Command.Name == "WATCH") {
		res.Restore(args)
		return rediskeys.Result{}, &shadow.Error{Store: Store, Target: "WATCH", Rule: "WATCH cannot move to the shadow instance with the transaction; call Watch on the shadow client", Err: shadow.ErrUnsupported}
	}
	return res, nil
}

func (h *Hook) processMarked(ctx context.Context, m propagation.Mark, cmd redis.Cmder, next redis.ProcessHook) error {
	args := cmd.Args()
	res, err := h.check(args)
	if err != nil {
		return h.refuse(cmd, err, m, shadow.Block)
	}
	run := cmd
	if res.Append != nil {
		if run, err = substitute(ctx, cmd, res.Append); err != nil {
			res.Restore(args)
			return h.refuse(cmd, err, m, shadow.Block)
		}
	}
	written := h.written(args, &res)
	h.decisions().Record(m.Run, Store, res.Command.Name, shadow.Redirect)
	if h.instance {
		err = h.client.Process(context.WithValue(ctx, redirectedKey{}, true), run)
	} else {
		err = next(ctx, run)
	}
	if run != cmd {
		copyBack(run, cmd)
	}
	res.Restore(args)
	h.restoreReply(cmd, res.Reply)
	if err == nil && len(written) > 0 {
		for _, k := range written {
			ttl := h.ttlCmd(ctx, k)
			if h.instance {
				err = h.client.Process(context.WithValue(ctx, redirectedKey{}, true), ttl)
			} else {
				err = next(ctx, ttl)
			}
			if err != nil {
				return fmt.Errorf("slredis: bounding the TTL of a shadow key: %w", err)
			}
		}
	}
	return err
}

func (h *Hook) written(args []any, res *rediskeys.Result) []any {
	if h.maxTTL <= 0 {
		return nil
	}
	var out []any
	for k := 0; k < res.NumKeys(); k++ {
		if p := res.Key(k); p.Flags.Writes() && p.Flags&rediskeys.KeyNotKey == 0 {
			out = append(out, args[p.Index])
		}
	}
	return out
}

func (h *Hook) ttlCmd(ctx context.Context, key any) *redis.IntCmd {
	ms := h.maxTTL.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return redis.NewIntCmd(ctx, "pexpire", key, ms, "lt")
}

// decisions is the series of the hook's runtime (its decisions and, per
// run, its evidence).
func (h *Hook) decisions() *shadow.Series { return shadowlane.OrDefault(h.rt).Decisions() }

func (h *Hook) refuse(cmd redis.Cmder, err error, m propagation.Mark, d shadow.Decision) error {
	var se *shadow.Error
	if errors.As(err, &se) {
		se.Mark = m
	}
	h.decisions().Record(m.Run, Store, rediskeys.CommandName(cmd.Args()), d)
	cmd.SetErr(err)
	return err
}
