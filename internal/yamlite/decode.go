package yamlite

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Error is the error every function of this package returns: a syntax error
// (Path empty, Line and Col set) or a decoding error (Path names the config
// value, e.g. "trust.keys[1].secret").
type Error struct {
	Line int    // 1-based line of the offending input; 0 if not about the input
	Col  int    // 1-based column (byte offset) on Line; 0 if unknown
	Path string // config path of the value, "" for syntax errors and the root
	Msg  string // what is wrong, e.g. "expected a string, got a mapping"
	Err  error  // underlying cause (a TextUnmarshaler's or time.ParseDuration's error), if any
}

// Error reads like "config line 12, trust.keys[1].secret: expected a string,
// got a mapping" or, without a path, "config line 3, column 7: ...".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config")
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
		if e.Path == "" && e.Col > 0 {
			fmt.Fprintf(&b, ", column %d", e.Col)
		}
	}
	if e.Path != "" {
		b.WriteString(", ")
		b.WriteString(e.Path)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

func fail(n *node, path, format string, args ...any) *Error {
	return &Error{Line: n.line, Col: n.col, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Parse decodes one YAML document into a generic tree of map[string]any,
// []any, string, int64, float64, bool and nil. An empty document is nil.
func Parse(data []byte) (any, error) {
	root, err := parse(data)
	if err != nil {
		return nil, err
	}
	return generic(root, "")
}

// Unmarshal decodes one YAML document into v, which must be a non-nil
// pointer. Unknown keys, duplicate keys and type mismatches are errors. On
// error v may be partly filled: to keep an old config when a new one is
// invalid, decode into a fresh value and swap it in on success.
func Unmarshal(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return &Error{Msg: fmt.Sprintf("Unmarshal needs a non-nil pointer, got %T", v)}
	}
	root, err := parse(data)
	if err != nil {
		return err
	}
	if err := decode(root, rv.Elem(), ""); err != nil {
		return err
	}
	return nil
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	unmarshalType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// describe names what a node holds, for "expected X, got Y" messages.
func describe(n *node) string {
	switch n.kind {
	case mappingNode:
		return "a mapping"
	case sequenceNode:
		return "a sequence"
	}
	quoted := func() string {
		s := n.text
		if utf8.RuneCountInString(s) > 32 {
			s = string([]rune(s)[:32]) + "..."
		}
		return "the string " + strconv.Quote(s)
	}
	if n.style != plainStyle {
		return quoted()
	}
	switch plainKind(n.text) {
	case kNull:
		return "null"
	case kBool:
		return "the boolean " + n.text
	case kInt:
		return "the integer " + n.text
	case kFloat:
		return "the number " + n.text
	}
	return quoted()
}

func mismatch(n *node, path, want string) *Error {
	return fail(n, path, "expected %s, got %s", want, describe(n))
}

// decode stores n into v. A null leaves v unchanged unless v is a pointer,
// map, slice or interface, which it sets to nil (as encoding/json does).
func decode(n *node, v reflect.Value, path string) error {
	if n.isNull() {
		switch v.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
			v.SetZero()
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return decode(n, v.Elem(), path)
	case reflect.Interface:
		if v.NumMethod() != 0 {
			return fail(n, path, "cannot decode into the interface type %s", v.Type())
		}
		g, err := generic(n, path)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(&g).Elem())
		return nil
	}
	if v.CanAddr() && reflect.PointerTo(v.Type()).Implements(unmarshalType) {
		if n.kind != scalarNode {
			return mismatch(n, path, "a string")
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.text)); err != nil {
			e := fail(n, path, "invalid value %q: %v", n.text, err)
			e.Err = err
			return e
		}
		return nil
	}
	if v.Type() == durationType {
		if n.kind != scalarNode {
			return mismatch(n, path, `a duration like "1.5s"`)
		}
		d, err := time.ParseDuration(n.text)
		if err != nil {
			e := mismatch(n, path, `a duration like "1.5s" or "250ms"`)
			if n.style == plainStyle && plainKind(n.text) == kInt {
				e.Msg += " (a duration needs a unit)"
			}
			e.Err = err
			return e
		}
		v.SetInt(int64(d))
		return nil
	}
	plainOf := func() plain {
		if n.kind != scalarNode {
			return 255
		}
		if n.style != plainStyle {
			return kString
		}
		return plainKind(n.text)
	}
	switch v.Kind() {
	case reflect.String:
		if n.kind != scalarNode {
			return mismatch(n, path, "a string")
		}
		v.SetString(n.text) // any scalar, as written: version: 1.10 stays "1.10"
	case reflect.Bool:
		if plainOf() == kBool {
			v.SetBool(n.text[0] == 't' || n.text[0] == 'T')
			return nil
		}
		e := mismatch(n, path, "a boolean (true or false)")
		switch strings.ToLower(n.text) {
		case "yes", "no", "on", "off", "y", "n":
			if n.kind == scalarNode && n.style == plainStyle {
				e.Msg += "; YAML 1.2 booleans are only true and false (yes/no/on/off are strings)"
			}
		case "true", "false":
			e.Msg += "; remove the quotes"
		}
		return e
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if plainOf() != kInt {
			return mismatch(n, path, "an integer")
		}
		i, ok := toInt64(n.text)
		if !ok || v.OverflowInt(i) {
			return fail(n, path, "integer %s out of range for %s", n.text, v.Type())
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if plainOf() != kInt {
			return mismatch(n, path, "a non-negative integer")
		}
		neg, mag, _, rangeErr := parseInt(n.text)
		if (neg && mag != 0) || rangeErr || v.OverflowUint(mag) {
			return fail(n, path, "integer %s out of range for %s", n.text, v.Type())
		}
		v.SetUint(mag)
	case reflect.Float32, reflect.Float64:
		if k := plainOf(); k != kInt && k != kFloat {
			return mismatch(n, path, "a number")
		}
		f, ok := parseFloat(n.text)
		if !ok || (!math.IsInf(f, 0) && v.OverflowFloat(f)) {
			return fail(n, path, "number %s out of range for %s", n.text, v.Type())
		}
		v.SetFloat(f)
	case reflect.Struct:
		return decodeStruct(n, v, path)
	case reflect.Map:
		if n.kind != mappingNode {
			return mismatch(n, path, "a mapping")
		}
		t := v.Type()
		if t.Key().Kind() != reflect.String {
			return fail(n, path, "cannot decode into %s: map keys must be strings", t)
		}
		if v.IsNil() {
			v.Set(reflect.MakeMapWithSize(t, len(n.pairs)))
		}
		for _, p := range n.pairs {
			ev := reflect.New(t.Elem()).Elem()
			if err := decode(p.val, ev, keyPath(path, p.key)); err != nil {
				return err
			}
			v.SetMapIndex(reflect.ValueOf(p.key).Convert(t.Key()), ev)
		}
	case reflect.Slice:
		if n.kind != sequenceNode {
			return mismatch(n, path, "a sequence")
		}
		s := reflect.MakeSlice(v.Type(), len(n.items), len(n.items))
		for i, it := range n.items {
			if err := decode(it, s.Index(i), indexPath(path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
	case reflect.Array:
		if n.kind != sequenceNode {
			return mismatch(n, path, "a sequence")
		}
		if len(n.items) > v.Len() {
			return fail(n, path, "expected at most %d items, got %d", v.Len(), len(n.items))
		}
		for i := range v.Len() {
			if i >= len(n.items) {
				v.Index(i).SetZero()
			} else if err := decode(n.items[i], v.Index(i), indexPath(path, i)); err != nil {
				return err
			}
		}
	default:
		return fail(n, path, "cannot decode into the Go type %s", v.Type())
	}
	return nil
}

func decodeStruct(n *node, v reflect.Value, path string) error {
	if n.kind != mappingNode {
		return mismatch(n, path, "a mapping")
	}
	info := fieldsOf(v.Type())
	for _, p := range n.pairs {
		kp := keyPath(path, p.key)
		f, ok := info.byName[p.key]
		if !ok {
			valid := "none"
			if len(info.names) > 0 {
				valid = strings.Join(info.names, ", ")
			}
			return &Error{Line: p.line, Col: p.col, Path: kp, Msg: fmt.Sprintf("unknown key %q (valid keys: %s)", p.key, valid)}
		}
		fv := v
		for i, x := range f.index {
			if i > 0 && fv.Kind() == reflect.Pointer { // embedded *T
				if fv.IsNil() {
					fv.Set(reflect.New(fv.Type().Elem()))
				}
				fv = fv.Elem()
			}
			fv = fv.Field(x)
		}
		if err := decode(p.val, fv, kp); err != nil {
			return err
		}
	}
	return nil
}

type field struct {
	name  string
	index []int
	depth int
}

type structInfo struct {
	byName map[string]field
	names  []string // in declaration order
}

var structCache sync.Map // reflect.Type -> *structInfo

// fieldsOf lists the settable fields of a struct type by config name,
// promoting the fields of embedded (and `yaml:",inline"`) structs the way
// encoding/json does: the shallowest wins, equally deep duplicates vanish.
func fieldsOf(t reflect.Type) *structInfo {
	if c, ok := structCache.Load(t); ok {
		return c.(*structInfo)
	}
	var all []field
	collect(t, nil, 0, map[reflect.Type]bool{t: true}, &all)
	best := map[string]int{} // name -> count at min depth (negative: depth key below)
	minDepth := map[string]int{}
	for _, f := range all {
		d, seen := minDepth[f.name]
		switch {
		case !seen || f.depth < d:
			minDepth[f.name], best[f.name] = f.depth, 1
		case f.depth == d:
			best[f.name]++
		}
	}
	info := &structInfo{byName: map[string]field{}}
	for _, f := range all {
		if best[f.name] == 1 && minDepth[f.name] == f.depth {
			info.byName[f.name] = f
			info.names = append(info.names, f.name)
		}
	}
	c, _ := structCache.LoadOrStore(t, info)
	return c.(*structInfo)
}

func collect(t reflect.Type, index []int, depth int, seen map[reflect.Type]bool, out *[]field) {
	for i := range t.NumField() {
		sf := t.Field(i)
		name, inline, skip := tagName(sf)
		if skip {
			continue
		}
		idx := append(index[:len(index):len(index)], i)
		if (sf.Anonymous && name == "") || inline {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			promotable := ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(unmarshalType)
			if promotable && !seen[ft] && (sf.IsExported() || sf.Type.Kind() != reflect.Pointer) {
				seen[ft] = true
				collect(ft, idx, depth+1, seen, out)
				delete(seen, ft)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = lowerCamel(sf.Name)
		}
		*out = append(*out, field{name: name, index: idx, depth: depth})
	}
}

// tagName reads `yaml:"name,opts"`, falling back to `json:"name,opts"`.
func tagName(sf reflect.StructField) (name string, inline, skip bool) {
	if tag, ok := sf.Tag.Lookup("yaml"); ok {
		name, opts, hasOpts := strings.Cut(tag, ",")
		if name == "-" && !hasOpts {
			return "", false, true
		}
		for o := range strings.SplitSeq(opts, ",") {
			inline = inline || o == "inline"
		}
		if name != "" || inline {
			return name, inline, false
		}
	}
	if tag, ok := sf.Tag.Lookup("json"); ok {
		name, _, hasOpts := strings.Cut(tag, ",")
		if name == "-" && !hasOpts {
			return "", false, true
		}
		return name, false, false
	}
	return "", false, false
}

// lowerCamel turns a Go field name into its default key: OnUntrusted ->
// onUntrusted, ID -> id, URLPath -> urlPath.
func lowerCamel(s string) string {
	r := []rune(s)
	n := 0
	for n < len(r) && unicode.IsUpper(r[n]) {
		n++
	}
	if n > 1 && n < len(r) {
		n-- // the last capital starts the next word
	}
	for i := range n {
		r[i] = unicode.ToLower(r[i])
	}
	return string(r)
}
