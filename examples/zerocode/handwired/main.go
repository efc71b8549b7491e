// Command handwired is ../shop wired by hand: the same gin gateway,
// database/sql orders on SQLite, go-redis carts and plain-HTTP pricing
// service, with the shadowlane calls written out (Init, slgin.Middleware,
// slsql.OpenDB with the SQLite dialect, slredis.Instrument,
// middleware.Handler and middleware.Client). Built with plain `go build`,
// it is the reference the Orchestrion-built shop is measured against
// (overhead_test.go), and the list of what the aspects write for you.
//
// Environment: as ../shop.
package main

import (
	"database/sql"
	"log"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slgin"
	"github.com/shadowlane/shadowlane/adapters/slredis"
	"github.com/shadowlane/shadowlane/adapters/slsql"
	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"

	"example.com/zerocode/internal/shopapp"
)

func main() {
	env := shopapp.Env
	rt, err := shadowlane.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	addr := env("ZC_ADDR", "127.0.0.1:8080")
	pricingAddr := env("ZC_PRICING_ADDR", "127.0.0.1:8081")
	ns := env("ZC_NS", "zc:")
	dsn := env("ZC_DB", "shop.db")

	raw, err := sql.Open("sqlite", dsn) // for its driver only
	if err != nil {
		log.Fatal(err)
	}
	conn, err := slsql.DSNConnector(raw.Driver(), dsn)
	if err != nil {
		log.Fatal(err)
	}
	raw.Close()
	rw, err := sqlshadow.New(sqlite.New())
	if err != nil {
		log.Fatal(err)
	}
	db := slsql.OpenDB(conn, rw)
	defer db.Close()
	rdb := redis.NewClient(&redis.Options{Addr: env("ZC_REDIS", "127.0.0.1:6379")})
	defer rdb.Close()
	if _, err := slredis.Instrument(rdb); err != nil {
		log.Fatal(err)
	}
	client := middleware.Client(nil)

	go func() {
		log.Fatal(http.ListenAndServe(pricingAddr, middleware.Handler(shopapp.Pricing(rdb, ns), middleware.WithName("http"))))
	}()

	r := gin.New()
	r.Use(slgin.Middleware())
	shopapp.Routes(r, db, rdb, client, pricingAddr, ns)
	log.Fatal(r.Run(addr))
}
