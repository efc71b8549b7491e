package slrocketmq

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// parseProperties parses a property string as the client does
// (primitive.Message.UnmarshalProperties): items split on \x02, name and
// value on \x01; an item with other than exactly one \x01 is skipped; a
// later item overwrites an earlier one.
func parseProperties(raw string) map[string]string {
	out := map[string]string{}
	for _, item := range strings.Split(raw, string(propertySeparator)) {
		kv := strings.Split(item, string(nameValueSeparator))
		if len(kv) == 2 {
			out[kv[0]] = kv[1]
		}
	}
	return out
}

// wantMark is the mark a message produced under m carries: the run, and
// the env when it is a valid id.
func wantMark(m propagation.Mark) propagation.Mark {
	run, env := bus.Values(m)
	return propagation.Mark{Run: run, Env: env}
}

// FuzzProperties: whatever properties a message carries, a message the
// produce interceptor lets through carries on the wire (the property
// string the client sends, parsed as the client parses it) exactly the
// mark it was sent under, and goes to the shadow topic exactly when it is
// marked.
func FuzzProperties(f *testing.F) {
	f.Add("k", "v", "X-Shadowlane-Run", "stale", "r1", "proj-a")
	f.Add("note", "x\x02X-Shadowlane-Run\x01r9", "k", "v", "", "")
	f.Add("x-shadowlane-env", "old", "X-SHADOWLANE-RUN", "", "r1", "bad env")
	f.Add("a\x01b", "c", "X-Shadowlane-Env\x01", "x", "", "proj-a")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, run, env string) {
		s, err := New(WithAll())
		if err != nil {
			t.Fatal(err)
		}
		m := propagation.Mark{Run: run, Env: env}
		msg := primitive.NewMessage("orders", nil)
		msg.WithProperty(k1, v1)
		msg.WithProperty(k2, v2)
		if err := s.prepare(m, msg); err != nil {
			return
		}
		if (msg.Topic == "orders_shadow") != (run != "") || (msg.Topic != "orders" && msg.Topic != "orders_shadow") {
			t.Fatalf("mark %v sent to %q", m, msg.Topic)
		}
		d := decodeProperties(parseProperties(msg.MarshallProperties()))
		got, bad := d.Mark()
		if bad != bus.NoField || got != wantMark(m) {
			t.Fatalf("sent under %v, the wire carries %v (bad %q): %q", m, got, bad.Name(), msg.MarshallProperties())
		}
	})
}

type item struct {
	body  []byte
	props string
}

// marshalBatch writes items as the client's Message.Marshal does.
func marshalBatch(items []item) []byte {
	var b []byte
	for _, it := range items {
		size := batchFixed + len(it.body) + len(it.props)
		b = binary.BigEndian.AppendUint32(b, uint32(size))
		b = binary.BigEndian.AppendUint32(b, 0)
		b = binary.BigEndian.AppendUint32(b, 0)
		b = binary.BigEndian.AppendUint32(b, 7) // flag
		b = binary.BigEndian.AppendUint32(b, uint32(len(it.body)))
		b = append(b, it.body...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(it.props)))
		b = append(b, it.props...)
	}
	return b
}

// unmarshalBatch reads a batch body back; ok false when it does not parse.
func unmarshalBatch(b []byte) (out []item, ok bool) {
	for len(b) > 0 {
		if len(b) < batchFixed {
			return nil, false
		}
		total := int(binary.BigEndian.Uint32(b))
		blen := int(binary.BigEndian.Uint32(b[16:]))
		if total > len(b) || blen+batchFixed > total || binary.BigEndian.Uint32(b[12:]) != 7 {
			return nil, false
		}
		plen := int(binary.BigEndian.Uint16(b[20+blen:]))
		if 22+blen+plen != total {
			return nil, false
		}
		out = append(out, item{body: b[20 : 20+blen], props: string(b[22+blen : total])})
		b = b[total:]
	}
	return out, true
}

// FuzzBatch: a batch body rewritten under a mark keeps every message and
// body, and every message carries exactly that mark on the wire; arbitrary
// bytes never panic.
func FuzzBatch(f *testing.F) {
	f.Add([]byte("b1"), "k\x01v\x02", []byte("b2"), "X-Shadowlane-Run\x01stale\x02", "r1", "proj-a", []byte(nil))
	f.Add([]byte(""), "", []byte("x"), "x-shadowlane-env\x01a\x02\x02junk\x02", "", "proj-b", []byte{0, 0, 0, 30})
	f.Add([]byte("b"), "X-Shadowlane-Env\x01a\x01b\x02", []byte(""), "k\x01", "", "", []byte("garbage"))
	f.Fuzz(func(t *testing.T, b1 []byte, p1 string, b2 []byte, p2, run, env string, raw []byte) {
		m := propagation.Mark{Run: run, Env: env}
		if _, err := rewriteBatch(raw, m); err == nil && len(raw) > 0 {
			if _, ok := unmarshalBatch(raw); !ok {
				// rewriteBatch accepted what the reader refuses: only the
				// flag check of the reader differs, so compare layouts
				if !layoutOK(raw) {
					t.Fatalf("accepted a body that does not parse: %q", raw)
				}
			}
		}
		if len(p1) > 0xFFF0 || len(p2) > 0xFFF0 || (run != "" && m.Validate() != nil) {
			return // the produce rule refuses an invalid run before the batch is sent
		}
		in := []item{{b1, p1}, {b2, p2}}
		out, err := rewriteBatch(marshalBatch(in), m)
		if err != nil {
			t.Fatalf("a well-formed batch refused: %v", err)
		}
		items, ok := unmarshalBatch(out)
		if !ok || len(items) != len(in) {
			t.Fatalf("rewritten batch does not parse: %q", out)
		}
		for i, it := range items {
			if !bytes.Equal(it.body, in[i].body) {
				t.Fatalf("body %d changed: %q -> %q", i, in[i].body, it.body)
			}
			d := decodeProperties(parseProperties(it.props))
			got, bad := d.Mark()
			if bad != bus.NoField || got != wantMark(m) {
				t.Fatalf("item %d sent under %v carries %v (bad %q): %q", i, m, got, bad.Name(), it.props)
			}
		}
	})
}

func layoutOK(b []byte) bool {
	for len(b) > 0 {
		if len(b) < batchFixed {
			return false
		}
		total := int(binary.BigEndian.Uint32(b))
		blen := int(binary.BigEndian.Uint32(b[16:]))
		if total > len(b) || blen+batchFixed > total || 22+blen+int(binary.BigEndian.Uint16(b[20+blen:])) != total {
			return false
		}
		b = b[total:]
	}
	return true
}
