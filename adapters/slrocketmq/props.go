package slrocketmq

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// The client writes properties as name \x01 value \x02, repeated, and reads
// them back by splitting on those bytes.
const (
	nameValueSeparator = '\x01'
	propertySeparator  = '\x02'
	separators         = "\x01\x02"
)

// decodeProperties feeds the mark properties (any letter case) of props to
// a decoder. A mark property with an empty value is malformed.
func decodeProperties(props map[string]string) bus.Decoder {
	var d bus.Decoder
	for k, v := range props {
		if f := bus.FieldOf(k); f != bus.NoField {
			d.Add(f, v, true)
		}
	}
	return d
}

// smuggles reports whether a property whose key or value contains the
// client's separators would put a mark property on the wire: the client
// writes it verbatim, so a value "x\x02X-Shadowlane-Run\x01r1" arrives as
// two properties.
func smuggles(k, v string) bool {
	if !strings.ContainsAny(k, separators) && !strings.ContainsAny(v, separators) {
		return false
	}
	return itemsHaveMark(k + string(nameValueSeparator) + v)
}

// itemsHaveMark reports whether a property string has an item whose name
// (the text before its first \x01, or the whole item) is a mark property.
func itemsHaveMark(raw string) bool {
	for raw != "" {
		item := raw
		if i := strings.IndexByte(raw, propertySeparator); i >= 0 {
			item, raw = raw[:i], raw[i+1:]
		} else {
			raw = ""
		}
		if i := strings.IndexByte(item, nameValueSeparator); i >= 0 {
			item = item[:i]
		}
		if bus.IsMarkHeader(item) {
			return true
		}
	}
	return false
}

// errSmuggled is the reason a message is refused whose property would put a
// mark property on the wire.
var errSmuggled = errors.New("a property key or value contains the client's property separators and would write a mark property")

// checkProperties refuses (errSmuggled) properties one of which would
// smuggle a mark property onto the wire.
func checkProperties(props map[string]string) error {
	for k, v := range props {
		if smuggles(k, v) {
			return errSmuggled
		}
	}
	return nil
}

// writeProperties removes every mark property of msg (any letter case;
// props are its properties), then writes the properties of m.
func writeProperties(msg *primitive.Message, props map[string]string, m propagation.Mark) {
	for k := range props {
		if bus.IsMarkHeader(k) {
			msg.RemoveProperty(k)
		}
	}
	run, env := bus.Values(m)
	msg.WithProperty(bus.HeaderRun, run) // WithProperty ignores empty values
	msg.WithProperty(bus.HeaderEnv, env)
}

// batchItem layout, as the client's Message.Marshal writes each message of
// a batch body: total size (4), magic (4), body CRC (4), flag (4), body
// size (4), body, property size (2), properties.
const batchFixed = 4 + 4 + 4 + 4 + 4 + 2

// errBatch is wrapped by the error for a batch body that does not parse.
var errBatch = errors.New("batch body does not parse")

// rewriteBatch rewrites the properties of every message of a batch body:
// mark properties (any letter case) are removed and those of m written. It
// returns body itself when nothing changes (an unmarked batch without mark
// properties and without env), and an error for a body that does not parse
// or a property that would smuggle a mark property.
func rewriteBatch(body []byte, m propagation.Mark) ([]byte, error) {
	run, env := bus.Values(m)
	var mark string
	if run != "" {
		mark += bus.HeaderRun + string(nameValueSeparator) + run + string(propertySeparator)
	}
	if env != "" {
		mark += bus.HeaderEnv + string(nameValueSeparator) + env + string(propertySeparator)
	}
	var out []byte // nil until an item changes
	for rest, done := body, 0; len(rest) > 0; {
		if len(rest) < batchFixed {
			return nil, fmt.Errorf("%w: %d bytes left, shorter than an item", errBatch, len(rest))
		}
		total := binary.BigEndian.Uint32(rest)
		blen := binary.BigEndian.Uint32(rest[16:])
		if uint64(total) > uint64(len(rest)) || uint64(blen)+batchFixed > uint64(total) {
			return nil, fmt.Errorf("%w: item size %d, body size %d, %d bytes left", errBatch, total, blen, len(rest))
		}
		item := rest[:total]
		poff := 20 + int(blen)
		plen := int(binary.BigEndian.Uint16(item[poff:]))
		if poff+2+plen != int(total) {
			return nil, fmt.Errorf("%w: property size %d in an item of %d bytes", errBatch, plen, total)
		}
		props := string(item[poff+2:])
		kept, changed, err := stripMarks(props)
		if err != nil {
			return nil, err
		}
		if changed || mark != "" {
			if kept != "" && kept[len(kept)-1] != propertySeparator {
				kept += string(propertySeparator) // the client ends every property with one; a batch built otherwise must not glue the mark to its last
			}
			np := kept + mark
			if len(np) > 0xFFFF {
				return nil, fmt.Errorf("%w: properties of %d bytes", errBatch, len(np))
			}
			if out == nil {
				out = make([]byte, 0, len(body)+len(mark)*8)
				out = append(out, body[:done]...)
			}
			n := poff + 2 + len(np)
			out = binary.BigEndian.AppendUint32(out, uint32(n))
			out = append(out, item[4:poff]...)
			out = binary.BigEndian.AppendUint16(out, uint16(len(np)))
			out = append(out, np...)
		} else if out != nil {
			out = append(out, item...)
		}
		done += int(total)
		rest = rest[total:]
	}
	if out == nil {
		return body, nil
	}
	return out, nil
}

// stripMarks removes the items of a property string whose name is a mark
// property (any letter case); changed reports whether it removed any. The
// string is parsed as the client parses it. Items the client would skip
// (not exactly one \x01) are kept as they are, unless their name is a mark
// property.
func stripMarks(raw string) (kept string, changed bool, err error) {
	if !itemsHaveMark(raw) {
		return raw, false, nil
	}
	var b strings.Builder
	for _, item := range strings.Split(raw, string(propertySeparator)) {
		name := item
		if i := strings.IndexByte(item, nameValueSeparator); i >= 0 {
			name = item[:i]
		}
		if bus.IsMarkHeader(name) {
			changed = true
			continue
		}
		if item == "" {
			continue
		}
		b.WriteString(item)
		b.WriteByte(propertySeparator)
	}
	return b.String(), changed, nil
}
