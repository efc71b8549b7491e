package rediskeys

import (
	"encoding"
	"net"
	"reflect"
	"strconv"
	"time"
)

// AppendArg appends to dst the bytes go-redis sends for the command
// argument a, and reports whether go-redis can send a at all. It follows
// go-redis v9's argument writer (internal/proto, Writer.WriteArg) case by
// case, in its order (its numeric cases, value and pointer, taken as two
// groups):
//
//   - nil: the empty string; string, *string (nil: empty), []byte and
//     net.IP: their bytes;
//   - int, int8...int64, uint, uint8...uint64, uintptr and pointers to them
//     (nil: 0): decimal, unsigned types as unsigned (a uint64 >= 2^63 stays
//     positive); time.Duration (and *time.Duration): its nanoseconds;
//   - float32, float64 and pointers: strconv's 'f' format with the shortest
//     precision of the value as a float64;
//   - bool, *bool: 1 or 0;
//   - time.Time, *time.Time (nil: the zero time): RFC 3339 with nanoseconds;
//   - any other encoding.BinaryMarshaler: what MarshalBinary returns (false
//     when it fails or panics).
//
// Anything else go-redis refuses to send ("can't marshal"): false. A named
// type over string or []byte that does not implement
// encoding.BinaryMarshaler is such a type: go-redis's type switch matches
// exact types.
func AppendArg(dst []byte, a any) ([]byte, bool) {
	switch v := a.(type) {
	case nil:
		return dst, true
	case string:
		return append(dst, v...), true
	case *string:
		if v == nil {
			return dst, true
		}
		return append(dst, *v...), true
	case []byte:
		return append(dst, v...), true
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, uintptr, float32, float64, time.Duration:
		return appendNumber(dst, reflect.ValueOf(v)), true
	case *int, *int8, *int16, *int32, *int64, *uint, *uint8, *uint16, *uint32, *uint64, *uintptr, *float32, *float64, *time.Duration:
		if p := reflect.ValueOf(v); !p.IsNil() {
			return appendNumber(dst, p.Elem()), true
		}
		return append(dst, '0'), true
	case bool:
		return appendBool(dst, v), true
	case *bool:
		return appendBool(dst, v != nil && *v), true
	case time.Time:
		return v.AppendFormat(dst, time.RFC3339Nano), true
	case *time.Time:
		if v == nil {
			return time.Time{}.AppendFormat(dst, time.RFC3339Nano), true
		}
		return v.AppendFormat(dst, time.RFC3339Nano), true
	case encoding.BinaryMarshaler:
		b, ok := marshalBinary(v)
		return append(dst, b...), ok
	case net.IP:
		return append(dst, v...), true
	}
	return dst, false
}

// appendNumber appends the text of v, a number of one of the exact types
// AppendArg lists: an integer in decimal (unsigned types as unsigned,
// time.Duration as nanoseconds), a float in strconv's 'f' format with the
// shortest precision of the value as a float64.
func appendNumber(dst []byte, v reflect.Value) []byte {
	switch {
	case v.CanInt():
		return strconv.AppendInt(dst, v.Int(), 10)
	case v.CanUint():
		return strconv.AppendUint(dst, v.Uint(), 10)
	}
	return strconv.AppendFloat(dst, v.Float(), 'f', -1, 64)
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, '1')
	}
	return append(dst, '0')
}

// marshalBinary calls m.MarshalBinary; a panic (a nil pointer receiver)
// counts as a failure.
func marshalBinary(m encoding.BinaryMarshaler) (b []byte, ok bool) {
	defer func() {
		if recover() != nil {
			b, ok = nil, false
		}
	}()
	b, err := m.MarshalBinary()
	return b, err == nil
}

// plainNumber reports whether a is a value (not a pointer) that go-redis
// writes as a decimal number: an integer, a float, a bool or a
// time.Duration. Its text starts with a digit, '-', '+' or 'N' and ends
// with a digit, 'f' (±Inf) or 'N' (NaN).
func plainNumber(a any) bool {
	switch a.(type) {
	case int, int64, float64, int32, uint64, uint32, uint, float32, int16, int8, uint16, uint8, uintptr, bool, time.Duration:
		return true
	}
	return false
}

// numbersMayShadow reports whether the text of a plain number could be a
// shadow name under the naming with prefix p and suffix s (not both
// empty): only for a prefix that starts, and a suffix that ends, the way
// a number's text can.
func numbersMayShadow(p, s string) bool {
	if p != "" {
		switch c := p[0]; {
		case '0' <= c && c <= '9', c == '-', c == '+', c == 'N':
		default:
			return false
		}
	}
	if s != "" {
		switch c := s[len(s)-1]; {
		case '0' <= c && c <= '9', c == 'f', c == 'N':
		default:
			return false
		}
	}
	return true
}

// argIs reports whether the text of argument a equals the keyword kw,
// ignoring ASCII case, without allocating for strings, []byte, *string and
// numbers.
func argIs(a any, kw string) bool {
	switch v := a.(type) {
	case string:
		return equalFold(v, kw)
	case []byte:
		return len(v) == len(kw) && equalFold(string(v), kw)
	case *string:
		return v != nil && equalFold(*v, kw)
	}
	if plainNumber(a) {
		return false // keywords are words
	}
	var buf [64]byte
	b, ok := AppendArg(buf[:0], a)
	return ok && len(b) == len(kw) && equalFold(string(b), kw)
}
