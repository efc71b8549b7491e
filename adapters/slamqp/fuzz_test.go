package slamqp

import (
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// FuzzTableMark: a mark read from an arbitrary table is refused or valid,
// and survives a write/read round trip.
func FuzzTableMark(f *testing.F) {
	f.Add("X-Shadowlane-Run", "r1", "X-Shadowlane-Env", "proj-a", false)
	f.Add("x-shadowlane-run", "r 1", "X-SHADOWLANE-RUN", "r1", true)
	f.Add("x-shadowlane-env", "", "k", "v", false)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, bytes2 bool) {
		tb := amqp091.Table{k1: v1}
		if bytes2 {
			tb[k2] = []byte(v2)
		} else {
			tb[k2] = v2
		}
		d := decode(tb)
		m, bad := d.Mark()
		if bad != 0 {
			if !m.IsZero() {
				t.Fatalf("refused table gave mark %v", m)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted invalid mark: %v", err)
		}
		msg := &amqp091.Publishing{Headers: tb}
		setHeaders(msg, m)
		d = decode(msg.Headers)
		if back, bad := d.Mark(); bad != 0 || back != m {
			t.Fatalf("round trip %v -> %v %q", m, back, bad)
		}
	})
}
