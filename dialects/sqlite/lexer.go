package sqlite

import (
	"fmt"
	"strings"

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
}

// upper returns the keyword spelling of a bare identifier, "" otherwise.
func (t token) kw() string {
	if t.kind != tIdent || t.quote != 0 {
		return ""
	}
	return strings.ToUpper(t.val)
}

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
			toks = append(toks, token{kind: k, start: i, end: j, val: val, quote: c})
			i = j
		case c == '[':
			j := strings.IndexByte(s[i+1:], ']')
			if j < 0 {
				return nil, parseErr("unterminated [identifier]")
			}
			toks = append(toks, token{kind: tIdent, start: i, end: i + j + 2, val: s[i+1 : i+1+j], quote: '['})
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
			toks = append(toks, token{kind: tIdent, start: i, end: j, val: s[i:j]})
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
