package postgres_test

import (
	"fmt"

	"github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

func Example() {
	d := postgres.New()
	res, err := d.Rewrite(
		"WITH recent AS (SELECT id FROM public.orders WHERE at > $1) UPDATE items SET done = true FROM recent WHERE items.oid = recent.id RETURNING items.id",
		func(t sqlshadow.Table, write bool) (string, error) { return t.Name + "_shadow", nil },
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.SQL)
	fmt.Println(res.Kind, res.Tables)
	// Output:
	// WITH recent AS (SELECT id FROM public.orders_shadow WHERE at > $1) UPDATE items_shadow SET done = true FROM recent WHERE items_shadow.oid = recent.id RETURNING items_shadow.id
	// write [{public.orders false} {items true}]
}

func Example_refused() {
	d := postgres.New()
	res, _ := d.Rewrite("TRUNCATE orders", nil)
	fmt.Println(res.Kind)
	_, err := d.Rewrite("DELETE FROM orders; DROP TABLE orders", nil)
	fmt.Println(err)
	// Output:
	// ddl
	// sql statement not understood: postgres: want exactly one statement, got 2
}
