package sqlite

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

type tokKind uint8

// punctKinds are the kinds of the one-character punctuation tokens; 0 for
// any other byte.
var punctKinds = [256]tokKind{'(': tLParen, ')': tRParen, ',': tComma, '.': tDot, ';': tSemi}

const (
	tEOF    tokKind = iota
	tIdent          // bare or quoted identifier (bare ones may be keywords)
	tString         // '...'
	tNumber         // numeric literal, blob literal
	tParam          // ?, ?NNN, :name, @name, $name
	tOp             // operators and punctuation other than the ones below
	tLParen
	tRParen
	tComma
	tDot
	tSemi
)

type token struct {
	kind       tokKind
	start, end int    // byte offsets in the statement
	val        string // identifier: the name without quotes; op: the operator text
	quote      byte   // identifier quote: 0 (bare), '"', '`' or '['
	word       uint8  // bare identifier: index in keywordList of the keyword it spells (0: none)
	wide       bool   // identifier: val has a non-ASCII byte
}

// kw returns the keyword a bare identifier spells (upper case), ""
// otherwise; the lexer looks it up once per token.
func (t token) kw() string { return keywordList[t.word] }

func parseErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", sqlshadow.ErrParse, fmt.Sprintf(format, args...))
}

// lex splits s into tokens following SQLite's tokenizer rules (comments
// and white space dropped).
func lex(s string) ([]token, error) {
	toks := make([]token, 0, 32)
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				return nil, parseErr("unterminated comment")
			}
			i += j + 4
		case c == '\'' || c == '"' || c == '`':
			j, val, err := quoted(s, i, c)
			if err != nil {
				return nil, err
			}
			k := tIdent
			if c == '\'' {
				k = tString
			}
			toks = append(toks, token{kind: k, start: i, end: j, val: val, quote: c, wide: k == tIdent && !isASCII(val)})
			i = j
		case c == '[':
			j := strings.IndexByte(s[i+1:], ']')
			if j < 0 {
				return nil, parseErr("unterminated [identifier]")
			}
			val := s[i+1 : i+1+j]
			toks = append(toks, token{kind: tIdent, start: i, end: i + j + 2, val: val, quote: '[', wide: !isASCII(val)})
			i += j + 2
		case (c == 'x' || c == 'X') && i+1 < len(s) && s[i+1] == '\'':
			j, _, err := quoted(s, i+1, '\'')
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tNumber, start: i, end: j})
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			word, wide := keyword(s[i:j])
			toks = append(toks, token{kind: tIdent, start: i, end: j, val: s[i:j], word: word, wide: wide})
			i = j
		case isDigit(c) || (c == '.' && i+1 < len(s) && isDigit(s[i+1])):
			j := i
			for j < len(s) && (isIdentChar(s[j]) || s[j] == '.' ||
				((s[j] == '+' || s[j] == '-') && (s[j-1] == 'e' || s[j-1] == 'E') && !strings.HasPrefix(strings.ToLower(s[i:j]), "0x"))) {
				j++
			}
			toks = append(toks, token{kind: tNumber, start: i, end: j})
			i = j
		case c == '?':
			j := i + 1
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			toks = append(toks, token{kind: tParam, start: i, end: j})
			i = j
		case c == ':' || c == '@' || c == '$':
			j := i + 1
			for j < len(s) && (isIdentChar(s[j]) || s[j] == ':') {
				j++
			}
			if j == i+1 {
				return nil, parseErr("lone %q", c)
			}
			toks = append(toks, token{kind: tParam, start: i, end: j})
			i = j
		case punctKinds[c] != 0:
			toks = append(toks, token{kind: punctKinds[c], start: i, end: i + 1})
			i++
		default:
			n := opLen(s[i:])
			if n == 0 {
				return nil, parseErr("unexpected character %q at %d", c, i)
			}
			toks = append(toks, token{kind: tOp, start: i, end: i + n, val: s[i : i+n]})
			i += n
		}
	}
	toks = append(toks, token{kind: tEOF, start: len(s), end: len(s)})
	return toks, nil
}

func quoted(s string, i int, q byte) (end int, val string, err error) {
	var b strings.Builder
	j := i + 1
	for {
		k := strings.IndexByte(s[j:], q)
		if k < 0 {
			return 0, "", parseErr("unterminated quoted text")
		}
		b.WriteString(s[j : j+k])
		j += k + 1
		if j < len(s) && s[j] == q {
			b.WriteByte(q)
			j++
			continue
		}
		return j, b.String(), nil
	}
}

