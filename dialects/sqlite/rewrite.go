package sqlite

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// rewrite is RewriteFuncs: it parses query and renames its tables with
// rename and its function calls with funcs.
func rewrite(query string, rename sqlshadow.RenameFunc, funcs sqlshadow.FuncRenameFunc) (sqlshadow.Result, error) {
	toks, err := lex(query)
	if err != nil {
		return sqlshadow.Result{}, err
	}
	if toks[0].kind == tEOF || toks[0].kind == tSemi {
		return sqlshadow.Result{}, parseErr("empty statement")
	}
	p := &parser{s: query, toks: toks}
	kind, err := p.statement()
	if err != nil {
		return sqlshadow.Result{}, err
	}
	if p.peek().kind == tSemi {
		p.next()
	}
	if p.peek().kind != tEOF {
		return sqlshadow.Result{}, p.unexpected("expected end of statement (one statement only)")
	}
	if err := p.resolve(); err != nil {
		return sqlshadow.Result{}, err
	}
	rewriting := (rename != nil || funcs != nil) && kind != sqlshadow.KindDDL
	res := sqlshadow.Result{SQL: query, Kind: kind}
	// uses backs res.Tables and, when rewriting, Verified.Tables (its
	// second half); with few tables, box holds both and Verified: one
	// allocation for the three.
	var box *verifiedBox
	var uses []sqlshadow.Use
	if n := len(p.tables); n > 0 {
		switch {
		case rewriting && 2*n <= len(box.uses):
			box = new(verifiedBox)
			uses = box.uses[:2*n]
		case rewriting:
			uses = make([]sqlshadow.Use, 2*n)
		default:
			uses = make([]sqlshadow.Use, n)
		}
		res.Tables = uses[:0:n]
	}
	// use[i] is the index in res.Tables of p.tables[i]
	var useBuf [16]int
	use := useBuf[:0]
	for _, r := range p.tables {
		u := sqlshadow.Use{Table: r.t, Write: r.write}
		i := slices.Index(res.Tables, u)
		if i < 0 {
			i = len(res.Tables)
			res.Tables = append(res.Tables, u)
		}
		use = append(use, i)
	}
	for _, ft := range p.funcs {
		if f := funcOf(toks[ft]); !slices.Contains(res.Funcs, f) {
			res.Funcs = append(res.Funcs, f)
		}
	}
	if !rewriting || (len(p.tables) == 0 && len(p.funcs) == 0) {
		// DDL is never rewritten: the caller refuses it for marked traffic.
		return res, nil
	}
	if rename == nil {
		rename = func(t sqlshadow.Table, _ bool) (string, error) { return t.Name, nil }
	}
	// names[i] is the new name of res.Tables[i]
	var namesBuf [8]string
	names := namesBuf[:0]
	for _, u := range res.Tables {
		n, err := rename(u.Table, u.Write)
		if err != nil {
			return sqlshadow.Result{}, err
		}
		if n == "" {
			return sqlshadow.Result{}, parseErr("empty new name for table %s", u.Table)
		}
		names = append(names, n)
	}
	// edits are the name tokens that change, in token order: table names,
	// the qualifiers that use them, renamed functions.
	var editBuf [16]edit
	edits := editBuf[:0]
	for i, r := range p.tables {
		edits = addEdit(edits, toks, r.tok, names[use[i]], use[i])
	}
	for _, r := range p.refs {
		if r.table >= 0 {
			edits = addEdit(edits, toks, r.tok, names[use[r.table]], use[r.table])
		}
	}
	funcRenamed := false
	if funcs != nil {
		for _, ft := range p.funcs {
			f := funcOf(toks[ft])
			n, err := funcs(f)
			if err != nil {
				return sqlshadow.Result{}, err
			}
			if n == "" {
				return sqlshadow.Result{}, parseErr("empty new name for function %s", f)
			}
			if n != f.Name {
				edits = addEdit(edits, toks, ft, n, -1)
				funcRenamed = true
			}
		}
	}
	// insertion sort: the three lists are each in token order already
	for i := 1; i < len(edits); i++ {
		for j := i; j > 0 && edits[j].tok < edits[j-1].tok; j-- {
			edits[j], edits[j-1] = edits[j-1], edits[j]
		}
	}
	size := len(query)
	for _, e := range edits {
		size += len(e.name) + 4 // quotes and spaces, when needed
	}
	// bare[i] caches bareOK(names[i]): 0 unknown, 1 yes, 2 no
	var bareBuf [8]uint8
	bare := bareBuf[:]
	if len(names) > len(bare) {
		bare = make([]uint8, len(names))
	}
	var b strings.Builder
	b.Grow(size)
	last := 0
	for _, e := range edits {
		t := &toks[e.tok]
		b.WriteString(query[last:t.start])
		// A space keeps the new name apart from a neighbour it would run
		// into ("a"FROM -> a_shadow FROM).
		if t.start > 0 && joins(query[t.start-1]) {
			b.WriteByte(' ')
		}
		ok := false
		if t.quote == 0 {
			if e.use < 0 {
				ok = bareOK(e.name)
			} else {
				if bare[e.use] == 0 {
					bare[e.use] = 2
					if bareOK(e.name) {
						bare[e.use] = 1
					}
				}
				ok = bare[e.use] == 1
			}
		}
		if ok {
			b.WriteString(e.name)
		} else {
			writeIdent(&b, e.name, t.quote)
		}
		if t.end < len(query) && joins(query[t.end]) {
			b.WriteByte(' ')
		}
		last = t.end
	}
	b.WriteString(query[last:])
	res.SQL = b.String()
	if !funcRenamed && alphaRenaming(toks, edits) {
		// Each renamed name token stays one identifier token that is no
		// keyword, and every comparison of names the parser makes (CTE
		// scope, qualifiers, table identity: exact or case-insensitive)
		// comes out the same: res.SQL parses to the same statement with
		// the names replaced, so its analysis is this one with the new
		// names. FuzzRewrite checks it against a fresh parse.
		var v *sqlshadow.Result
		if box != nil {
			v = &box.v
		} else {
			v = new(sqlshadow.Result)
		}
		*v = sqlshadow.Result{SQL: res.SQL, Kind: kind, Funcs: res.Funcs}
		if len(res.Tables) > 0 {
			// Distinct uses keep distinct new names (alphaRenaming), so
			// the renamed uses need no deduplication.
			v.Tables = uses[len(p.tables) : len(p.tables)+len(res.Tables) : len(uses)]
			for i, u := range res.Tables {
				v.Tables[i] = sqlshadow.Use{Table: sqlshadow.Table{Schema: u.Table.Schema, Name: names[i]}, Write: u.Write}
			}
		}
		res.Verified = v
	}
	return res, nil
}

