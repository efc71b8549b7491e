package goredis

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
// rdb.AddHook(goredis.NewHook(...)) to a *redis.Client, *redis.ClusterClient
// or *redis.Ring (for a cluster, to the ClusterClient itself, so that slots
// are computed from the shadow keys), or use [Instrument].
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
// reported by [Hook.Err] and makes every marked command fail with
// [shadow.ErrNoShadowTarget]; it never lets them through.
func NewHook(opts ...Option) *Hook {
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
	return h
}

// Err reports a configuration problem (nil when the hook can shadow).
func (h *Hook) Err() error { return h.err }

// Instrument adds a new hook configured by opts to rdb (a *redis.Client,
// *redis.ClusterClient or *redis.Ring) and returns it. On a Ring it also
// guards the shard clients, present and future, against
// (*redis.Ring).Publish, which skips the ring's hooks; call it right after
// redis.NewRing. In instance mode it notes whether the shadow client is on
// another server (see the pub/sub section of the package doc).
func Instrument(rdb redis.UniversalClient, opts ...Option) *Hook {
	h := NewHook(opts...)
	h.ownChannels = h.instance && otherServer(rdb, h.client)
	rdb.AddHook(h)
	if ring, ok := rdb.(*redis.Ring); ok {
		guardRing(ring, h) // ring.go: Ring.Publish skips the ring's hooks
	}
	return h
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
	return h.processMarked(ctx, propagation.FromContext(ctx), cmd, next)
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
				return fmt.Errorf("shadowlane: redis: bounding the TTL of a shadow key: %w", err)
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

// ProcessPipelineHook implements redis.Hook, for pipelines and MULTI/EXEC
// transactions. A marked pipeline is shadowed as a whole: when one command
// cannot be shadowed, none runs.
func (h *Hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		m := propagation.FromContext(ctx)
		if m.Run == "" {
			if !h.guard {
				return next(ctx, cmds)
			}
			filter := false
			for _, c := range cmds {
				reply, err := h.rw.Guard(c.Args())
				if err != nil {
					return h.refuseAll(cmds, c, err, m, shadow.Guard)
				}
				filter = filter || reply != rediskeys.ReplyNone
			}
			err := next(ctx, cmds)
			if filter {
				for _, c := range cmds {
					h.filterProduction(c)
				}
			}
			return err
		}
		if ctx.Value(redirectedKey{}) != nil || allSetup(cmds) {
			return next(ctx, cmds)
		}
		return h.pipelineMarked(ctx, m, cmds, next)
	}
}

func (h *Hook) pipelineMarked(ctx context.Context, m propagation.Mark, cmds []redis.Cmder, next redis.ProcessPipelineHook) error {
	results := make([]rediskeys.Result, len(cmds))
	restore := func(n int) {
		for i := 0; i < n; i++ {
			results[i].Restore(cmds[i].Args())
		}
	}
	wire := append(make([]redis.Cmder, 0, len(cmds)+2), cmds...)
	var written []any
	for i, c := range cmds {
		res, err := h.check(c.Args())
		if err == nil && res.Append != nil {
			var sub redis.Cmder
			if sub, err = substitute(ctx, c, res.Append); err == nil {
				wire[i] = sub
			}
			if err != nil {
				res.Restore(c.Args())
			}
		}
		if err != nil {
			restore(i)
			return h.refuseAll(cmds, c, err, m, shadow.Block)
		}
		results[i] = res
		written = append(written, h.written(c.Args(), &results[i])...)
	}
	dec := h.decisions()
	for i := range cmds {
		dec.Record(m.Run, Store, results[i].Command.Name, shadow.Redirect)
	}
	if len(written) > 0 {
		tx := isTx(wire)
		var exec redis.Cmder
		if tx {
			exec, wire = wire[len(wire)-1], wire[:len(wire)-1]
		}
		for _, k := range written {
			wire = append(wire, h.ttlCmd(ctx, k))
		}
		if tx {
			wire = append(wire, exec)
		}
	}
	var err error
	if h.instance {
		err = h.execShadow(context.WithValue(ctx, redirectedKey{}, true), wire)
	} else {
		err = next(ctx, wire)
	}
	for i, c := range cmds {
		if wire[i] != c {
			copyBack(wire[i], c)
		}
	}
	restore(len(cmds))
	for i, c := range cmds {
		h.restoreReply(c, results[i].Reply)
	}
	return err
}

