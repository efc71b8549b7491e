// Command shop is the zero-code demo: a gin gateway that stores orders in
// SQLite (database/sql), carts in Redis (go-redis) and asks a pricing
// service (net/http, in the same process) over plain http.Get. It holds no
// shadowlane code: built with `orchestrion go build`, every entry and exit
// is wired by the aspects of github.com/shadowlane/shadowlane/wiring (see
// ../orchestrion.tool.go).
//
// Routes: POST /order?user=&sku= asks pricing, stores the order and the
// cart; POST /leak?user=&sku= stores an order with a context it dropped on
// purpose (the lost-mark scenario: a load-test datum written without its
// mark, which the lost-mark guard refuses when testData is configured).
//
// Environment: ZC_ADDR (gateway, default 127.0.0.1:8080), ZC_PRICING_ADDR
// (default 127.0.0.1:8081), ZC_DB (SQLite file), ZC_REDIS (default
// 127.0.0.1:6379), ZC_NS (Redis key namespace), and SHADOWLANE_* /
// SHADOWLANE_CONFIG for shadowlane.
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
)

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func main() {
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
	go func() { log.Fatal(http.ListenAndServe(pricingAddr, mux)) }()

	r := gin.New()
	r.POST("/order", func(c *gin.Context) {
		ctx := c.Request.Context()
		user, sku := c.Query("user"), c.Query("sku")
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+pricingAddr+"/price?user="+user, nil)
		resp, err := http.DefaultClient.Do(req)
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
		// A handler that lost its context: the order is written as
		// production work whatever the request was.
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