// verifiedBox holds Result.Verified and the uses of Result.Tables and of
// Verified.Tables of a statement with up to four table references.
type verifiedBox struct {
	v    sqlshadow.Result
	uses [8]sqlshadow.Use
}

// edit replaces the name token tok by name; use is the index of the table
// in Result.Tables, -1 for a function.
type edit struct {
	tok  int
	name string
	use  int
}

// addEdit appends the edit of token tok to name unless it keeps its name.
func addEdit(edits []edit, toks []token, tok int, name string, use int) []edit {
	if name == toks[tok].val {
		return edits
	}
	return append(edits, edit{tok: tok, name: name, use: use})
}

// alphaRenaming reports whether the edits (in token order) keep every
// relation between names the parser tests: no renamed token was a bare
// keyword (the parser may have weighed it as one), no new name is one of
// a table-valued function, two tokens have equal
// names after the renaming exactly when they had before (exactly and in
// any letter case), and no new name equals another name of the statement
// in any letter case.
func alphaRenaming(toks []token, edits []edit) bool {
	if len(edits) == 0 {
		return true
	}
	ascii := true // every name of pairs is
	// the distinct renamings old -> new; tokens renamed alike relate
	// alike, so each is checked once
	type pair struct {
		use        int // Result.Tables index: same use and old name, same new name
		old, new   string
		osig, nsig uint32 // their foldSig
	}
	var buf [8]pair
	pairs := buf[:0]
	for ei := range edits {
		e := &edits[ei]
		t := &toks[e.tok]
		if t.kind != tIdent || t.word != 0 {
			return false
		}
		i := 0
		for i < len(pairs) && (pairs[i].use != e.use || pairs[i].old != t.val) {
			i++
		}
		if i == len(pairs) {
			if tableFunc(e.name) != tfNone {
				return false // read back as a table-valued function, or refused
			}
			pairs = append(pairs, pair{use: e.use, old: t.val, new: e.name, osig: foldSig(t.val), nsig: foldSig(e.name)})
			ascii = ascii && !t.wide && isASCII(e.name)
		}
	}
	for i, a := range pairs {
		for _, b := range pairs[:i] {
			if !related(a.old, a.new, b.old, b.new) {
				return false
			}
		}
	}
	// every identifier token that keeps its name against each renaming;
	// mask has the sigBit of each name of pairs, a token whose sigBit is
	// not in it equals none of them in any letter case (when ASCII)
	var mask uint64
	for k := range pairs {
		mask |= sigBit(pairs[k].osig) | sigBit(pairs[k].nsig)
	}
	e, next := 0, edits[0].tok
	for j := range toks {
		t := &toks[j]
		if t.kind != tIdent {
			continue
		}
		if j == next {
			e++
			next = -1
			if e < len(edits) {
				next = edits[e].tok
			}
			continue
		}
		sig := foldSig(t.val)
		if mask&sigBit(sig) == 0 && ascii && !t.wide {
			continue
		}
		for k := range pairs {
			a := &pairs[k]
			if sig != a.osig && sig != a.nsig && ascii && !t.wide {
				continue // equal in no letter case to either
			}
			if !related(a.old, a.new, t.val, t.val) {
				return false
			}
		}
	}
	return true
}

