package main

import (
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/shadow"
)

// FuzzDDLTokens: the SQLite DDL tokenizer loses nothing (its tokens join
// back to the input), the rename never panics and, when it succeeds,
// names the shadow object; the create guard never panics.
func FuzzDDLTokens(f *testing.F) {
	for _, s := range []string{
		`CREATE TABLE "ord" (id INTEGER PRIMARY KEY, cust INTEGER REFERENCES [cust](id), note TEXT DEFAULT 'a''b')`,
		"CREATE UNIQUE INDEX IF NOT EXISTS ix ON ord (a) WHERE a > 0 -- c",
		"CREATE TRIGGER t AFTER INSERT ON `o` BEGIN UPDATE o SET n = n + 1; END",
		`ALTER SEQUENCE "s_shadow" OWNED BY "o_shadow"."id"`,
		`SELECT setval('"public"."s_shadow"', 1)`,
		"CREATE /* x */ TABLE \"unterminated",
		"[",
	} {
		f.Add(s)
	}
	n := shadow.DefaultTable
	f.Fuzz(func(t *testing.T, s string) {
		var b strings.Builder
		for _, tok := range ddlTokens(s) {
			if tok.text == "" {
				t.Fatalf("empty token in %q", s)
			}
			b.WriteString(tok.text)
		}
		if b.String() != s {
			t.Fatalf("tokens do not join back to %q: %q", s, b.String())
		}
		if out, err := sqliteRenameDDL(s, n, nil); err == nil && !strings.Contains(out, "_shadow") {
			t.Fatalf("rename of %q names no shadow object: %q", s, out)
		}
		_ = assertShadowDDL(s, n)
	})
}
