// Command shop is the zero-code demo: a gin gateway that stores orders in
// SQLite (database/sql), carts in Redis (go-redis) and asks a pricing
// service (net/http, in the same process) over plain http.Get. It holds no
// shadowlane code: built with `orchestrion go build`, every entry and exit
// is wired by the aspects of github.com/shadowlane/shadowlane/wiring (see
// ../orchestrion.tool.go).
//
// Routes (package internal/shopapp, shared with ../handwired): POST
// /order?user=&sku= asks pricing, stores the order and the cart; POST
// /leak?user=&sku= stores an order with a context it dropped on purpose
// (the lost-mark scenario).
//
// Environment: ZC_ADDR (gateway, default 127.0.0.1:8080), ZC_PRICING_ADDR
// (default 127.0.0.1:8081), ZC_DB (SQLite file), ZC_REDIS (default
// 127.0.0.1:6379), ZC_NS (Redis key namespace), and SHADOWLANE_* /
// SHADOWLANE_CONFIG for shadowlane.
package main

import (
	"database/sql"
	"log"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite"

	"example.com/zerocode/internal/shopapp"
)

func main() {
	env := shopapp.Env
	addr := env("ZC_ADDR", "127.0.0.1:8080")
	pricingAddr := env("ZC_PRICING_ADDR", "127.0.0.1:8081")
	ns := env("ZC_NS", "zc:")
	db, err := sql.Open("sqlite", env("ZC_DB", "shop.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	rdb := redis.NewClient(&redis.Options{Addr: env("ZC_REDIS", "127.0.0.1:6379")})
	defer rdb.Close()

	go func() { log.Fatal(http.ListenAndServe(pricingAddr, shopapp.Pricing(rdb, ns))) }()

	r := gin.New()
	shopapp.Routes(r, db, rdb, http.DefaultClient, pricingAddr, ns)
	log.Fatal(r.Run(addr))
}
