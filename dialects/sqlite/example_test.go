package sqlite_test

import (
	"fmt"

	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// Every table reference is renamed; the alias and the CTE name are not.
func Example() {
	d := sqlite.New()
	res, err := d.Rewrite(
		"WITH recent AS (SELECT * FROM orders WHERE ts > ?) SELECT o.id, s.qty FROM recent o JOIN stock s ON s.sku = o.sku",
		func(t sqlshadow.Table, write bool) (string, error) { return t.Name + "_shadow", nil })
	if err != nil {
		panic(err)
	}
	fmt.Println(res.SQL)
	fmt.Println(res.Kind)
	for _, u := range res.Tables {
		fmt.Println(u.Table, u.Write)
	}
	// Output:
	// WITH recent AS (SELECT * FROM orders_shadow WHERE ts > ?) SELECT o.id, s.qty FROM recent o JOIN stock_shadow s ON s.sku = o.sku
	// read
	// orders false
	// stock false
}
