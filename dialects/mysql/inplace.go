package mysql

import "strings"

// The in-place rewrite: for a statement written in plain lexical terms the
// renamed names are written over the identifier tokens they replace, and
// everything else of the text is kept as written. No second parse is
// needed to verify the result; why it is sound:
//
//  1. The text is lexed by simpleIdents under rules narrow enough that
//     MySQL's, MariaDB's and TiDB's lexers all read it the same way
//     (identifiers, backquoted identifiers, '...' strings without
//     backslashes, numbers, placeholders and punctuation). Anything else
//     (comments, of which executable ones run as code; "..."; backslashes;
//     @variables; non-ASCII; $; digits running into letters) takes the
//     general path: restore the renamed tree and re-parse it.
//  2. Every rename site of the tree (a table reference, a DELETE or FOR
//     UPDATE OF list entry, a column or * qualifier) came from one
//     identifier token spelled exactly as the site's old name. For each
//     old name some site renames, every site of that name must get the
//     same new name, and the text must hold exactly as many identifier
//     tokens of that spelling as there are sites; then the sites are those
//     tokens, every one of them. Any other token of that spelling (an
//     alias, a column, a CTE name, a keyword) makes the counts differ, and
//     the general path is taken.
//  3. Every token of a renamed spelling is rewritten, as a backquoted
//     identifier: an identifier token stays an identifier token, so the
//     grammar reduces the new text exactly as the old one, and its tree is
//     the renamed tree. Its analysis is therefore the analysis of the
//     renamed tree, computed by walking it again (Result.Verified) and
//     checked like a re-parse would be. FuzzRewrite asserts that it equals
//     the analysis of a fresh parse of the output.

// ident is one identifier token: text[start:end] in the statement, val its
// name (the text without backquotes).
type ident struct {
	start, end int
	val        string
}

// Byte classes of the plain lexical rules.
const (
	cBad   = iota // anything not plain: " # @ $ \ { } [ ] control bytes, non-ASCII
	cSpace        // space, tab, newline, carriage return
	cIdent        // letters and _
	cDigit
	cPunct // ? = < > ! | & ^ ~ + * % ( ) , ; :
	cBack  // `
	cQuote // '
	cMinus
	cSlash
	cDot
)

var byteClass = func() (t [256]uint8) {
	for _, c := range " \t\n\r" {
		t[c] = cSpace
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-32] = cIdent, cIdent
	}
	t['_'] = cIdent
	for c := '0'; c <= '9'; c++ {
		t[c] = cDigit
	}
	for _, c := range "?=<>!|&^~+*%(),;:" {
		t[c] = cPunct
	}
	t['`'], t['\''], t['-'], t['/'], t['.'] = cBack, cQuote, cMinus, cSlash, cDot
	return t
}()

// identByte holds the bytes that continue a plain unquoted identifier.
var identByte = func() (t [256]bool) {
	for c := range t {
		t[c] = byteClass[c] == cIdent || byteClass[c] == cDigit
	}
	return t
}()

// simpleIdents returns the identifier tokens of q, and false when q holds
// anything outside the plain lexical rules of the in-place rewrite, or the
// word RETURNING (unquoted).
func simpleIdents(q string, buf []ident) ([]ident, bool) {
	out := buf[:0]
	n := len(q)
	for i := 0; i < n; {
		if q[i] == ' ' {
			i++
			continue
		}
		switch byteClass[q[i]] {
		case cSpace, cPunct:
			i++
		case cIdent:
			j := i + 1
			for j < n && identByte[q[j]] {
				j++
			}
			if j < n && (q[j] == '$' || q[j] >= 0x80) {
				return nil, false
			}
			if j-i == 9 && strings.EqualFold(q[i:j], "returning") {
				// A RETURNING clause is set aside before the parse.
				return nil, false
			}
			out = append(out, ident{i, j, q[i:j]})
			i = j
		case cDigit:
			j := i + 1
			for j < n && byteClass[q[j]] == cDigit {
				j++
			}
			if j+1 < n && q[j] == '.' && byteClass[q[j+1]] == cDigit {
				for j++; j < n && byteClass[q[j]] == cDigit; j++ {
				}
			}
			if j < n && (byteClass[q[j]] == cIdent || byteClass[q[j]] == cDigit || q[j] == '$' || q[j] >= 0x80 || q[j] == '.') {
				// 1e5, 0x1f, 2abc (an identifier), 1.e5: not plain
				return nil, false
			}
			i = j
		case cBack:
			k := strings.IndexByte(q[i+1:], '`')
			if k <= 0 {
				return nil, false // unterminated or empty
			}
			j := i + 1 + k
			if j+1 < n && q[j+1] == '`' {
				return nil, false // a doubled backquote inside
			}
			for p := i + 1; p < j; p++ {
				if q[p] < 0x20 || q[p] >= 0x80 {
					return nil, false
				}
			}
			out = append(out, ident{i, j + 1, q[i+1 : j]})
			i = j + 1
		case cQuote:
			j := i + 1
			for {
				k := strings.IndexByte(q[j:], '\'')
				if k < 0 {
					return nil, false // unterminated
				}
				if strings.IndexByte(q[j:j+k], '\\') >= 0 {
					return nil, false
				}
				j += k
				if j+1 < n && q[j+1] == '\'' {
					j += 2
					continue
				}
				break
			}
			i = j + 1
		case cMinus:
			if i+1 < n && q[i+1] == '-' {
				return nil, false // a comment, or two minus signs
			}
			i++
		case cSlash:
			if i+1 < n && q[i+1] == '*' {
				return nil, false // a comment, maybe executable
			}
			i++
		case cDot:
			// After a name and a dot, TiDB reads digits as a name (t.5,
			// t. 5); before them, .5 is a number: neither is plain.
			j := i + 1
			for j < n && byteClass[q[j]] == cSpace {
				j++
			}
			if j < n && byteClass[q[j]] == cDigit {
				return nil, false
			}
			i++
		default:
			return nil, false
		}
	}
	return out, true
}

