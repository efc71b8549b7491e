package main

import (
	"flag"
	"io"
)

// sqlCheckFlags are the database flags of `shadowlane check` (shadow tables
// and schema drift). Filled in by the SQL check work.
type sqlCheckFlags struct{}

func registerSQLCheckFlags(fs *flag.FlagSet) *sqlCheckFlags { return &sqlCheckFlags{} }

// checkSQL connects to the configured databases and reports, per table,
// whether its shadow twin exists and matches. It returns an exit code.
func checkSQL(f *sqlCheckFlags, stdout, stderr io.Writer) int { return exitOK }
