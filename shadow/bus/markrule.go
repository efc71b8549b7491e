package bus

import (
	"strconv"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Mark applies the mark steps of the consume rule ([Rules.Consume], steps
// 1 to 3) to a message received from source whose mark headers d decoded:
// a malformed or conflicting mark header is refused (wrapping
// [shadow.ErrUnsupported], zero mark), a run mark on a production source
// is refused as an anomaly (wrapping [shadow.ErrBlocked], the decoded
// mark), and a message from a shadow source without a run header gets the
// fallback run. It counts nothing: adapters use it to show a message's
// mark (their Mark methods); [Rules.Consume] counts the refusals.
func (r *Rules) Mark(source string, d *Decoder) (propagation.Mark, *shadow.Error) {
	m, bad := d.Mark()
	onShadow := r.c.Naming.IsShadow(source)
	switch {
	case bad != NoField:
		return propagation.Mark{}, shadow.Refuse(r.c.Store, source, "malformed or conflicting "+bad.Name()+" header", propagation.Mark{}, shadow.ErrUnsupported)
	case m.Run != "" && !onShadow:
		return m, shadow.Refuse(r.c.Store, source, "run mark on the production "+r.c.Kind+" "+strconv.Quote(source)+" (an anomaly: marked messages go to shadow targets)", m, shadow.ErrBlocked)
	case onShadow && m.Run == "":
		m.Run = r.c.FallbackRun
	}
	return m, nil
}

// MarkOf is [Rules.Mark] as the adapters' Mark methods return it: a
// refusal is a non-nil error (a [*shadow.Error]) with the zero mark, and
// no refusal a nil error (never a nil *shadow.Error in an error).
func (r *Rules) MarkOf(source string, d *Decoder) (propagation.Mark, error) {
	m, refuse := r.Mark(source, d)
	if refuse != nil {
		return propagation.Mark{}, refuse
	}
	return m, nil
}
