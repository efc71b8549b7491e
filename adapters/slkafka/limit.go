package slkafka

import (
	"context"
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/internal/exitlimit"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/shadow"
)

// Producing is what a [ProduceLimiter] hands admitted records to: a
// *kgo.Client or a shadowing [*Producer].
type Producing interface {
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
}

var (
	_ Producing = (*kgo.Client)(nil)
	_ Producing = (*Producer)(nil)
)

// ProduceLimiter admits every produced record through a flow limiter
// (package limiter) under the resource "kafka:<topic>", so rules such as
//
//	limits:
//	  rules:
//	    - {resource: "kafka:*", class: loadtest, qps: 200}
//	    - {resource: "kafka:order-events", breaker: {strategy: error_count, threshold: 5}}
//
// hold producers to a budget or stop producing to a failing cluster. A
// refused record is not handed to the client: its promise is called at
// once, on the calling goroutine, with the *limiter.BlockError
// (errors.Is(err, limiter.ErrBlocked)). The resource names the topic the
// record is given with (the production topic when it goes through a
// shadowing [Producer]; "kafka:_default" for an empty topic).
type ProduceLimiter struct{ e *exitlimit.Exit }

// WithLimiter makes [NewProduceLimiter] admit records through l instead
// of the runtime's limiter (see [WithRuntime]). [New] ignores it.
func WithLimiter(l *limiter.Limiter) Option {
	return optionFunc(func(c *config) { c.limiter = l })
}

// WithFailure decides which produce errors count as failures for breakers
// and metrics (default [IsProduceFailure]). [New] ignores it.
func WithFailure(fn func(error) bool) Option {
	return optionFunc(func(c *config) { c.failure = fn })
}

// IsProduceFailure reports whether a produce error is a failure of the
// cluster or the client: any error but a refusal by a limiter or by
// shadowlane's rules (a *shadow.Error) and a context cancelled by the
// caller.
func IsProduceFailure(err error) bool {
	if err == nil || errors.Is(err, limiter.ErrBlocked) || errors.Is(err, context.Canceled) {
		return false
	}
	var se *shadow.Error
	return !errors.As(err, &se)
}

// NewProduceLimiter returns a produce limiter on the limiter of the
// runtime (see [WithRuntime]; rules from its "limits:" config section,
// looked up per record) or on the one given [WithLimiter]. Of the other
// options it uses [WithFailure].
func NewProduceLimiter(opts ...Option) *ProduceLimiter {
	var c config
	for _, o := range opts {
		o.apply(&c)
	}
	return &ProduceLimiter{exitlimit.New(c.limiter, c.rt, "kafka:", maxTopics, defaultTopic, c.failure, IsProduceFailure)}
}

// maxTopics bounds the resource handles a limiter caches; beyond it,
// topics share "kafka:_other".
const maxTopics = 1024

// defaultTopic names the resource of records with no topic (the client's
// default produce topic).
func defaultTopic(topic string) string {
	if topic == "" {
		return "_default"
	}
	return topic
}

// Admit admits one record of r's topic with the traffic class of ctx. On
// success the caller must call Exit or ExitErr on the token once the
// record's produce outcome is known. It does not allocate for a known
// topic; [ProduceLimiter.Produce] wraps it around a produce call.
func (p *ProduceLimiter) Admit(ctx context.Context, r *kgo.Record) (limiter.Token, error) {
	return p.e.Resource(r.Topic).Entry(ctx)
}

// Produce admits r and hands it to to; the admission is exited with the
// record's outcome before promise is called (which may be nil). A refused
// record is not handed to to: promise gets the *limiter.BlockError at once.
func (p *ProduceLimiter) Produce(ctx context.Context, to Producing, r *kgo.Record, promise func(*kgo.Record, error)) {
	tok, err := p.Admit(ctx, r)
	if err != nil {
		if promise != nil {
			promise(r, err)
		}
		return
	}
	to.Produce(ctx, r, func(r *kgo.Record, err error) {
		p.e.Done(tok, err)
		if promise != nil {
			promise(r, err)
		}
	})
}

// ProduceSync produces rs through [ProduceLimiter.Produce] and waits for
// every outcome. Results come in completion order (refused records first,
// as their promises run at once), like kgo.Client.ProduceSync's.
func (p *ProduceLimiter) ProduceSync(ctx context.Context, to Producing, rs ...*kgo.Record) kgo.ProduceResults {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = make(kgo.ProduceResults, 0, len(rs))
	)
	wg.Add(len(rs))
	done := func(r *kgo.Record, err error) {
		mu.Lock()
		out = append(out, kgo.ProduceResult{Record: r, Err: err})
		mu.Unlock()
		wg.Done()
	}
	for _, r := range rs {
		p.Produce(ctx, to, r, done)
	}
	wg.Wait()
	return out
}
