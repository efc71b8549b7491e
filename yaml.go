package shadowlane

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// unmarshalYAML decodes the config file with go.yaml.in/yaml/v3, strictly:
// exactly one document, unknown fields and duplicate keys refused. Anchors,
// aliases and merge keys work (YAML 1.1 booleans such as yes/off are read
// into bool fields, as yaml.v3 does). Every error is a [*DecodeError] with
// the line, the column and the config path of the offending value, as far
// as the document tells them; an error inside an anchored node names the
// place where the anchor is written.
func unmarshalYAML(data []byte, v any) error {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty document: nothing set
		}
		return syntaxError(data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return syntaxError(data, err)
		}
		return &DecodeError{Line: extra.Line, Col: extra.Column, FieldError: FieldError{Msg: "a second YAML document; the config is one document"}}
	}
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	err := strict.Decode(v)
	if err == nil {
		return nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return syntaxError(data, err)
	}
	idx := indexNodes(&root)
	errs := make([]error, 0, len(te.Errors))
	for _, m := range te.Errors {
		errs = append(errs, idx.fieldError(m))
	}
	return errors.Join(errs...)
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// syntaxError turns yaml.v3's "yaml: line 3: did not find expected key"
// into a DecodeError with the line (yaml.v3 gives no column here).
func syntaxError(data []byte, err error) *DecodeError {
	msg := err.Error()
	fe := &DecodeError{}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		fe.Line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	fe.Msg = strings.TrimPrefix(msg, "yaml: ")
	if lines := bytes.Split(data, []byte("\n")); fe.Line >= 1 && fe.Line <= len(lines) && bytes.HasPrefix(bytes.TrimLeft(lines[fe.Line-1], " "), []byte("\t")) {
		fe.Msg += " (a tab indents this line; YAML indents with spaces)"
	}
	return fe
}

// nodeAt is one key or value of the document: where it is and its path.
type nodeAt struct {
	line, col int
	path      string
	key       bool      // a mapping key (path names the field it sets)
	kind      yaml.Kind // of the node
	text      string    // the scalar's text
}

type nodeIndex map[int][]nodeAt

func indexNodes(root *yaml.Node) nodeIndex {
	idx := nodeIndex{}
	var walk func(n *yaml.Node, path string)
	add := func(n *yaml.Node, path string, key bool) {
		idx[n.Line] = append(idx[n.Line], nodeAt{n.Line, n.Column, path, key, n.Kind, n.Value})
	}
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			add(n, path, false)
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, val := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if k.Value == "<<" {
					p = path
				}
				add(k, p, true)
				walk(val, p)
			}
		case yaml.SequenceNode:
			add(n, path, false)
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		default: // scalars and aliases (an alias's content is indexed where its anchor is)
			add(n, path, false)
		}
	}
	walk(root, "")
	return idx
}

var (
	notFoundRE  = regexp.MustCompile(`^field (.*) not found in type \S+$`)
	cannotRE    = regexp.MustCompile("^cannot unmarshal (\\S+)(?: `(.*)`)? into (\\S+)$")
	duplicateRE = regexp.MustCompile(`^mapping key "(.*)" already defined at line (\d+)$`)
	alreadyRE   = regexp.MustCompile(`^field (.*) already set in type \S+$`)
)

// keyErrors are yaml.v3's messages about a mapping key, in the order they
// are tried: placed at the key their first submatch names, and reworded
// by msg.
var keyErrors = [...]struct {
	re  *regexp.Regexp
	msg func(s []string) string
}{
	{notFoundRE, func(s []string) string { return fmt.Sprintf("unknown field %q", s[1]) }},
	{duplicateRE, func(s []string) string { return fmt.Sprintf("duplicate key %q (first at line %s)", s[1], s[2]) }},
	{alreadyRE, func(s []string) string { return fmt.Sprintf("field %q set twice", s[1]) }},
}

// fieldError places one of yaml.v3's "line N: ..." decoding messages.
func (idx nodeIndex) fieldError(m string) *DecodeError {
	fe := &DecodeError{FieldError: FieldError{Msg: m}}
	if s := lineRE.FindStringSubmatch(m); s != nil {
		fe.Line, _ = strconv.Atoi(s[1])
		fe.Msg = m[len(s[0]):]
	}
	at := idx[fe.Line]
	pick := func(key bool, kind yaml.Kind, text func(string) bool) {
		for _, n := range at {
			if n.key == key && (kind == 0 || n.kind == kind) && (text == nil || text(n.text)) {
				fe.Field, fe.Col = n.path, n.col
				return
			}
		}
		if len(at) > 0 && fe.Field == "" {
			fe.Field, fe.Col = at[len(at)-1].path, at[len(at)-1].col
		}
	}
	is := func(s string) func(string) bool { return func(t string) bool { return t == s } }
	for _, k := range keyErrors {
		if s := k.re.FindStringSubmatch(fe.Msg); s != nil {
			pick(true, 0, is(s[1]))
			fe.Msg = k.msg(s)
			return fe
		}
	}
	s := cannotRE.FindStringSubmatch(fe.Msg)
	if s == nil {
		pick(false, 0, nil)
		return fe
	}
	val := s[2]
	match := func(t string) bool {
		if p, ok := strings.CutSuffix(val, "..."); ok && len(t) > 10 {
			return strings.HasPrefix(t, p)
		}
		return t == val
	}
	switch s[1] {
	case "!!seq":
		pick(false, yaml.SequenceNode, nil)
	case "!!map":
		pick(false, yaml.MappingNode, nil)
	default:
		pick(false, yaml.ScalarNode, match)
	}
	got := map[string]string{"!!seq": "a sequence", "!!map": "a mapping", "!!str": "the string", "!!int": "the integer",
		"!!float": "the number", "!!bool": "the boolean", "!!null": "null"}[s[1]]
	if got == "" {
		got = s[1]
	}
	if val != "" {
		got += " " + strconv.Quote(val)
	}
	want := strings.TrimLeft(s[3], "*")
	switch {
	case strings.HasPrefix(want, "[]"):
		want = "a sequence"
	case strings.HasPrefix(want, "map["):
		want = "a mapping"
	}
	switch want {
	case "time.Duration":
		want = `a duration like "1.5s"`
	case "string":
		want = "a string"
	case "bool":
		want = "true or false"
	case "int", "int64", "float64", "uint", "uint64":
		want = "a number (" + want + ")"
	default:
		if strings.Contains(want, ".") { // a struct of the config
			want = "a mapping"
		}
	}
	fe.Msg = fmt.Sprintf("expected %s, got %s", want, got)
	return fe
}
