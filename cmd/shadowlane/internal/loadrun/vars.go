package loadrun

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"text/template"
	"time"
)

// Vars are the per-request variables of the URL, header and body
// templates: {{.Seq}} (unique across the parts of a run), {{.Run}},
// {{.Part}}, {{.Target}}, {{.Unix}} (milliseconds), {{.ID}} (16 random hex
// digits), {{.Rand 100}} (a random integer in [0,100)), {{.UUID}}. Random
// values come from the scenario seed and the sequence number, so a
// request's values do not depend on timing and two parts never draw the
// same stream.
type Vars struct {
	Seq    uint64
	Run    string
	Part   int
	Target string
	Unix   int64
	rng    *rand.Rand
}

// ID is 16 random hex digits.
func (v *Vars) ID() string { return fmt.Sprintf("%016x", v.rng.Uint64()) }

// Rand is a random integer in [0, n) (0 when n <= 0).
func (v *Vars) Rand(n int) int {
	if n <= 0 {
		return 0
	}
	return v.rng.IntN(n)
}

// UUID is a random (version 4) UUID.
func (v *Vars) UUID() string {
	a, b := v.rng.Uint64(), v.rng.Uint64()
	a = a&^0xf000 | 0x4000
	b = b&^(0xc<<60) | 0x8<<60
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

func newVars(seed, seq uint64, run string, part int, target string, now time.Time) *Vars {
	return &Vars{Seq: seq, Run: run, Part: part, Target: target, Unix: now.UnixMilli(), rng: rand.New(rand.NewPCG(seed, seq))}
}

func execTmpl(t *template.Template, raw string, v *Vars) (string, error) {
	if t == nil {
		return raw, nil
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
