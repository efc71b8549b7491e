package gormtest_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/shadowlane/shadowlane"
	slgorm "github.com/shadowlane/shadowlane/adapters/slgorm"
	sqlitedialect "github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

func Example_new() {
	dir, _ := os.MkdirTemp("", "slgorm")
	defer os.RemoveAll(dir)
	db, _ := gorm.Open(sqlite.Open(filepath.Join(dir, "shop.db")), &gorm.Config{Logger: logger.Discard})
	db.Exec("CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INT, total INT)")
	db.Exec("CREATE TABLE orders_shadow (id INTEGER PRIMARY KEY, user_id INT, total INT)")

	rt, err := shadowlane.Init(shadowlane.WithConfig(shadowlane.Config{Service: "shop"}))
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	rw, err := sqlshadow.New(sqlitedialect.New())
	if err != nil {
		log.Fatal(err)
	}
	plugin, err := slgorm.New(rw, slgorm.WithRuntime(rt))
	if err != nil {
		log.Fatal(err)
	}
	if err := db.Use(plugin); err != nil {
		log.Fatal(err)
	}

	loadTest := propagation.With(context.Background(), propagation.Mark{Run: "run-1"})
	db.WithContext(loadTest).Create(&Order{Total: 42}) // -> orders_shadow
	db.Create(&Order{Total: 7})                        // -> orders

	var shadowTotal, prodTotal int
	db.Raw("SELECT total FROM orders").Row().Scan(&prodTotal)
	db.WithContext(loadTest).Raw("SELECT total FROM orders").Row().Scan(&shadowTotal)
	fmt.Println(prodTotal, shadowTotal)
	// Output: 7 42
}
