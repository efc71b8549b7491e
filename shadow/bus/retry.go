package bus

import (
	"context"
	"fmt"
	"time"
)

// Retry is the bounded retry of a consumer whose handler failed, the same
// on every bus that retries in place: up to Attempts attempts in all,
// waiting Backoff before the second and twice as long before each next
// one, at most MaxBackoff (0: no cap). The zero Retry tries once.
type Retry struct {
	Attempts            int
	Backoff, MaxBackoff time.Duration
}

// Validate reports a Retry that cannot be used (wrapping [ErrConfig]).
func (r Retry) Validate() error {
	if r.Attempts < 0 || r.Backoff < 0 || r.MaxBackoff < 0 || (r.MaxBackoff > 0 && r.MaxBackoff < r.Backoff) {
		return fmt.Errorf("%w: retry attempts %d, backoff %s, max %s: want attempts >= 0 and 0 <= backoff <= max (or max 0)", ErrConfig, r.Attempts, r.Backoff, r.MaxBackoff)
	}
	return nil
}

// Do runs h until it returns nil or the attempts are spent. It returns
// nil, or h's last error with exhausted true when every attempt failed
// (the message then goes to the refusal path), or the cause of ctx when
// ctx ended before the next attempt (exhausted false: the message is not
// settled).
func (r Retry) Do(ctx context.Context, h func() error) (exhausted bool, err error) {
	return r.After(ctx, h(), h)
}

// After is [Retry.Do] after its first attempt, which returned err (nil:
// it returns at once): a consume loop calls its handler directly and
// After only when that failed, so that a message handled at the first
// attempt costs no call and no closure.
func (r Retry) After(ctx context.Context, err error, h func() error) (exhausted bool, _ error) {
	if err == nil || r.Attempts <= 1 {
		return false, err
	}
	wait := r.Backoff
	for n := 2; n <= r.Attempts; n++ {
		if ctx.Err() != nil {
			return false, context.Cause(ctx)
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return false, context.Cause(ctx)
			case <-t.C:
			}
			if wait *= 2; r.MaxBackoff > 0 && wait > r.MaxBackoff {
				wait = r.MaxBackoff
			}
		}
		if ctx.Err() != nil {
			return false, context.Cause(ctx)
		}
		if err = h(); err == nil {
			return false, nil
		}
	}
	return true, err
}

// Final reports whether a handler's error err after [Retry.Do] is its
// final failure on the message: every attempt failed (exhausted), or its
// only attempt failed while ctx, the consumer's, is still live (the error
// is not the consumer ending).
func Final(ctx context.Context, exhausted bool, err error) bool {
	return err != nil && (exhausted || ctx.Err() == nil)
}