func allSetup(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if !rediskeys.ConnectionSetup(c.Args()) {
			return false
		}
	}
	return len(cmds) > 0
}

func isTx(cmds []redis.Cmder) bool {
	return len(cmds) >= 2 && cmds[0].Name() == "multi" && cmds[len(cmds)-1].Name() == "exec"
}

// execShadow runs a pipeline (or MULTI/EXEC transaction) on the shadow
// client, as one pipeline, so marked commands never mix with production
// ones.
func (h *Hook) execShadow(ctx context.Context, cmds []redis.Cmder) error {
	var p redis.Pipeliner
	if isTx(cmds) {
		p = h.client.TxPipeline()
		cmds = cmds[1 : len(cmds)-1]
	} else {
		p = h.client.Pipeline()
	}
	for _, c := range cmds {
		_ = p.Process(ctx, c)
	}
	_, err := p.Exec(ctx)
	return err
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

func (h *Hook) refuseAll(cmds []redis.Cmder, bad redis.Cmder, err error, m propagation.Mark, d shadow.Decision) error {
	err = h.refuse(bad, err, m, d)
	for _, c := range cmds {
		if c != bad {
			c.SetErr(err)
		}
	}
	return err
}

// substitute builds a command of the same type as cmd with extra arguments
// at the end (SCAN's MATCH, PUBSUB CHANNELS' pattern).
func substitute(ctx context.Context, cmd redis.Cmder, extra []any) (redis.Cmder, error) {
	args := append(append(make([]any, 0, len(cmd.Args())+len(extra)), cmd.Args()...), extra...)
	switch cmd.(type) {
	case *redis.ScanCmd:
		return redis.NewScanCmd(ctx, nil, args...), nil
	case *redis.StringSliceCmd:
		return redis.NewStringSliceCmd(ctx, args...), nil
	case *redis.Cmd:
		return redis.NewCmd(ctx, args...), nil
	}
	return nil, &shadow.Error{Store: Store, Target: rediskeys.CommandName(cmd.Args()), Rule: fmt.Sprintf("cannot add a shadow pattern to a %T", cmd), Err: shadow.ErrUnsupported}
}

func copyBack(from, to redis.Cmder) {
	switch f := from.(type) {
	case *redis.ScanCmd:
		keys, cursor := f.Val()
		to.(*redis.ScanCmd).SetVal(keys, cursor)
	case *redis.StringSliceCmd:
		to.(*redis.StringSliceCmd).SetVal(f.Val())
	case *redis.Cmd:
		to.(*redis.Cmd).SetVal(f.Val())
	}
	to.SetErr(from.Err())
}

// restoreReply gives a marked command's reply the application's own names.
func (h *Hook) restoreReply(cmd redis.Cmder, reply rediskeys.Reply) {
	if reply == rediskeys.ReplyNone || !h.rw.Renames() || cmd.Err() != nil {
		return
	}
	prod := func(s string) string { p, _ := h.rw.ProductionName(s); return p }
	switch reply {
	case rediskeys.ReplyNameList:
		switch c := cmd.(type) {
		case *redis.StringSliceCmd:
			c.SetVal(mapNames(c.Val(), prod, nil))
		case *redis.Cmd:
			c.SetVal(mapAny(c.Val(), prod))
		}
	case rediskeys.ReplyScan:
		switch c := cmd.(type) {
		case *redis.ScanCmd:
			keys, cursor := c.Val()
			c.SetVal(mapNames(keys, prod, nil), cursor)
		case *redis.Cmd:
			if v, ok := c.Val().([]any); ok && len(v) == 2 {
				c.SetVal([]any{v[0], mapAny(v[1], prod)})
			}
		}
	case rediskeys.ReplyName:
		switch c := cmd.(type) {
		case *redis.StringCmd:
			c.SetVal(prod(c.Val()))
		case *redis.Cmd:
			if s, ok := c.Val().(string); ok {
				c.SetVal(prod(s))
			}
		}
	case rediskeys.ReplyFirstName:
		switch c := cmd.(type) {
		case *redis.StringSliceCmd:
			if v := c.Val(); len(v) > 0 {
				v[0] = prod(v[0])
			}
		case *redis.ZWithKeyCmd:
			if v := c.Val(); v != nil {
				v.Key = prod(v.Key)
			}
		case *redis.KeyValuesCmd:
			k, v := c.Val()
			c.SetVal(prod(k), v)
		case *redis.ZSliceWithKeyCmd:
			k, v := c.Val()
			c.SetVal(prod(k), v)
		case *redis.Cmd:
			if v, ok := c.Val().([]any); ok && len(v) > 0 {
				if s, ok := v[0].(string); ok {
					v[0] = prod(s)
				}
			}
		}
	case rediskeys.ReplyStreams:
		switch c := cmd.(type) {
		case *redis.XStreamSliceCmd:
			v := c.Val()
			for i := range v {
				v[i].Stream = prod(v[i].Stream)
			}
		case *redis.Cmd:
			switch v := c.Val().(type) {
			case []any:
				for _, e := range v {
					if pair, ok := e.([]any); ok && len(pair) > 0 {
						if s, ok := pair[0].(string); ok {
							pair[0] = prod(s)
						}
					}
				}
			case map[any]any:
				out := make(map[any]any, len(v))
				for k, e := range v {
					if s, ok := k.(string); ok {
						k = prod(s)
					}
					out[k] = e
				}
				c.SetVal(out)
			}
		}
	case rediskeys.ReplyNameCounts:
		switch c := cmd.(type) {
		case *redis.MapStringIntCmd:
			v := c.Val()
			out := make(map[string]int64, len(v))
			for k, n := range v {
				out[prod(k)] = n
			}
			c.SetVal(out)
		case *redis.Cmd:
			if v, ok := c.Val().([]any); ok {
				for i := 0; i < len(v); i += 2 {
					if s, ok := v[i].(string); ok {
						v[i] = prod(s)
					}
				}
			}
		}
	}
}

// filterProduction removes shadow names from the reply of a production
// KEYS, SCAN or PUBSUB CHANNELS (typed commands and rdb.Do alike), and
// counts them (decision "filter", target the command). A SCAN page may
// then hold fewer names than COUNT, or none, with a cursor that is not 0:
// callers already loop until the cursor is 0.
func (h *Hook) filterProduction(cmd redis.Cmder) {
	if cmd.Err() != nil {
		return
	}
	removed := 0
	keep := func(s string) bool {
		if h.rw.Naming.IsShadow(s) {
			removed++
			return false
		}
		return true
	}
	name := rediskeys.CommandName(cmd.Args())
	switch name {
	case "KEYS", "SCAN", "PUBSUB CHANNELS", "PUBSUB SHARDCHANNELS":
	default:
		return
	}
	switch c := cmd.(type) {
	case *redis.StringSliceCmd:
		if name != "SCAN" {
			c.SetVal(mapNames(c.Val(), nil, keep))
		}
	case *redis.ScanCmd:
		if name == "SCAN" {
			keys, cursor := c.Val()
			c.SetVal(mapNames(keys, nil, keep), cursor)
		}
	case *redis.Cmd:
		switch v := c.Val().(type) {
		case []any:
			if name != "SCAN" {
				c.SetVal(filterAny(v, keep))
			} else if len(v) == 2 {
				if page, ok := v[1].([]any); ok {
					c.SetVal([]any{v[0], filterAny(page, keep)})
				}
			}
		}
	}
	if removed > 0 {
		h.decisions().Add("", Store, name, "", shadow.Filter, int64(removed))
	}
}

// filterAny returns the elements of list that are not strings keep
// refuses.
func filterAny(list []any, keep func(string) bool) []any {
	out := list[:0:0]
	for _, e := range list {
		if s, ok := e.(string); ok && !keep(s) {
			continue
		}
		out = append(out, e)
	}
	return out
}

func mapNames(in []string, f func(string) string, keep func(string) bool) []string {
	out := in[:0:0]
	for _, s := range in {
		if keep != nil && !keep(s) {
			continue
		}
		if f != nil {
			s = f(s)
		}
		out = append(out, s)
	}
	return out
}

func mapAny(v any, f func(string) string) any {
	list, ok := v.([]any)
	if !ok {
		return v
	}
	out := make([]any, len(list))
	for i, e := range list {
		if s, ok := e.(string); ok {
			e = f(s)
		}
		out[i] = e
	}
	return out
}
