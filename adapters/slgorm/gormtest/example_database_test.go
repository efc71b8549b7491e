package gormtest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	slgorm "github.com/shadowlane/shadowlane/adapters/slgorm"
	sqlitedialect "github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// Database mode: marked work runs on a separate shadow database, and every
// marked statement is inspected first, so one naming another database is
// refused before it reaches the server.
func Example_newDatabase() {
	dir, _ := os.MkdirTemp("", "slgorm")
	defer os.RemoveAll(dir)
	// One *gorm.Config per gorm.Open: gorm keeps the pool in it.
	db, _ := gorm.Open(sqlite.Open(filepath.Join(dir, "shop.db")), &gorm.Config{Logger: logger.Discard})
	shadowDB, _ := gorm.Open(sqlite.Open(filepath.Join(dir, "shop_shadow.db")), &gorm.Config{Logger: logger.Discard})
	for _, d := range []*gorm.DB{db, shadowDB} {
		d.Exec("CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INT, total INT)")
	}

	rw, err := sqlshadow.New(sqlitedialect.New(), sqlshadow.WithDatabase("main"))
	if err != nil {
		log.Fatal(err)
	}
	plugin, err := slgorm.NewDatabase(shadowDB, rw)
	if err != nil {
		log.Fatal(err)
	}
	if err := db.Use(plugin); err != nil {
		log.Fatal(err)
	}

	loadTest := propagation.With(context.Background(), propagation.Mark{Run: "run-1"})
	db.WithContext(loadTest).Create(&Order{Total: 42}) // -> shop_shadow.db
	db.Create(&Order{Total: 7})                        // -> shop.db
	err = db.WithContext(loadTest).Exec("DELETE FROM prod.orders").Error
	fmt.Println(errors.Is(err, shadow.ErrBlocked))

	var shadowTotal, prodTotal int
	db.Raw("SELECT total FROM orders").Row().Scan(&prodTotal)
	db.WithContext(loadTest).Raw("SELECT total FROM orders").Row().Scan(&shadowTotal)
	fmt.Println(prodTotal, shadowTotal)
	// Output:
	// true
	// 7 42
}
