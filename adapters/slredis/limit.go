package slredis

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/internal/exitlimit"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/shadow/rediskeys"
)

// LimitHook is a go-redis hook that admits every command through a flow
// limiter (package limiter) under the resource "redis:<COMMAND>"
// ("redis:GET", "redis:SET", ...), so rules such as
//
//	limits:
//	  rules:
//	    - {resource: "redis:*", class: loadtest, qps: 500}
//	    - {resource: "redis:GET", breaker: {strategy: error_ratio, threshold: 0.5}}
//
// hold Redis calls to a budget or stop calling a failing server. A refused
// command is not sent: it fails with the *limiter.BlockError
// (errors.Is(err, limiter.ErrBlocked)), set on the command too. Add it
// with rdb.AddHook(slredis.NewLimitHook(slredis.WithRuntime(rt))); it is
// independent of [Hook]
// and may be added before or after it. go-redis's own connection setup
// (HELLO, AUTH, SELECT, CLIENT SETINFO, ...) is never limited.
//
// A pipeline (or transaction) admits each of its commands; if one is
// refused, none is sent and every command fails with that refusal (the
// commands admitted before it still count against their rate budgets: the
// limiter has no way to take an admission back).
type LimitHook struct{ e *exitlimit.Exit }

// WithLimiter makes [NewLimitHook] admit commands through l instead of
// the runtime's limiter (see [WithRuntime]). Hooks built by [NewHook] and
// [Instrument] ignore it.
func WithLimiter(l *limiter.Limiter) Option {
	return optionFunc(func(c *config) { c.limiter = l })
}

// WithFailure decides which command errors count as failures for breakers
// and metrics (default [IsFailure]). Hooks built by [NewHook] and
// [Instrument] ignore it.
func WithFailure(fn func(error) bool) Option {
	return optionFunc(func(c *config) { c.failure = fn })
}

// IsFailure reports whether a command error is a failure of the server or
// the connection: any error but redis.Nil (a missing key), a refusal by a
// limiter, and a context cancelled by the caller.
func IsFailure(err error) bool {
	return err != nil && err != redis.Nil && !errors.Is(err, limiter.ErrBlocked) && !errors.Is(err, context.Canceled)
}

// NewLimitHook returns a hook that admits commands through the limiter of
// the runtime (see [WithRuntime]; rules from its "limits:" config section,
// looked up per command) or through the one given [WithLimiter]. Of the
// other options it uses [WithFailure].
func NewLimitHook(opts ...Option) *LimitHook {
	var c config
	for _, o := range opts {
		o.apply(&c)
	}
	return &LimitHook{exitlimit.New(c.limiter, c.rt, "redis:", maxCommands, strings.ToUpper, c.failure, IsFailure)}
}

var _ redis.Hook = (*LimitHook)(nil)

// maxCommands bounds the resource handles a hook caches: command names
// come from the application (rdb.Do accepts any), so beyond this many
// distinct names the rest share "redis:_other".
const maxCommands = 512

// DialHook implements redis.Hook (it does nothing).
func (h *LimitHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(ctx, network, addr)
	}
}

// ProcessHook implements redis.Hook: it admits the command, sends it, and
// exits with its outcome. An admitted command does not allocate.
func (h *LimitHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if rediskeys.ConnectionSetup(cmd.Args()) {
			return next(ctx, cmd) // go-redis's own connection setup, not the caller's work
		}
		tok, err := h.e.Resource(cmd.Name()).Entry(ctx)
		if err != nil {
			cmd.SetErr(err)
			return err
		}
		err = next(ctx, cmd)
		h.e.Done(tok, err)
		return err
	}
}

// ProcessPipelineHook implements redis.Hook: every command of the pipeline
// is admitted before any is sent.
func (h *LimitHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c := h.e.Names()
		var buf [8]limiter.Token
		toks := buf[:0]
		for _, cmd := range cmds {
			name := cmd.Name()
			if name == "multi" || name == "exec" || rediskeys.ConnectionSetup(cmd.Args()) { // framing, connection setup
				toks = append(toks, limiter.Token{})
				continue
			}
			tok, err := c.Resource(name).Entry(ctx)
			if err != nil {
				for _, t := range toks {
					t.Exit() // admitted but never sent
				}
				for _, cmd := range cmds {
					cmd.SetErr(err)
				}
				return err
			}
			toks = append(toks, tok)
		}
		err := next(ctx, cmds)
		for i, cmd := range cmds {
			e := cmd.Err()
			if e == nil && err != nil && !errors.Is(err, redis.Nil) {
				e = err
			}
			h.e.Done(toks[i], e)
		}
		return err
	}
}
