package yamlite_test

import (
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// emit writes a generic tree (as Parse returns it) back as block-style YAML,
// double-quoting every string with strconv.Quote (whose escapes are a subset
// of YAML's). Used to check that Parse(emit(Parse(x))) == Parse(x).
func emit(v any) string {
	var b strings.Builder
	emitNode(&b, v, 0)
	return b.String()
}

func emitNode(b *strings.Builder, v any, indent int) {
	pad := strings.Repeat(" ", indent)
	child := func(c any) {
		switch c := c.(type) {
		case map[string]any:
			if len(c) > 0 {
				b.WriteString("\n")
				emitNode(b, c, indent+2)
				return
			}
		case []any:
			if len(c) > 0 {
				b.WriteString("\n")
				emitNode(b, c, indent+2)
				return
			}
		}
		b.WriteString(" " + scalar(c) + "\n")
	}
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			b.WriteString(pad + "{}\n")
			return
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteString(pad + strconv.Quote(k) + ":")
			child(v[k])
		}
	case []any:
		if len(v) == 0 {
			b.WriteString(pad + "[]\n")
			return
		}
		for _, it := range v {
			b.WriteString(pad + "-")
			child(it)
		}
	default:
		b.WriteString(pad + scalar(v) + "\n")
	}
}

func scalar(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "{}"
	case []any:
		return "[]"
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		switch {
		case math.IsNaN(v):
			return ".nan"
		case math.IsInf(v, 1):
			return ".inf"
		case math.IsInf(v, -1):
			return "-.inf"
		}
		s := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(s, ".e") {
			s += ".0"
		}
		return s
	case string:
		return strconv.Quote(v)
	}
	panic("unexpected type in tree")
}

// equal is reflect.DeepEqual except that NaN equals NaN.
func equal(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, v := range a {
			w, ok := bm[k]
			if !ok || !equal(v, w) {
				return false
			}
		}
		return true
	case []any:
		bs, ok := b.([]any)
		if !ok || len(a) != len(bs) {
			return false
		}
		for i := range a {
			if !equal(a[i], bs[i]) {
				return false
			}
		}
		return true
	case float64:
		if f, ok := b.(float64); ok && math.IsNaN(a) && math.IsNaN(f) {
			return true
		}
	}
	return reflect.DeepEqual(a, b)
}
