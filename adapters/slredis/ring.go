package slredis

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// (*redis.Ring).Publish picks the shard by channel and calls the
// shard client directly, past the ring's hooks: a marked publish would go
// out under the production channel name. Instrument therefore adds
// ringShardGuard to every shard client of a Ring (those alive now and
// those the ring creates later): it lets through what the ring's hook
// already handled (a marked publish renamed to a shadow channel, an
// unmarked one to a production channel) and refuses the rest.
type ringShardGuard struct{ h *Hook }

func guardRing(ring *redis.Ring, h *Hook) {
	g := ringShardGuard{h}
	ring.OnNewNode(func(c *redis.Client) { c.AddHook(g) })
	ring.ForEachShard(context.Background(), func(_ context.Context, c *redis.Client) error {
		c.AddHook(g)
		return nil
	})
}

func (g ringShardGuard) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g ringShardGuard) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (g ringShardGuard) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := g.check(ctx, cmd); err != nil {
			return err
		}
		return next(ctx, cmd)
	}
}

func (g ringShardGuard) check(ctx context.Context, cmd redis.Cmder) error {
	args := cmd.Args()
	if len(args) < 2 {
		return nil
	}
	name, _ := args[0].(string)
	if (len(name) != 7 || !strings.EqualFold(name, "publish")) && (len(name) != 8 || !strings.EqualFold(name, "spublish")) {
		return nil // every other command on a shard passes at the cost of a length check
	}
	ch, isString := args[1].(string)
	h := g.h
	shadowCh := isString && h.rw.Renames() && h.rw.Naming.IsShadow(ch)
	m := propagation.FromContext(ctx)
	switch {
	case m.Run != "" && !shadowCh:
		return h.refuse(cmd, &shadow.Error{Store: Store, Target: strings.ToUpper(name), Rule: "(*redis.Ring).Publish bypasses the ring's hooks; publish with rdb.Do(ctx, \"publish\", channel, message) on a Ring", Err: shadow.ErrUnsupported}, m, shadow.Block)
	case m.Run == "" && shadowCh && h.guard:
		return h.refuse(cmd, &shadow.Error{Store: Store, Target: strings.ToUpper(name), Rule: "production publish to a shadow channel", Err: shadow.ErrShadowFromProduction}, m, shadow.Guard)
	}
	return nil
}
