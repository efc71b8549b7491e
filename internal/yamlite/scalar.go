package yamlite

import (
	"math"
	"strconv"
	"strings"
)

// scalar kinds of the YAML 1.2 core schema, for plain scalars.
type plain uint8

const (
	kString plain = iota
	kNull
	kBool
	kInt
	kFloat
)

func plainKind(s string) plain {
	switch s {
	case "", "~", "null", "Null", "NULL":
		return kNull
	case "true", "True", "TRUE", "false", "False", "FALSE":
		return kBool
	case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN":
		return kFloat
	}
	if _, _, ok, _ := parseInt(s); ok {
		return kInt
	}
	if isFloat(s) {
		return kFloat
	}
	return kString
}

// parseInt parses a core-schema integer: [-+]?[0-9]+, 0x[0-9a-fA-F]+ or
// 0o[0-7]+. ok reports the syntax; rangeErr reports a value beyond uint64.
func parseInt(s string) (neg bool, mag uint64, ok, rangeErr bool) {
	digits, base := s, 10
	switch {
	case strings.HasPrefix(s, "0x"):
		digits, base = s[2:], 16
	case strings.HasPrefix(s, "0o"):
		digits, base = s[2:], 8
	case strings.HasPrefix(s, "-"), strings.HasPrefix(s, "+"):
		neg, digits = s[0] == '-', s[1:]
	}
	if digits == "" || digits[0] == '+' || digits[0] == '-' {
		return false, 0, false, false
	}
	mag, err := strconv.ParseUint(digits, base, 64)
	if err != nil {
		if ne, _ := err.(*strconv.NumError); ne != nil && ne.Err == strconv.ErrRange {
			return neg, 0, true, true
		}
		return false, 0, false, false
	}
	return neg, mag, true, false
}

// isFloat matches [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?.
func isFloat(s string) bool {
	i := 0
	digits := func() int {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - j
	}
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	n := digits()
	if i < len(s) && s[i] == '.' {
		i++
		if m := digits(); n == 0 && m == 0 {
			return false
		}
	} else if n == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// parseFloat parses a plain scalar of kind kInt or kFloat.
func parseFloat(s string) (float64, bool) {
	switch strings.ToLower(strings.TrimPrefix(s, "+")) {
	case ".inf":
		return math.Inf(1), true
	case "-.inf":
		return math.Inf(-1), true
	case ".nan":
		return math.NaN(), true
	}
	if neg, mag, ok, rangeErr := parseInt(s); ok {
		if rangeErr { // decimal beyond uint64 is still a fine float; 0x/0o is not
			f, err := strconv.ParseFloat(s, 64)
			return f, err == nil && !math.IsInf(f, 0)
		}
		f := float64(mag)
		if neg {
			f = -f
		}
		return f, !math.IsInf(f, 0)
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// toInt64 converts a core-schema integer to int64.
func toInt64(s string) (int64, bool) {
	neg, mag, ok, rangeErr := parseInt(s)
	switch {
	case !ok || rangeErr:
		return 0, false
	case neg && mag <= 1<<63:
		return int64(-mag), true
	case !neg && mag <= math.MaxInt64:
		return int64(mag), true
	}
	return 0, false
}

// generic converts a node to the tree Parse returns.
func generic(n *node, path string) (any, error) {
	switch n.kind {
	case mappingNode:
		m := make(map[string]any, len(n.pairs))
		for _, p := range n.pairs {
			v, err := generic(p.val, keyPath(path, p.key))
			if err != nil {
				return nil, err
			}
			m[p.key] = v
		}
		return m, nil
	case sequenceNode:
		s := make([]any, len(n.items))
		for i, it := range n.items {
			v, err := generic(it, indexPath(path, i))
			if err != nil {
				return nil, err
			}
			s[i] = v
		}
		return s, nil
	}
	if n.style != plainStyle {
		return n.text, nil
	}
	switch plainKind(n.text) {
	case kNull:
		return nil, nil
	case kBool:
		return n.text[0] == 't' || n.text[0] == 'T', nil
	case kInt:
		v, ok := toInt64(n.text)
		if !ok {
			return nil, fail(n, path, "integer %s does not fit in 64 bits", n.text)
		}
		return v, nil
	case kFloat:
		v, ok := parseFloat(n.text)
		if !ok {
			return nil, fail(n, path, "number %s is out of range", n.text)
		}
		return v, nil
	}
	return n.text, nil
}

func keyPath(path, key string) string {
	simple := key != ""
	for i := 0; i < len(key) && simple; i++ {
		c := key[i]
		simple = c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	switch {
	case !simple:
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func checkDup(n *node, path string) error {
	switch n.kind {
	case mappingNode:
		seen := make(map[string]int, len(n.pairs))
		for _, p := range n.pairs {
			kp := keyPath(path, p.key)
			if first, ok := seen[p.key]; ok {
				return &Error{Line: p.line, Col: p.col, Path: kp, Msg: "duplicate key " + strconv.Quote(p.key) + " (first set on line " + strconv.Itoa(first) + ")"}
			}
			seen[p.key] = p.line
			if err := checkDup(p.val, kp); err != nil {
				return err
			}
		}
	case sequenceNode:
		for i, it := range n.items {
			if err := checkDup(it, indexPath(path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}
