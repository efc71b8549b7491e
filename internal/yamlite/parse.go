package yamlite

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of collections so hostile input cannot
// exhaust the stack.
const maxDepth = 100

type kind uint8

const (
	scalarNode kind = iota
	mappingNode
	sequenceNode
)

type style uint8

const (
	plainStyle  style = iota // resolved by the core schema (null, bool, int, float, string)
	quotedStyle              // '...' or "...": always a string
	blockStyle               // | or >: always a string
)

type pair struct {
	key       string
	line, col int
	val       *node
}

// node is one parsed YAML node with its position (1-based line and column).
type node struct {
	kind      kind
	style     style
	line, col int
	text      string  // scalars
	pairs     []pair  // mappings, in document order
	items     []*node // sequences
}

func (n *node) isNull() bool {
	return n.kind == scalarNode && n.style == plainStyle && plainKind(n.text) == kNull
}

// line is one input line. The invariant raw[indent:] == text holds even after
// a "- " item rewrites the line to start at its content.
type line struct {
	num    int
	indent int
	text   string
	raw    string
}

type parser struct {
	lines []line
	pos   int
	depth int
}

func errAt(line, col int, format string, args ...any) error {
	return &Error{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// parse turns one YAML document into a node tree. An empty document is a
// null scalar.
func parse(data []byte) (*node, error) {
	if !utf8.Valid(data) {
		i := 0
		for i < len(data) {
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			i += size
		}
		before := string(data[:i])
		return nil, errAt(1+strings.Count(before, "\n"), i-strings.LastIndexByte(before, '\n'), "input is not valid UTF-8")
	}
	s := strings.TrimPrefix(string(data), "\uFEFF")
	p := &parser{}
	for i, r := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		r = strings.TrimSuffix(r, "\r")
		ind := len(r) - len(strings.TrimLeft(r, " "))
		p.lines = append(p.lines, line{num: i + 1, indent: ind, text: r[ind:], raw: r})
	}
	if err := p.markers(); err != nil {
		return nil, err
	}
	root, err := p.block(-1, 1, 1)
	if err != nil {
		return nil, err
	}
	if ln, err := p.peek(); err != nil {
		return nil, err
	} else if ln != nil {
		return nil, errAt(ln.num, ln.indent+1, "unexpected content (check the indentation)")
	}
	if err := checkDup(root, ""); err != nil {
		return nil, err
	}
	return root, nil
}

func blankOrComment(t string) bool {
	t = strings.TrimLeft(t, " \t")
	return t == "" || t[0] == '#'
}

// markers handles "---" and "...": one optional leading "---", and nothing
// but comments after "...".
func (p *parser) markers() error {
	seenStart, seenContent := false, false
	for i := range p.lines {
		ln := &p.lines[i]
		switch {
		case strings.HasPrefix(ln.raw, "%") && !seenStart && !seenContent:
			return errAt(ln.num, 1, "directives (%%YAML, %%TAG) are not supported")
		case isMarker(ln.raw, "---"):
			if seenStart || seenContent {
				return errAt(ln.num, 1, "multiple documents are not supported (a second document starts here)")
			}
			if !blankOrComment(ln.raw[3:]) {
				return errAt(ln.num, 5, "content on the \"---\" line is not supported; start the document on the next line")
			}
			seenStart = true
			ln.text, ln.indent = "", 0
		case isMarker(ln.raw, "..."):
			for j := i + 1; j < len(p.lines); j++ {
				r := p.lines[j].raw
				if isMarker(r, "---") {
					return errAt(j+1, 1, "multiple documents are not supported (a second document starts here)")
				}
				if !blankOrComment(r) {
					return errAt(j+1, 1, "content after the document end marker \"...\"")
				}
			}
			if !blankOrComment(ln.raw[3:]) {
				return errAt(ln.num, 5, "content after the document end marker \"...\"")
			}
			p.lines = p.lines[:i]
			return nil
		case !blankOrComment(ln.raw):
			seenContent = true
		}
	}
	return nil
}

func isMarker(raw, m string) bool {
	return strings.HasPrefix(raw, m) && (len(raw) == 3 || raw[3] == ' ' || raw[3] == '\t')
}

// peek skips blank and comment lines and returns the next significant line,
// or nil at the end of the document.
func (p *parser) peek() (*line, error) {
	for p.pos < len(p.lines) {
		ln := &p.lines[p.pos]
		if blankOrComment(ln.text) {
			p.pos++
			continue
		}
		if ln.text[0] == '\t' {
			return nil, errAt(ln.num, ln.indent+1, "tab character used for indentation; YAML allows only spaces")
		}
		return ln, nil
	}
	return nil, nil
}

func (p *parser) enter(line, col int) error {
	p.depth++
	if p.depth > maxDepth {
		return errAt(line, col, "nesting deeper than %d levels", maxDepth)
	}
	return nil
}

// block parses the node that starts on the next significant line if that
// line is indented more than parent; otherwise the value is null.
func (p *parser) block(parent, nullLine, nullCol int) (*node, error) {
	ln, err := p.peek()
	if err != nil {
		return nil, err
	}
	if ln == nil || ln.indent <= parent {
		return &node{line: nullLine, col: nullCol}, nil
	}
	return p.nodeAt(ln, parent)
}

func isDash(t string) bool {
	return t == "-" || strings.HasPrefix(t, "- ") || strings.HasPrefix(t, "-\t")
}

// indicator rejects the YAML features this decoder does not support, where
// they would start a node.
func indicator(t string, line, col int) error {
	switch t[0] {
	case '&':
		return errAt(line, col, "anchors (&name) are not supported; quote values that start with '&'")
	case '*':
		return errAt(line, col, "aliases (*name) are not supported; quote values that start with '*'")
	case '!':
		return errAt(line, col, "tags (!tag, !!type) are not supported; quote values that start with '!'")
	case '%':
		return errAt(line, col, "directives (%%YAML, %%TAG) are not supported")
	case '@', '`':
		return errAt(line, col, "%q is reserved in YAML and cannot start a plain value; quote it", t[0])
	case ']', '}', ',':
		return errAt(line, col, "a plain value cannot start with %q; quote it", t[0])
	case '?':
		if len(t) == 1 || t[1] == ' ' || t[1] == '\t' {
			return errAt(line, col, "complex keys (\"? \") are not supported")
		}
	}
	return nil
}

// nodeAt parses the block node starting at ln (which is p.lines[p.pos]).
func (p *parser) nodeAt(ln *line, parent int) (*node, error) {
	t := ln.text
	if err := indicator(t, ln.num, ln.indent+1); err != nil {
		return nil, err
	}
	switch {
	case isDash(t):
		return p.sequence(ln)
	case t[0] == '[' || t[0] == '{':
		return p.flowInBlock(ln, 0)
	case t[0] == '|' || t[0] == '>':
		return p.blockScalar(ln, 0, parent)
	}
	if _, _, _, ok, err := p.splitKey(ln); err != nil {
		return nil, err
	} else if ok {
		return p.mapping(ln)
	}
	return p.scalarLine(ln, 0)
}

// splitKey recognises "key: rest" and returns the key and the offset in
// ln.text just after the colon.
func (p *parser) splitKey(ln *line) (key string, style style, off int, ok bool, err error) {
	t := ln.text
	if t[0] == '"' || t[0] == '\'' {
		v, end, err := unquote(ln.raw, ln.indent, ln.num)
		if err != nil {
			return "", 0, 0, false, err
		}
		j := end - ln.indent
		for j < len(t) && (t[j] == ' ' || t[j] == '\t') {
			j++
		}
		if j < len(t) && t[j] == ':' && (j+1 == len(t) || t[j+1] == ' ' || t[j+1] == '\t') {
			return v, quotedStyle, j + 1, true, nil
		}
		return "", 0, 0, false, nil
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c == '#' && i > 0 && (t[i-1] == ' ' || t[i-1] == '\t') {
			break
		}
		if c == ':' && (i+1 == len(t) || t[i+1] == ' ' || t[i+1] == '\t') {
			return strings.TrimRight(t[:i], " \t"), plainStyle, i + 1, true, nil
		}
	}
	return "", 0, 0, false, nil
}

func (p *parser) mapping(first *line) (*node, error) {
	if err := p.enter(first.num, first.indent+1); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	indent := first.indent
	m := &node{kind: mappingNode, line: first.num, col: indent + 1}
	for {
		ln, err := p.peek()
		if err != nil {
			return nil, err
		}
		if ln == nil || ln.indent < indent {
			return m, nil
		}
		col := ln.indent + 1
		if ln.indent > indent {
			return nil, errAt(ln.num, col, "bad indentation: expected a key at column %d (for multi-line text use a block scalar | or >)", indent+1)
		}
		if err := indicator(ln.text, ln.num, col); err != nil {
			return nil, err
		}
		if isDash(ln.text) {
			return nil, errAt(ln.num, col, "expected a mapping key, found a sequence item \"-\"")
		}
		key, st, off, ok, err := p.splitKey(ln)
		if err != nil {
			return nil, err
		}
		if !ok {
			hint := ""
			if strings.Contains(ln.text, ":") {
				hint = " (a key's colon must be followed by a space)"
			}
			return nil, errAt(ln.num, col, "expected a \"key: value\" mapping entry%s", hint)
		}
		if st == plainStyle && key == "" {
			return nil, errAt(ln.num, col, "empty mapping key")
		}
		if st == plainStyle && key == "<<" {
			return nil, errAt(ln.num, col, "merge keys (<<) are not supported")
		}
		val, err := p.value(ln, off, indent)
		if err != nil {
			return nil, err
		}
		m.pairs = append(m.pairs, pair{key: key, line: ln.num, col: col, val: val})
	}
}

// value parses what follows "key:" at offset off of ln.text; indent is the
// indentation of the mapping.
func (p *parser) value(ln *line, off, indent int) (*node, error) {
	t := ln.text
	j := off
	for j < len(t) && (t[j] == ' ' || t[j] == '\t') {
		j++
	}
	col := ln.indent + j + 1
	if j == len(t) || t[j] == '#' {
		p.pos++
		nx, err := p.peek()
		if err != nil {
			return nil, err
		}
		if nx != nil && nx.indent == indent && isDash(nx.text) {
			return p.nodeAt(nx, indent-1) // "key:\n- item" at the key's indentation
		}
		return p.block(indent, ln.num, col)
	}
	if err := indicator(t[j:], ln.num, col); err != nil {
		return nil, err
	}
	switch c := t[j]; {
	case isDash(t[j:]):
		return nil, errAt(ln.num, col, "a block sequence cannot start on the line of its key; put the \"- \" items on the following lines")
	case c == '[' || c == '{':
		return p.flowInBlock(ln, j)
	case c == '|' || c == '>':
		return p.blockScalar(ln, j, indent)
	}
	return p.scalarLine(ln, j)
}

func (p *parser) sequence(first *line) (*node, error) {
	if err := p.enter(first.num, first.indent+1); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	indent := first.indent
	s := &node{kind: sequenceNode, line: first.num, col: indent + 1}
	for {
		ln, err := p.peek()
		if err != nil {
			return nil, err
		}
		if ln == nil || ln.indent < indent {
			return s, nil
		}
		if ln.indent > indent {
			return nil, errAt(ln.num, ln.indent+1, "bad indentation: expected \"- \" at column %d", indent+1)
		}
		if !isDash(ln.text) {
			return s, nil // the parent mapping continues
		}
		k := 1
		for k < len(ln.text) && ln.text[k] == ' ' {
			k++
		}
		if k < len(ln.text) && ln.text[k] == '\t' {
			return nil, errAt(ln.num, ln.indent+k+1, "tab character used for indentation; YAML allows only spaces")
		}
		var item *node
		if rest := ln.text[k:]; rest == "" || rest[0] == '#' {
			p.pos++
			item, err = p.block(indent, ln.num, indent+2)
		} else {
			// The item's content starts a node in its own right, indented
			// to where it begins ("- id: k1" is a mapping at indent+2).
			ln.indent += k
			ln.text = rest
			item, err = p.nodeAt(ln, indent)
		}
		if err != nil {
			return nil, err
		}
		s.items = append(s.items, item)
	}
}

// scalarLine parses a quoted or plain scalar at ln.text[off:] that must end
// on this line.
func (p *parser) scalarLine(ln *line, off int) (*node, error) {
	t := ln.text[off:]
	col := ln.indent + off + 1
	if t[0] == '"' || t[0] == '\'' {
		v, end, err := unquote(ln.raw, ln.indent+off, ln.num)
		if err != nil {
			return nil, err
		}
		rest := ln.raw[end:]
		if !blankOrComment(rest) || (rest != "" && rest[0] == '#') {
			return nil, errAt(ln.num, end+1, "unexpected content after the quoted string")
		}
		p.pos++
		return &node{style: quotedStyle, line: ln.num, col: col, text: v}, nil
	}
	v := plainEnd(t)
	if i := strings.Index(v, ": "); i >= 0 || strings.HasSuffix(v, ":") || strings.Contains(v, ":\t") {
		return nil, errAt(ln.num, col, "a plain value cannot contain \": \"; quote it")
	}
	p.pos++
	return &node{line: ln.num, col: col, text: v}, nil
}

// plainEnd cuts a block-context plain scalar at its comment.
func plainEnd(t string) string {
	for i := 1; i < len(t); i++ {
		if t[i] == '#' && (t[i-1] == ' ' || t[i-1] == '\t') {
			t = t[:i]
			break
		}
	}
	return strings.TrimRight(t, " \t")
}

// blockScalar parses a literal (|) or folded (>) scalar whose header is at
// ln.text[off:]; its content must be indented more than parent.
func (p *parser) blockScalar(ln *line, off, parent int) (*node, error) {
	h := ln.text[off:]
	col := ln.indent + off + 1
	folded := h[0] == '>'
	var chomp byte
	explicit := 0
	i := 1
header:
	for ; i < len(h); i++ {
		switch c := h[i]; {
		case (c == '-' || c == '+') && chomp == 0:
			chomp = c
		case c >= '1' && c <= '9' && explicit == 0:
			explicit = int(c - '0')
		default:
			break header
		}
	}
	if rest := h[i:]; !blankOrComment(rest) || (rest != "" && rest[0] == '#') {
		return nil, errAt(ln.num, col, "invalid block scalar header %q (expected | or > with optional - or + and an indentation digit)", h)
	}
	p.pos++
	ci := -1
	if explicit > 0 {
		ci = max(parent, 0) + explicit
	}
	var lines []string
	for p.pos < len(p.lines) {
		r := p.lines[p.pos].raw
		sp := len(r) - len(strings.TrimLeft(r, " "))
		if sp == len(r) {
			lines = append(lines, "") // whitespace-only lines count as empty
			p.pos++
			continue
		}
		if ci < 0 {
			if sp <= parent {
				break
			}
			ci = sp
		}
		if sp < ci {
			break
		}
		lines = append(lines, r[ci:])
		p.pos++
	}
	end := len(lines)
	for end > 0 && lines[end-1] == "" {
		end--
	}
	body, trail := lines[:end], len(lines)-end
	var text string
	if folded {
		text = fold(body)
	} else {
		text = strings.Join(body, "\n")
	}
	switch chomp {
	case '-':
	case '+':
		if len(body) > 0 {
			text += "\n"
		}
		text += strings.Repeat("\n", trail)
	default:
		if len(body) > 0 {
			text += "\n"
		}
	}
	return &node{style: blockStyle, line: ln.num, col: col, text: text}, nil
}

// fold applies YAML line folding: a break between two normal lines becomes a
// space, empty lines become breaks, more-indented lines keep their breaks.
func fold(body []string) string {
	var b strings.Builder
	started, prevNormal, empties := false, false, 0
	for _, l := range body {
		if l == "" {
			empties++
			continue
		}
		more := l[0] == ' ' || l[0] == '\t'
		switch {
		case !started:
			b.WriteString(strings.Repeat("\n", empties))
		case prevNormal && !more && empties == 0:
			b.WriteByte(' ')
		case prevNormal && !more:
			b.WriteString(strings.Repeat("\n", empties))
		default:
			b.WriteString(strings.Repeat("\n", empties+1))
		}
		b.WriteString(l)
		started, prevNormal, empties = true, !more, 0
	}
	return b.String()
}

var escapes = map[byte]string{
	'0': "\x00", 'a': "\a", 'b': "\b", 't': "\t", '\t': "\t", 'n': "\n", 'v': "\v",
	'f': "\f", 'r': "\r", 'e': "\x1b", ' ': " ", '"': "\"", '/': "/", '\\': "\\",
	'N': "\u0085", '_': "\u00a0", 'L': "\u2028", 'P': "\u2029",
}

// unquote decodes the quoted scalar starting at s[i] and returns it with the
// index just past the closing quote. Quoted scalars must end on their line.
func unquote(s string, i, num int) (string, int, error) {
	q := s[i]
	var b strings.Builder
	for j := i + 1; j < len(s); {
		c := s[j]
		if q == '\'' {
			if c == '\'' {
				if j+1 < len(s) && s[j+1] == '\'' {
					b.WriteByte('\'')
					j += 2
					continue
				}
				return b.String(), j + 1, nil
			}
			b.WriteByte(c)
			j++
			continue
		}
		switch c {
		case '"':
			return b.String(), j + 1, nil
		case '\\':
			if j+1 == len(s) {
				return "", 0, errAt(num, j+1, "escaped line breaks in double-quoted strings are not supported")
			}
			e := s[j+1]
			if r, ok := escapes[e]; ok {
				b.WriteString(r)
				j += 2
				continue
			}
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			if n == 0 {
				return "", 0, errAt(num, j+1, "unknown escape \\%c in double-quoted string", e)
			}
			r, ok := hexRune(s, j+2, n)
			if !ok {
				return "", 0, errAt(num, j+1, "invalid \\%c escape: expected %d hex digits", e, n)
			}
			j += 2 + n
			if e == 'u' && utf16.IsSurrogate(r) {
				lo, ok := rune(0), false
				if strings.HasPrefix(s[j:], "\\u") {
					lo, ok = hexRune(s, j+2, 4)
				}
				if r = utf16.DecodeRune(r, lo); !ok || r == utf8.RuneError {
					return "", 0, errAt(num, j-5, "invalid \\u escape: unpaired UTF-16 surrogate")
				}
				j += 6
			}
			if !utf8.ValidRune(r) {
				return "", 0, errAt(num, j+1, "invalid unicode escape")
			}
			b.WriteRune(r)
		default:
			b.WriteByte(c)
			j++
		}
	}
	return "", 0, errAt(num, i+1, "unterminated quoted string (quoted strings must end on their line; use a block scalar | for multi-line text)")
}

func hexRune(s string, i, n int) (rune, bool) {
	if i+n > len(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s[i:i+n], 16, 32)
	return rune(v), err == nil
}