// site is one name of the tree that the rename may change: old is the
// name as parsed, new what rename made of it (old when unchanged).
type site struct{ old, new string }

// inPlace writes the renames of a.sites over the identifier tokens of
// query (step 2 and 3 above). It returns false when the sites and the
// tokens do not match one to one, and the caller takes the general path.
//
// fresh reports that the renaming is an alpha-renaming: no identifier of
// query equals a renamed name in another letter case, and no identifier
// and no other new name equals a new name in any letter case. Every
// comparison of names the analysis makes (all of them in lower case, or
// exact) then comes out the same on the renamed tree, so its analysis is
// the analysis of query with the names replaced. FuzzRewrite checks that
// too.
func (a *analysis) inPlace(query string, toks []ident) (out string, fresh, ok bool) {
	type group struct {
		old, new   string
		sites      int
		toks       int
		renamed    bool
		conflicted bool
		// oldKey, newKey: length and first byte with the case bit set,
		// which settle most token comparisons without a string compare
		oldKey, newKey int
	}
	var gbuf [8]group
	gs := gbuf[:0]
	for _, s := range a.sites {
		k := -1
		for i := range gs {
			if gs[i].old == s.old {
				k = i
				break
			}
		}
		if k < 0 {
			gs = append(gs, group{old: s.old, new: s.new})
			k = len(gs) - 1
		}
		g := &gs[k]
		g.sites++
		if s.new != g.new {
			g.conflicted = true
		}
		if s.new != s.old {
			g.renamed = true
		}
	}
	// keep the renamed groups only
	r := gs[:0]
	for _, g := range gs {
		if g.renamed {
			if g.conflicted {
				return "", false, false
			}
			r = append(r, g)
		}
	}
	if len(r) == 0 {
		return query, true, true
	}
	fresh = true
	for i := range r {
		var or byte
		for k := 0; k < len(r[i].new); k++ {
			or |= r[i].new[k]
		}
		if or >= 0x80 {
			// Unicode folding may equate names of other lengths: the
			// length test below would not hold.
			fresh = false
		}
		r[i].oldKey, r[i].newKey = foldKey(r[i].old), foldKey(r[i].new)
		for j := i + 1; j < len(r); j++ {
			if strings.EqualFold(r[i].old, r[j].old) || strings.EqualFold(r[i].new, r[j].new) {
				fresh = false
			}
		}
	}
	// match[i] is 1 + the group of token i (0: not renamed)
	var mbuf [64]uint8
	var match []uint8
	if len(toks) <= len(mbuf) && len(r) < 255 {
		match = mbuf[:len(toks)]
	} else {
		match = make([]uint8, len(toks))
		if len(r) >= 255 {
			return "", false, false
		}
	}
	grow := 0
	for ti := range toks {
		t := &toks[ti]
		tk := foldKey(t.val)
		for i := range r {
			g := &r[i]
			if g.oldKey == tk {
				if g.old == t.val {
					g.toks++
					match[ti] = uint8(i + 1)
					grow += len(g.new) + 2 - (t.end - t.start)
					continue
				}
				if strings.EqualFold(g.old, t.val) {
					fresh = false
				}
			}
			if g.newKey == tk && strings.EqualFold(g.new, t.val) {
				fresh = false
			}
		}
	}
	for i := range r {
		if r[i].toks != r[i].sites {
			return "", false, false
		}
	}
	var sb strings.Builder
	sb.Grow(len(query) + grow + 8)
	last := 0
	for ti := range toks {
		if match[ti] == 0 {
			continue
		}
		t := &toks[ti]
		g := &r[match[ti]-1]
		sb.WriteString(query[last:t.start])
		if t.start > 0 && query[t.start-1] == '`' {
			// `x`orders: the new `orders_shadow` would join `x` into
			// one name (a doubled backquote); a space keeps them apart.
			sb.WriteByte(' ')
		}
		sb.WriteByte('`')
		if strings.IndexByte(g.new, '`') >= 0 {
			sb.WriteString(strings.ReplaceAll(g.new, "`", "``"))
		} else {
			sb.WriteString(g.new)
		}
		sb.WriteByte('`')
		if t.end < len(query) && query[t.end] == '`' {
			sb.WriteByte(' ')
		}
		last = t.end
	}
	sb.WriteString(query[last:])
	return sb.String(), fresh, true
}

// foldKey is the length of a name and its first byte with the ASCII case
// bit set: names that are equal ignoring ASCII case have the same key.
func foldKey(s string) int {
	if s == "" {
		return 0
	}
	return len(s)<<8 | int(s[0]|0x20)
}
