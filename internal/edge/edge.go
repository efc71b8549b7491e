package edge

// The hooks are typed any because package shadowlane imports this one;
// each is set once, while package shadowlane initialises, so an importer
// asserts it to the type written here in a package-level variable (an
// adapter's own initialisation runs after shadowlane's) and pays no
// assertion per call.
var (
	// LowerKeys is a func(*shadowlane.Entry): Runtime.Admit reads the
	// entry's carrier with lowercase keys (gRPC metadata).
	LowerKeys any

	// TagHeader is a func(*shadowlane.Runtime) string: the lowercase name
	// of routing.tagSource's header source, or "" when none is configured.
	// An entry that hands Runtime.Admit an empty carrier for calls without
	// mark keys (to skip the look-ups) must still pass the real carrier
	// when this header is present, or an edge would never read the tag.
	TagHeader any
)