var ops = []string{"||", "->>", "->", "<<", ">>", "<=", ">=", "==", "!=", "<>", "=", "<", ">", "+", "-", "*", "/", "%", "&", "|", "~"}

func opLen(s string) int {
	for _, o := range ops {
		if strings.HasPrefix(s, o) {
			return len(o)
		}
	}
	return 0
}

func isIdentStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || c >= 0x80
}

func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// keywordList are SQLite's keywords (https://sqlite.org/lang_keywords.html),
// after "" (no keyword): a new name equal to one of them is written quoted.
var keywordList = append([]string{""}, strings.Fields(`ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH
	AUTOINCREMENT BEFORE BEGIN BETWEEN BY CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT
	CONSTRAINT CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP DATABASE DEFAULT
	DEFERRABLE DEFERRED DELETE DESC DETACH DISTINCT DO DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE
	EXCLUSIVE EXISTS EXPLAIN FAIL FILTER FIRST FOLLOWING FOR FOREIGN FROM FULL GENERATED GLOB GROUP
	GROUPS HAVING IF IGNORE IMMEDIATE IN INDEX INDEXED INITIALLY INNER INSERT INSTEAD INTERSECT INTO
	IS ISNULL JOIN KEY LAST LEFT LIKE LIMIT MATCH MATERIALIZED NATURAL NO NOT NOTHING NOTNULL NULL
	NULLS OF OFFSET ON OR ORDER OTHERS OUTER OVER PARTITION PLAN PRAGMA PRECEDING PRIMARY QUERY RAISE
	RANGE RECURSIVE REFERENCES REGEXP REINDEX RELEASE RENAME REPLACE RESTRICT RETURNING RIGHT ROLLBACK
	ROW ROWS SAVEPOINT SELECT SET TABLE TEMP TEMPORARY THEN TIES TO TRANSACTION TRIGGER UNBOUNDED UNION
	UNIQUE UPDATE USING VACUUM VALUES VIEW VIRTUAL WHEN WHERE WINDOW WITH WITHOUT`)...)

// longestKeyword is the length of the longest keyword.
const longestKeyword = len("CURRENT_TIMESTAMP")

// keywords maps each keyword to its index in keywordList; kwFirst[n] and
// kwLast[n] have bit c-'A' set when a keyword of n letters starts,
// respectively ends, with the letter c (most names fail these two tests
// before the map look-up).
var keywords, kwFirst, kwLast = func() (map[string]uint8, [longestKeyword + 1]uint32, [longestKeyword + 1]uint32) {
	m := make(map[string]uint8, len(keywordList))
	var first, last [longestKeyword + 1]uint32
	for i, k := range keywordList[1:] {
		m[k] = uint8(i + 1)
		first[len(k)] |= 1 << (k[0] - 'A')
		last[len(k)] |= 1 << (k[len(k)-1] - 'A')
	}
	return m, first, last
}()

// keyword returns the index in keywordList of the keyword s spells in
// any letter case (s upper-cased as strings.ToUpper does it: ſelect
// spells SELECT), 0 for none, and whether s has a non-ASCII byte.
func keyword(s string) (word uint8, wide bool) {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return keywords[strings.ToUpper(s)], true
		}
	}
	return asciiKeyword(s), false
}

// asciiKeyword is keyword for an ASCII s, upper-cased on the stack after
// the length, first and last letter tests.
func asciiKeyword(s string) uint8 {
	n := len(s)
	if n < 2 || n > longestKeyword {
		return 0
	}
	first, last := s[0]&^0x20, s[n-1]&^0x20 // upper case, for letters
	if first < 'A' || first > 'Z' || last < 'A' || last > 'Z' ||
		kwFirst[n]&(1<<(first-'A')) == 0 || kwLast[n]&(1<<(last-'A')) == 0 {
		return 0
	}
	var b [longestKeyword]byte
	for i := 0; i < n; i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b[i] = c
	}
	return keywords[string(b[:n])]
}

// isKeyword reports whether s spells a keyword (see keyword).
func isKeyword(s string) bool {
	w, _ := keyword(s)
	return w != 0
}
