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
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"

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
)

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func main() {
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

	// pricing: a plain net/http service; it remembers who asked in Redis.
	mux := http.NewServeMux()
	mux.HandleFunc("/price", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if err := rdb.Set(r.Context(), ns+"priced:"+user, "1", 0).Err(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "42")
	})
	go func() {
		log.Fatal(http.ListenAndServe(pricingAddr, middleware.Handler(mux, middleware.WithName("http"))))
	}()

	r := gin.New()
	r.Use(slgin.Middleware())
	r.POST("/order", func(c *gin.Context) {
		ctx := c.Request.Context()
		user, sku := c.Query("user"), c.Query("sku")
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+pricingAddr+"/price?user="+user, nil)
		resp, err := client.Do(req)
		if err != nil {
			c.String(http.StatusBadGateway, err.Error())
			return
		}
		price, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if _, err := db.ExecContext(ctx, "INSERT INTO orders (user_id, sku, price) VALUES (?, ?, ?)", user, sku, string(price)); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		if err := rdb.Set(ctx, ns+"cart:"+user, sku, 0).Err(); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.String(http.StatusOK, "ok")
	})
	r.POST("/leak", func(c *gin.Context) {
		ctx := context.Background() //lostctx:ok the lost-mark scenario drops the request's context on purpose
		if _, err := db.ExecContext(ctx, "INSERT INTO orders (user_id, sku, price) VALUES (?, ?, ?)", c.Query("user"), c.Query("sku"), "0"); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.String(http.StatusOK, "ok")
	})
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	log.Fatal(r.Run(addr))
}
