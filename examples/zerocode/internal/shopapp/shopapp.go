package shopapp

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
)

// Env returns the environment variable k, or def when it is empty.
func Env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Pricing is the pricing service (plain net/http): it remembers who asked
// in Redis (ns+"priced:"+user) and answers 42.
func Pricing(rdb *redis.Client, ns string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/price", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if err := rdb.Set(r.Context(), ns+"priced:"+user, "1", 0).Err(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "42")
	})
	return mux
}

// Routes adds the gateway's routes to r: POST /order?user=&sku= asks
// pricing (at pricingAddr, through client), stores the order in db and the
// cart in rdb (ns+"cart:"+user); POST /leak?user=&sku= stores an order
// with a context it dropped on purpose (the lost-mark scenario: a
// load-test datum written without its mark, which the lost-mark guard
// refuses when testData is configured); GET /healthz.
func Routes(r *gin.Engine, db *sql.DB, rdb *redis.Client, client *http.Client, pricingAddr, ns string) {
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
}
