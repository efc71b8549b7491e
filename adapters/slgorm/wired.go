package slgorm

import (
	"fmt"

	"gorm.io/gorm"

	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// WiredOpen takes gorm.Open's results and, when it succeeded, registers a
// table-mode [Plugin] with the dialect registered for the dialector's name
// ([sqlshadow.RegisterDialect]): what Orchestrion's zero-code wiring puts
// around gorm.Open (see orchestrion.yml). Without a registered dialect the
// plugin refuses every marked statement (unknown means blocked) and
// production statements run unchanged.
func WiredOpen(db *gorm.DB, err error) (*gorm.DB, error) {
	if err != nil || db == nil {
		return db, err
	}
	name := db.Dialector.Name()
	var rw *sqlshadow.Rewriter
	if d := sqlshadow.DialectFor(name); d != nil {
		rw, err = sqlshadow.New(d)
		if err != nil {
			return nil, err
		}
	} else {
		rw, _ = sqlshadow.New(refuseDialect{name}, sqlshadow.WithoutGuard())
	}
	p, err := New(rw)
	if err != nil {
		return nil, fmt.Errorf("shadowlane zero-code wiring of gorm.Open: %w", err)
	}
	if err := db.Use(p); err != nil {
		return nil, fmt.Errorf("shadowlane zero-code wiring of gorm.Open: %w", err)
	}
	return db, nil
}

// refuseDialect is the dialect of a database without a registered one: it
// understands nothing, so every marked statement is refused.
type refuseDialect struct{ name string }

func (d refuseDialect) Name() string { return d.name }

func (d refuseDialect) Rewrite(string, sqlshadow.RenameFunc) (sqlshadow.Result, error) {
	return sqlshadow.Result{}, fmt.Errorf("%w: no SQL dialect registered for gorm dialector %q (blank-import its dialect module in orchestrion.tool.go, or wire gorm by hand)", sqlshadow.ErrParse, d.name)
}
