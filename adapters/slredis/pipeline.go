package slredis

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/rediskeys"
)

// ProcessPipelineHook implements redis.Hook, for pipelines and MULTI/EXEC
// transactions. A marked pipeline is shadowed as a whole: when one command
// cannot be shadowed, none runs.
func (h *Hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		m := propagation.FromContext(ctx)
		if m.Run == "" {
			for _, c := range cmds { // lostmark.go (testData:): none runs when one carries load-test data
				if err := h.lostMark(ctx, c); err != nil {
					for _, o := range cmds {
						o.SetErr(err)
					}
					return err
				}
			}
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
		err := h.pipelineMarked(ctx, m, cmds, next)
		for _, c := range cmds { // each failed command once, as the caller sees it
			if e := c.Err(); e != nil {
				h.countErr(m.Run, e)
			}
		}
		return err
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

func (h *Hook) refuseAll(cmds []redis.Cmder, bad redis.Cmder, err error, m propagation.Mark, d shadow.Decision) error {
	err = h.refuse(bad, err, m, d)
	for _, c := range cmds {
		if c != bad {
			c.SetErr(err)
		}
	}
	return err
}
