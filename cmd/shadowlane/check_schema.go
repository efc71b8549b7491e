package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"

	"github.com/shadowlane/shadowlane/shadow"
)

// checkSchemaFindings reports what `shadowlane shadow create` would still
// do for tables: a twin that shares a sequence with production, missing
// twins (with the exact DDL), missing foreign keys and indexes, foreign keys
// and views of the twin pointing at production, and triggers missing on
// the twin (with DDL to review). It returns exitViolation when there is
// anything to report.
func checkSchemaFindings(ctx context.Context, driver string, db *sql.DB, tables []string, naming shadow.Naming, stdout io.Writer) int {
	plan, ok := planners[driver]
	if !ok {
		return exitOK
	}
	p, err := plan(ctx, db, tables, naming)
	if err != nil {
		fmt.Fprintf(stdout, "  schema: not inspected: %v\n", err)
		return exitViolation
	}
	if len(p.Actions) == 0 && len(p.Reviews) == 0 {
		return exitOK
	}
	fmt.Fprintln(stdout, "  schema findings (`shadowlane shadow create` applies the DDL below; REVIEW items are yours to write):")
	indent := func(stmts []string, prefix string) {
		for _, s := range stmts {
			for _, line := range strings.Split(strings.TrimRight(s, ";\n "), "\n") {
				fmt.Fprintf(stdout, "        %s%s\n", prefix, line)
			}
			fmt.Fprintf(stdout, "        %s;\n", prefix)
		}
	}
	for _, a := range p.Actions {
		fmt.Fprintf(stdout, "    - %s: %s\n", a.Object, a.Why)
		indent(a.SQL, "")
	}
	for _, r := range p.Reviews {
		fmt.Fprintf(stdout, "    - REVIEW %s: %s\n", r.Object, r.Why)
		indent(r.SQL, "-- ")
	}
	return exitViolation
}
