package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slredis"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// lostMark is the lost-mark scenario (issue 14): a cart handler that drops
// its context on purpose (it writes Redis with context.Background()), run
// twice on the drill's Redis: once on a runtime without `testData:` and
// once on one whose testData names the load-test users ("ltu-" ids). The
// same marked requests (load-test users) and unmarked ones (production
// users) go to both. Read back with a plain client:
//   - without the guard the leak is real: every load-test cart lands on a
//     production key;
//   - with it, none does, every catch is counted at the redis exit and
//     answered with the lost-mark refusal; production carts land in both.
func lostMark(ctx context.Context, st *stores, run string, n int, rep *Report, add func(string, int, int, string)) {
	ns := "lostmark:" + run + ":" + randHex(4) + ":"
	raw := st.rraw
	defer func() {
		if keys, _ := scanAll(ctx, raw, ns+"*"); len(keys) > 0 {
			raw.Del(ctx, keys...)
		}
		if keys, _ := scanAll(ctx, raw, "shadow:"+ns+"*"); len(keys) > 0 {
			raw.Del(ctx, keys...)
		}
	}()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, guarded := range []bool{false, true} {
		side := "unguarded"
		cfg := shadowlane.Config{Service: "cart-" + side, Trust: shadowlane.TrustConfig{Mode: "internal"}}
		if guarded {
			side = "guarded"
			cfg.Service = "cart-" + side
			cfg.TestData = shadowlane.TestDataConfig{Prefixes: []string{"ltu-"}}
		}
		rt, err := shadowlane.New(cfg, shadowlane.WithoutConfigFile(), shadowlane.WithLogger(quiet))
		if err != nil {
			add("lost-mark: "+side+" runtime starts", 0, 1, err.Error())
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: raw.Options().Addr})
		slredis.Instrument(rdb, slredis.WithRuntime(rt))
		h := middleware.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user := r.URL.Query().Get("user")
			// The mistake under test: the request's context (and its mark)
			// is dropped; shadowlane-vet flags it, the guard catches it.
			err := rdb.Set(context.Background(), ns+side+":cart:"+user, "sku-1", 0).Err() //lostctx:ok the drill drops the context on purpose
			switch {
			case errors.Is(err, shadow.ErrLostMark):
				http.Error(w, err.Error(), http.StatusConflict)
			case err != nil:
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		}), middleware.WithRuntime(rt), middleware.Internal())
		srv := httptest.NewServer(h)
		statuses := map[int]int{}
		for i := 0; i < n; i++ {
			for _, marked := range []bool{true, false} {
				user := "p-" + strconv.Itoa(i)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
				if marked {
					user = "ltu-" + strconv.Itoa(i)
					req.Header.Set(propagation.DefaultNames.RunHeader, run)
				}
				req.URL.RawQuery = "user=" + user
				code := 0
				if resp, err := http.DefaultClient.Do(req); err == nil { //lostctx:ok req carries ctx
					resp.Body.Close()
					code = resp.StatusCode
				}
				statuses[code]++
			}
		}
		srv.Close()
		rdb.Close()
		leaked, _ := scanAll(ctx, raw, ns+side+":cart:ltu-*")
		prod, _ := scanAll(ctx, raw, ns+side+":cart:p-*")
		sc := map[string]int{}
		for c, k := range statuses {
			sc[strconv.Itoa(c)] = k
		}
		rep.Scenarios = append(rep.Scenarios, Scenario{Name: "lostmark-" + side, Sent: 2 * n, Statuses: sc})
		if guarded {
			add("lost-mark: with testData, no load-test cart of the context-dropping handler reaches production", 0, len(leaked), "plain read of "+ns+"guarded:cart:ltu-*")
			add("lost-mark: the guard counted every catch at the redis exit", n, int(rt.Stats().LostMarks["redis"]), fmt.Sprint(rt.Stats().LostMarks))
			add("lost-mark: the guarded handler answered every load-test request with the refusal (409)", n, statuses[http.StatusConflict], fmt.Sprint(statuses))
			add("lost-mark: production carts pass the guard", n, len(prod), "")
		} else {
			add("lost-mark: without the guard the leak is real (load-test carts on production keys)", n, len(leaked), "plain read of "+ns+"unguarded:cart:ltu-*")
			add("lost-mark: production carts without the guard", n, len(prod), "")
		}
		rt.Close()
	}
}