// related reports whether names a and b relate after the renaming as
// before: equal, and equal in any letter case.
func related(aOld, aNew, bOld, bNew string) bool {
	return (aOld == bOld) == (aNew == bNew) && strings.EqualFold(aOld, bOld) == strings.EqualFold(aNew, bNew)
}

// foldSig is a signature that two ASCII names equal in any letter case
// share: the length and the first byte with the ASCII case bit set.
func foldSig(s string) uint32 {
	if s == "" {
		return 0
	}
	return uint32(len(s))<<8 | uint32(s[0]|0x20)
}

// sigBit folds a foldSig to one bit of 64.
func sigBit(sig uint32) uint64 { return 1 << ((sig ^ sig>>8) & 63) }

// isASCII reports whether s has only ASCII bytes (a non-ASCII name may
// fold equal to a name of another length: the Kelvin sign folds to k).
func isASCII(s string) bool {
	for len(s) >= 8 {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		if w&0x8080808080808080 != 0 {
			return false
		}
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// joins reports whether a token written next to c could merge with the
// token c ends or starts: c continues a name or a number, or closes or
// opens a quoted name or string.
func joins(c byte) bool { return byteClass[c]&cJoins != 0 }

// Byte classes of byteClass.
const (
	cBare  = 1 << iota // an ASCII byte of a bare identifier: letter, digit, _ or $
	cJoins             // see joins
)

// byteClass has the classes of each byte.
var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		if b < utf8.RuneSelf && isIdentChar(b) {
			t[c] |= cBare
		}
		if isIdentChar(b) || strings.IndexByte("\"'`[]", b) >= 0 {
			t[c] |= cJoins
		}
	}
	return t
}()

// writeIdent writes name as an identifier, in the quote style of the token
// it replaces when possible (a bare token's new name, when bareOK, is
// written as it is by the caller).
func writeIdent(b *strings.Builder, name string, quote byte) {
	switch quote {
	case '`':
		b.WriteByte('`')
		b.WriteString(strings.ReplaceAll(name, "`", "``"))
		b.WriteByte('`')
		return
	case '[':
		if !strings.Contains(name, "]") {
			b.WriteByte('[')
			b.WriteString(name)
			b.WriteByte(']')
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(strings.ReplaceAll(name, `"`, `""`))
	b.WriteByte('"')
}

// bareOK reports whether name reads back as itself unquoted: an identifier
// that is no keyword.
func bareOK(name string) bool {
	if name == "" || !isIdentStart(name[0]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if byteClass[name[i]]&cBare == 0 {
			return false
		}
	}
	return asciiKeyword(name) == 0
}
