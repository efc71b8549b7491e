package mysql_test

import (
	"fmt"

	"github.com/shadowlane/shadowlane/dialects/mysql"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

func Example() {
	d := mysql.New()
	res, err := d.Rewrite(
		"UPDATE orders o JOIN users ON users.id = o.uid SET o.total = ? WHERE users.name = ?",
		func(t sqlshadow.Table, write bool) (string, error) { return t.Name + "_shadow", nil },
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.SQL)
	fmt.Println(res.Kind, res.Tables)
	// Output:
	// UPDATE `orders_shadow` o JOIN `users_shadow` ON `users_shadow`.id = o.uid SET o.total = ? WHERE `users_shadow`.name = ?
	// write [{orders true} {users false}]
}

func Example_refused() {
	d := mysql.New()
	res, _ := d.Rewrite("DROP TABLE orders", nil)
	fmt.Println(res.Kind)
	_, err := d.Rewrite("DELETE FROM orders; DROP TABLE orders", nil)
	fmt.Println(err)
	// Output:
	// ddl
	// sql statement not understood: mysql: want exactly one statement, got 2
}
