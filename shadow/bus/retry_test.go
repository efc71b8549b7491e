package bus

import (
	"context"
	"errors"
	"testing"
)

func TestRetryAfter(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	calls := 0
	fail := func() error { calls++; return boom }
	if ex, err := (Retry{Attempts: 3}).After(ctx, nil, fail); ex || err != nil || calls != 0 {
		t.Fatalf("After(nil) = %v, %v after %d calls; want false, nil without calling h", ex, err, calls)
	}
	if ex, err := (Retry{Attempts: 1}).After(ctx, boom, fail); ex || err != boom || calls != 0 {
		t.Fatalf("After with 1 attempt = %v, %v after %d calls; want false, boom without calling h", ex, err, calls)
	}
	if ex, err := (Retry{Attempts: 3}).After(ctx, boom, fail); !ex || err != boom || calls != 2 {
		t.Fatalf("After with 3 attempts = %v, %v after %d calls; want true, boom after 2 more attempts", ex, err, calls)
	}
	calls = 0
	if ex, err := (Retry{Attempts: 3}).Do(ctx, fail); !ex || err != boom || calls != 3 {
		t.Fatalf("Do with 3 attempts = %v, %v after %d calls; want true, boom after 3 attempts", ex, err, calls)
	}
	calls = 0
	ok := func() error { calls++; return nil }
	if ex, err := (Retry{Attempts: 3}).After(ctx, boom, ok); ex || err != nil || calls != 1 {
		t.Fatalf("After, then success = %v, %v after %d calls; want false, nil after 1 more attempt", ex, err, calls)
	}
}
