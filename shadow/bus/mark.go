package bus

import (
	"strings"

	"github.com/shadowlane/shadowlane/propagation"
)

// Header names the mark travels under on every bus. They are written
// exactly like this; on read the comparison ignores ASCII case.
const (
	HeaderRun = "X-Shadowlane-Run"
	HeaderEnv = "X-Shadowlane-Env"
)

// DefaultFallbackRun is the run id given to a message received from a
// shadow target without a run header: the target alone proves it is
// load-test traffic, so it is never handled as production.
const DefaultFallbackRun = "unattributed"

// Field says which mark header a header key is.
type Field uint8

const (
	// NoField: not a mark header.
	NoField Field = iota
	// RunField: the run header ([HeaderRun], any letter case).
	RunField
	// EnvField: the env header ([HeaderEnv], any letter case).
	EnvField
)

// Name returns the canonical header name of f ("" for NoField).
func (f Field) Name() string {
	switch f {
	case RunField:
		return HeaderRun
	case EnvField:
		return HeaderEnv
	}
	return ""
}

// FieldOf returns the mark header key names, ignoring ASCII case. It does
// not allocate.
func FieldOf(key string) Field {
	if len(key) != len(HeaderRun) { // both names have the same length
		return NoField
	}
	switch {
	case strings.EqualFold(key, HeaderRun):
		return RunField
	case strings.EqualFold(key, HeaderEnv):
		return EnvField
	}
	return NoField
}

// FieldOfBytes is [FieldOf] for a key held in a byte slice (sarama). It
// does not allocate.
func FieldOfBytes(key []byte) Field {
	if len(key) != len(HeaderRun) {
		return NoField
	}
	var b [len(HeaderRun)]byte
	copy(b[:], key)
	return FieldOf(string(b[:]))
}

// IsMarkHeader reports whether key is a mark header in any letter case.
func IsMarkHeader(key string) bool { return FieldOf(key) != NoField }

// Decoder reads the mark of one message from its headers: feed it every
// mark header value with [Decoder.Add] (or every header with
// [Decoder.Header]), then call [Decoder.Mark]. The zero Decoder is ready.
//
// The rule, the same on every bus: header names match ignoring case; a
// header present several times (in one spelling or several) must carry the
// same value every time; a value must be a valid id
// ([propagation.ValidID]); a value of a non-string type (AMQP tables) is
// malformed. Anything else makes the whole mark malformed: the message must
// not be handled, neither as load test nor as production.
type Decoder struct {
	m        propagation.Mark
	run, env bool
	bad      Field
}

// Header feeds one header; keys that are not mark headers are ignored.
func (d *Decoder) Header(key, value string) {
	if f := FieldOf(key); f != NoField {
		d.Add(f, value, true)
	}
}

// Add feeds one value of mark header f. ok false says the value was not a
// string (it is malformed).
func (d *Decoder) Add(f Field, value string, ok bool) {
	if d.bad != NoField || f == NoField {
		return
	}
	var dst *string
	var seen *bool
	switch f {
	case RunField:
		dst, seen = &d.m.Run, &d.run
	case EnvField:
		dst, seen = &d.m.Env, &d.env
	default:
		return
	}
	if !ok || !propagation.ValidID(value) || (*seen && value != *dst) {
		d.bad = f
		return
	}
	*dst, *seen = value, true
}

// Malformed marks header f as malformed (a header present without a value,
// say).
func (d *Decoder) Malformed(f Field) {
	if d.bad == NoField && f != NoField {
		d.bad = f
	}
}

// Mark returns the decoded mark, or bad != NoField naming the first
// malformed header (and the zero mark).
func (d *Decoder) Mark() (m propagation.Mark, bad Field) {
	if d.bad != NoField {
		return propagation.Mark{}, d.bad
	}
	return d.m, NoField
}

// Values returns the header values to write for m: run is empty for an
// unmarked mark, env is empty when m has no (valid) env. Writers remove
// every existing mark header (see [IsMarkHeader]) first, then write run
// under [HeaderRun] and env under [HeaderEnv] when not empty.
func Values(m propagation.Mark) (run, env string) {
	if m.Env != "" && propagation.ValidID(m.Env) {
		env = m.Env
	}
	return m.Run, env
}
