package limiter

import (
	"path"
	"slices"
	"strings"
)

// ruleIndex is an immutable, validated rule set with an index from
// resource names to the rules that can match them: exact names in a map,
// patterns in a trie of '/'-separated segments compiled once per
// [Limiter.SetRules]. Resolving a resource costs one map lookup plus a walk
// of the trie along the name's segments, whatever the number of rules.
type ruleIndex struct {
	rules []Rule
	names []string         // rules[i].name()
	exact map[string][]int // rules whose Resource equals the name (patterns too: Match(p, p) is true)
	trie  *pnode           // pattern rules
	named map[string]bool  // every rule name
}

// pnode is a trie node: the pattern segments consumed so far lead here.
type pnode struct {
	lit   map[string]*pnode // literal next segments
	param *pnode            // a ":name" next segment (any one non-empty segment)
	// globs are path.Match next segments keyed by their literal prefix
	// (the text before the first meta character); globLens lists the
	// distinct prefix lengths, so a name segment is looked up once per
	// length.
	globs    map[string][]*pglob
	globLens []int
	end      []int // rules whose pattern ends here
	tail     []int // rules whose pattern continues with a final "*"
}

type pglob struct {
	pat  string
	node *pnode
}

func newIndex(rules []Rule) *ruleIndex {
	ix := &ruleIndex{rules: rules, names: make([]string, len(rules)), exact: make(map[string][]int, len(rules)),
		trie: &pnode{}, named: make(map[string]bool, len(rules))}
	for i := range rules {
		r := &rules[i]
		ix.names[i] = r.name()
		ix.named[ix.names[i]] = true
		ix.exact[r.Resource] = append(ix.exact[r.Resource], i)
		if isPattern(r.Resource) {
			ix.trie.add(r.Resource, i)
		}
	}
	return ix
}

// isPattern reports whether p matches anything but itself.
func isPattern(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if strings.HasPrefix(seg, ":") || strings.ContainsAny(seg, `*?[\`) {
			return true
		}
	}
	return false
}

func (n *pnode) add(p string, rule int) {
	for {
		seg, rest, more := strings.Cut(p, "/")
		if seg == "*" && !more {
			n.tail = append(n.tail, rule)
			return
		}
		n = n.child(seg)
		if !more {
			n.end = append(n.end, rule)
			return
		}
		p = rest
	}
}

func (n *pnode) child(seg string) *pnode {
	switch {
	case strings.HasPrefix(seg, ":"):
		if n.param == nil {
			n.param = &pnode{}
		}
		return n.param
	case strings.ContainsAny(seg, `*?[\`):
		pre := seg[:strings.IndexAny(seg, `*?[\`)]
		for _, g := range n.globs[pre] {
			if g.pat == seg {
				return g.node
			}
		}
		if n.globs == nil {
			n.globs = map[string][]*pglob{}
		}
		if !slices.Contains(n.globLens, len(pre)) {
			n.globLens = append(n.globLens, len(pre))
		}
		g := &pglob{pat: seg, node: &pnode{}}
		n.globs[pre] = append(n.globs[pre], g)
		return g.node
	default:
		if c, ok := n.lit[seg]; ok {
			return c
		}
		if n.lit == nil {
			n.lit = map[string]*pnode{}
		}
		c := &pnode{}
		n.lit[seg] = c
		return c
	}
}

// match appends the rules whose pattern matches rest (the name's
// remaining segments) from n on.
func (n *pnode) match(rest string, out []int) []int {
	if rest != "" {
		out = append(out, n.tail...)
	}
	seg, next, more := strings.Cut(rest, "/")
	visit := func(c *pnode, out []int) []int {
		if !more {
			return append(out, c.end...)
		}
		return c.match(next, out)
	}
	if c, ok := n.lit[seg]; ok {
		out = visit(c, out)
	}
	if n.param != nil && seg != "" {
		out = visit(n.param, out)
	}
	for _, k := range n.globLens {
		if k > len(seg) {
			continue
		}
		for _, g := range n.globs[seg[:k]] {
			if ok, err := path.Match(g.pat, seg); err == nil && ok {
				out = visit(g.node, out)
			}
		}
	}
	return out
}

// lookup returns the indexes of the rules matching name, in rule order.
func (ix *ruleIndex) lookup(name string) []int {
	out := append([]int(nil), ix.exact[name]...)
	out = ix.trie.match(name, out)
	if len(out) > 1 {
		slices.Sort(out)
		out = slices.Compact(out)
	}
	return out
}
