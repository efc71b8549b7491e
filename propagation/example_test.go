package propagation_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/shadowlane/shadowlane/propagation"
)

func Example() {
	ctx := propagation.With(context.Background(), propagation.Mark{Run: "run-1", Env: "proj-a"})
	m := propagation.FromContext(ctx)
	fmt.Println(m.LoadTest(), m.Class(), m)

	h := http.Header{}
	propagation.DefaultCodec().Inject(m, "", h)
	fmt.Println(h.Get("X-Shadowlane-Run"), h.Get("Baggage"))
	// Output:
	// true loadtest run=run-1 env=proj-a
	// run-1 shadowlane.run=run-1,shadowlane.env=proj-a
}

func ExampleKeyring() {
	kr, _ := propagation.NewKeyring(propagation.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")})
	exp := time.Unix(1_900_000_000, 0)
	tok, _ := kr.Sign("run-1", "", exp)
	fmt.Println(tok[:23])
	_, err := kr.Verify(tok, propagation.Mark{Run: "run-1"}, exp.Add(-time.Minute))
	fmt.Println(err)
	_, err = kr.Verify(tok, propagation.Mark{Run: "run-2"}, exp.Add(-time.Minute))
	fmt.Println(propagation.TokenReason(err))
	// Output:
	// v1.k1.run-1..1900000000
	// <nil>
	// mismatch
}
