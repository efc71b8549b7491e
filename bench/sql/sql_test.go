package sql

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	slgorm "github.com/shadowlane/shadowlane/adapters/slgorm"
	"github.com/shadowlane/shadowlane/bench/internal/measure"
	sqlitedialect "github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

const q = "SELECT * FROM `orders` WHERE `orders`.`user_id` = ? AND `orders`.`deleted_at` IS NULL ORDER BY `orders`.`id` LIMIT 1"

var mark = propagation.Mark{Run: "bench"}

func BenchmarkRewriteHit(b *testing.B) {
	r, _ := sqlshadow.New(sqlitedialect.New())
	if _, err := r.Rewrite(mark, q); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	measure.GrowStack(8)
	for b.Loop() {
		measure.Op(func() { r.Rewrite(mark, q) })
	}
}

func BenchmarkRewriteCold(b *testing.B) {
	r, _ := sqlshadow.New(sqlitedialect.New(), sqlshadow.WithCacheSize(64))
	qs := make([]string, 4096)
	for i := range qs {
		qs[i] = q + " /* " + strconv.Itoa(i) + " */"
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := r.Rewrite(mark, qs[i%len(qs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGuardUnmarked(b *testing.B) {
	r, _ := sqlshadow.New(sqlitedialect.New())
	ctx := context.Background()
	b.ReportAllocs()
	measure.GrowStack(8)
	for b.Loop() {
		measure.Op(func() { r.Statement(ctx, q) })
	}
}

type Order struct {
	ID     uint
	UserID uint
	Total  int
}

func gormDB(b *testing.B, plugin bool) *gorm.DB {
	path := filepath.Join(b.TempDir(), "bench.db")
	db, err := gorm.Open(sqlite.Open(path), &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if d, err := db.DB(); err == nil {
			d.Close()
		}
	})
	db.Table("orders").AutoMigrate(&Order{})
	db.Table("orders_shadow").AutoMigrate(&Order{})
	if plugin {
		rw, _ := sqlshadow.New(sqlitedialect.New())
		p, err := slgorm.New(rw)
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Use(p); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

func benchGorm(b *testing.B, plugin bool, ctx context.Context, create bool) {
	db := gormDB(b, plugin).WithContext(ctx)
	db.Create(&Order{UserID: 1, Total: 1})
	b.ReportAllocs()
	for b.Loop() {
		if create {
			if err := db.Create(&Order{UserID: 1, Total: 2}).Error; err != nil {
				b.Fatal(err)
			}
		} else {
			var o Order
			if err := db.Where("user_id = ?", 1).First(&o).Error; err != nil {
				b.Fatal(err)
			}
		}
	}
}

var marked = propagation.With(context.Background(), mark)

func BenchmarkGormQuery(b *testing.B) {
	b.Run("no-plugin", func(b *testing.B) { benchGorm(b, false, context.Background(), false) })
	b.Run("plugin-unmarked", func(b *testing.B) { benchGorm(b, true, context.Background(), false) })
	b.Run("plugin-marked", func(b *testing.B) { benchGorm(b, true, marked, false) })
}

func BenchmarkGormCreate(b *testing.B) {
	b.Run("no-plugin", func(b *testing.B) { benchGorm(b, false, context.Background(), true) })
	b.Run("plugin-unmarked", func(b *testing.B) { benchGorm(b, true, context.Background(), true) })
	b.Run("plugin-marked", func(b *testing.B) { benchGorm(b, true, marked, true) })
}
