package yamlite

import "strings"

// flow parses flow collections ([a, b] and {k: v}), which may span lines.
type flow struct {
	p  *parser
	li int    // index into p.lines
	s  string // p.lines[li].raw
	i  int    // byte offset into s
}

func (f *flow) errf(format string, args ...any) error {
	return errAt(f.p.lines[f.li].num, f.i+1, format, args...)
}

// ws skips blanks, comments and line breaks; it reports false at the end of
// the document.
func (f *flow) ws() bool {
	for {
		for f.i < len(f.s) && (f.s[f.i] == ' ' || f.s[f.i] == '\t') {
			f.i++
		}
		if f.i < len(f.s) && (f.s[f.i] != '#' || (f.i > 0 && f.s[f.i-1] != ' ' && f.s[f.i-1] != '\t')) {
			return true
		}
		if f.li+1 >= len(f.p.lines) {
			return false
		}
		f.li++
		f.s, f.i = f.p.lines[f.li].raw, 0
	}
}

// flowInBlock parses a flow collection starting at ln.text[off:] and
// consumes the lines it spans.
func (p *parser) flowInBlock(ln *line, off int) (*node, error) {
	f := &flow{p: p, li: p.pos, s: ln.raw, i: ln.indent + off}
	n, err := f.node()
	if err != nil {
		return nil, err
	}
	rest := f.s[f.i:]
	if r := strings.TrimLeft(rest, " \t"); r != "" {
		if r[0] == ':' {
			return nil, f.errf("flow collections as mapping keys (complex keys) are not supported")
		}
		if r[0] != '#' || len(r) == len(rest) {
			return nil, f.errf("unexpected content after the flow collection")
		}
	}
	p.pos = f.li + 1
	return n, nil
}

func (f *flow) node() (*node, error) {
	if !f.ws() {
		return nil, f.errf("unexpected end of document in a flow collection")
	}
	line, col := f.p.lines[f.li].num, f.i+1
	t := f.s[f.i:]
	switch t[0] {
	case '[', '{':
		return f.collection(t[0])
	case '"', '\'':
		v, end, err := unquote(f.s, f.i, line)
		if err != nil {
			return nil, err
		}
		f.i = end
		return &node{style: quotedStyle, line: line, col: col, text: v}, nil
	case ']', '}', ',', '#':
		return nil, f.errf("unexpected %q in a flow collection", t[0])
	case '|', '>':
		return nil, f.errf("block scalars (| or >) are not allowed inside a flow collection")
	}
	if err := indicator(t, line, col); err != nil {
		return nil, err
	}
	if isDash(t) {
		return nil, f.errf("block sequence items (\"- \") are not allowed inside a flow collection")
	}
	start := f.i
	for ; f.i < len(f.s); f.i++ {
		c := f.s[f.i]
		if strings.IndexByte(",[]{}", c) >= 0 {
			break
		}
		if c == ':' && (f.i+1 == len(f.s) || strings.IndexByte(" \t,[]{}", f.s[f.i+1]) >= 0) {
			break
		}
		if c == '#' && f.i > start && (f.s[f.i-1] == ' ' || f.s[f.i-1] == '\t') {
			break
		}
	}
	v := strings.TrimRight(f.s[start:f.i], " \t")
	if v == "" {
		return nil, errAt(line, col, "expected a value in the flow collection")
	}
	return &node{line: line, col: col, text: v}, nil
}

// collection parses [ ... ] or { ... } starting at f.s[f.i] == open.
func (f *flow) collection(open byte) (*node, error) {
	line, col := f.p.lines[f.li].num, f.i+1
	if err := f.p.enter(line, col); err != nil {
		return nil, err
	}
	defer func() { f.p.depth-- }()
	n := &node{kind: sequenceNode, line: line, col: col}
	closer, what := byte(']'), "flow sequence"
	if open == '{' {
		n.kind, closer, what = mappingNode, '}', "flow mapping"
	}
	f.i++
	for {
		if !f.ws() {
			return nil, errAt(line, col, "unterminated %s: missing %q", what, closer)
		}
		if f.s[f.i] == closer {
			f.i++
			return n, nil
		}
		if open == '[' {
			item, err := f.node()
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, item)
		} else if err := f.entry(n); err != nil {
			return nil, err
		}
		if !f.ws() {
			return nil, errAt(line, col, "unterminated %s: missing %q", what, closer)
		}
		switch c := f.s[f.i]; {
		case c == ',':
			f.i++
		case c == closer:
			f.i++
			return n, nil
		case c == ':' && open == '[':
			return nil, f.errf("\"key: value\" pairs inside a flow sequence are not supported; use {key: value}")
		default:
			return nil, f.errf("expected ',' or %q in the %s started on line %d", closer, what, line)
		}
	}
}

// entry parses one "key: value" (or bare "key") of a flow mapping.
func (f *flow) entry(m *node) error {
	if c := f.s[f.i]; c == '[' || c == '{' {
		return f.errf("flow collections as mapping keys (complex keys) are not supported")
	}
	k, err := f.node()
	if err != nil {
		return err
	}
	if k.style == plainStyle && k.text == "<<" {
		return errAt(k.line, k.col, "merge keys (<<) are not supported")
	}
	v := &node{line: k.line, col: k.col}
	if !f.ws() {
		return nil // reported by the caller
	}
	if f.s[f.i] == ':' {
		f.i++
		v.line, v.col = f.p.lines[f.li].num, f.i+1
		if !f.ws() {
			return nil
		}
		if c := f.s[f.i]; c != ',' && c != '}' {
			if v, err = f.node(); err != nil {
				return err
			}
		}
	}
	m.pairs = append(m.pairs, pair{key: k.text, line: k.line, col: k.col, val: v})
	return nil
}
