package rediskeys

import (
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"github.com/shadowlane/shadowlane/shadow"
)

// Store is the store name in every [shadow.Error] of this package.
const Store = "redis"

// Rewriter decides what happens to one Redis command of load-test traffic
// ([Rewriter.Rewrite]) and guards production commands against shadow names
// ([Rewriter.Guard]). The zero Rewriter has no shadow target: it refuses
// every marked command with [shadow.ErrNoShadowTarget].
type Rewriter struct {
	// Naming renames keys, patterns and channels of marked commands (key
	// mode). The zero Naming renames nothing, which is only allowed with
	// Dedicated.
	Naming shadow.Naming
	// Dedicated: marked commands run on a separate shadow instance or
	// database (instance mode), so commands over the whole keyspace (SCAN,
	// KEYS, RANDOMKEY, DBSIZE, SORT BY) only see shadow data.
	Dedicated bool
	// StrictScripts refuses EVAL/EVALSHA/FCALL for marked traffic, since a
	// script may touch keys it did not declare.
	StrictScripts bool
}

// Saved is one argument the rewriter replaced, with its original value.
type Saved struct {
	Index int
	Value any
}

// Result describes a rewritten command. It keeps the first key and the
// first replaced argument inline, so that a single-key command costs no
// allocation beyond its shadow name.
type Result struct {
	// Command is the table entry (never nil on success).
	Command *Command
	// Reply says whether the reply carries shadow names to give back.
	Reply Reply
	// Append, when not nil, are arguments the command needs at its end (a
	// MATCH for SCAN, a pattern for PUBSUB CHANNELS) so that it sees only
	// shadow names. The caller must send args followed by Append.
	Append []any

	key0   Pos   // the first key position, when nkeys > 0
	keys   []Pos // every key position, when nkeys > 1
	nkeys  int
	saved0 Saved   // the first replaced argument, when nsaved > 0
	saved  []Saved // the others
	nsaved int
}

// NumKeys returns the number of key positions of the command (with
// [Result.Key]: the renamed keys, or with a dedicated instance the keys
// the command touches there).
func (r *Result) NumKeys() int { return r.nkeys }

// Key returns the i-th key position (0 <= i < NumKeys) with its spec
// flags.
func (r *Result) Key(i int) Pos {
	if r.nkeys == 1 {
		return r.key0
	}
	return r.keys[i]
}

// Restore puts the original arguments back into args.
func (r *Result) Restore(args []any) {
	for k := len(r.saved) - 1; k >= 0; k-- {
		if s := r.saved[k]; s.Index < len(args) {
			args[s.Index] = s.Value
		}
	}
	if r.nsaved > 0 && r.saved0.Index < len(args) {
		args[r.saved0.Index] = r.saved0.Value
	}
}

func (r *Result) setKeys(ps []Pos) {
	r.nkeys = len(ps)
	switch len(ps) {
	case 0:
	case 1:
		r.key0 = ps[0]
	default:
		r.keys = ps
	}
}

func (r *Result) save(i int, v any) {
	if r.nsaved == 0 {
		r.saved0 = Saved{Index: i, Value: v}
	} else {
		r.saved = append(r.saved, Saved{Index: i, Value: v})
	}
	r.nsaved++
}

// Renames reports whether marked commands are renamed (key mode).
func (rw *Rewriter) Renames() bool { return rw.Naming.Validate() == nil }

// CommandName returns a low-cardinality name for args' command, for
// counters and errors: the table name, or "unknown".
func CommandName(args []any) string {
	if c := FindCommand(args); c != nil {
		return c.Name
	}
	return "unknown"
}

// Rewrite renames, in place, every key, pattern and channel of the marked
// command args (args[0] is the command name), or refuses it with a
// [*shadow.Error] (Store "redis"). Nothing is changed when it refuses. The
// caller restores args with [Result.Restore] after the command ran.
func (rw *Rewriter) Rewrite(args []any) (Result, error) {
	if len(args) == 0 {
		return Result{}, refuse("", "empty command", shadow.ErrUnsupported)
	}
	c := FindCommand(args)
	if c == nil {
		name, _ := Arg(args[0])
		if len(args) > 1 {
			if sub, ok := Arg(args[1]); ok && Lookup(name) != nil {
				name += " " + sub
			}
		}
		return Result{}, refuse(name, "command not in the shadow command table", shadow.ErrUnsupported)
	}
	rename := rw.Renames()
	if !rename && !rw.Dedicated {
		return Result{}, refuse(c.Name, "no shadow key naming and no shadow instance configured", shadow.ErrNoShadowTarget)
	}
	if rename && rw.Naming.IsShadow("") {
		// Should not happen (Validate), but an empty name must never shadow.
		return Result{}, refuse(c.Name, "shadow naming does not change names", shadow.ErrNoShadowTarget)
	}
	pol, hasPol := policies[c.Name]
	if !hasPol && len(c.KeySpecs) == 0 {
		if c.Subcommands != nil {
			return Result{}, refuse(c.Name, "container command without a known subcommand", shadow.ErrUnsupported)
		}
		return Result{}, refuse(c.Name, "command has no key positions and is not allowed for load-test traffic", shadow.ErrBlocked)
	}
	if !hasPol && c.Flags&(FlagPatternArg|FlagChannelArg) != 0 {
		return Result{}, refuse(c.Name, "command has pattern or channel arguments without a shadow policy", shadow.ErrUnsupported)
	}
	res := Result{Command: c, Reply: pol.reply}
	var names []int    // positions of key/channel names to rename
	var patterns []int // positions of patterns to rename
	switch pol.kind {
	case kindAllow:
		return res, nil
	case kindBlock:
		return Result{}, refuse(c.Name, pol.rule, shadow.ErrBlocked)
	case kindDedicatedOnly:
		if !rw.Dedicated {
			return Result{}, refuse(c.Name, pol.rule, shadow.ErrBlocked)
		}
	case kindScript:
		if rw.StrictScripts {
			return Result{}, refuse(c.Name, "strict scripts: a script may touch keys it does not declare", shadow.ErrBlocked)
		}
	case kindCopy:
		for i := 3; i < len(args); i++ {
			if s, ok := Arg(args[i]); ok && equalFold(s, "DB") {
				return Result{}, refuse(c.Name, "COPY ... DB writes into another database", shadow.ErrBlocked)
			}
		}
	case kindKeys:
		if len(args) != 2 {
			return Result{}, refuse(c.Name, "KEYS takes one pattern", shadow.ErrUnsupported)
		}
		patterns = append(patterns, 1)
	case kindScan:
		found := false
		i := 2
		for ; i+1 < len(args); i += 2 {
			tok, ok := Arg(args[i])
			if !ok {
				return Result{}, refuse(c.Name, "SCAN option is not a string", shadow.ErrUnsupported)
			}
			if equalFold(tok, "MATCH") {
				patterns = append(patterns, i+1)
				found = true
			}
		}
		if i != len(args) {
			return Result{}, refuse(c.Name, "SCAN options come in pairs", shadow.ErrUnsupported)
		}
		if !found && rename {
			res.Append = []any{"match", rw.ShadowPattern("*")}
		}
	case kindSort:
		if err := rw.sortArgs(c, args, &names); err != nil {
			return Result{}, err
		}
	case kindChannels1:
		for i := 1; i < len(args); i++ {
			names = append(names, i)
		}
	case kindChannel1:
		if len(args) != 3 {
			return Result{}, refuse(c.Name, "PUBLISH takes a channel and a message", shadow.ErrUnsupported)
		}
		names = append(names, 1)
	case kindPatterns1:
		for i := 1; i < len(args); i++ {
			patterns = append(patterns, i)
		}
	case kindPubsubPattern:
		switch len(args) {
		case 2:
			if rename {
				res.Append = []any{rw.ShadowPattern("*")}
			}
		case 3:
			patterns = append(patterns, 2)
		default:
			return Result{}, refuse(c.Name, "takes at most one pattern", shadow.ErrUnsupported)
		}
	case kindPubsubChannels:
		for i := 2; i < len(args); i++ {
			names = append(names, i)
		}
	}
	if len(c.KeySpecs) > 0 && pol.kind != kindSort {
		if p := c.single; p > 0 && p < len(args) {
			// One key at a fixed position (GET, SET, HSET...): no slice.
			res.key0, res.nkeys = Pos{Index: p, Flags: c.KeySpecs[0].Flags}, 1
		} else {
			var buf [8]Pos // copied out: stays on the stack
			ps, err := c.KeyPositions(args, buf[:0])
			if err != nil {
				return Result{}, refuse(c.Name, "cannot find every key: "+err.Error(), shadow.ErrUnsupported)
			}
			switch res.nkeys = len(ps); {
			case len(ps) == 1:
				res.key0 = ps[0]
			case len(ps) > 1:
				res.keys = append([]Pos(nil), ps...)
			}
		}
	} else if pol.kind == kindSort {
		ps := make([]Pos, 0, len(names))
		ps = append(ps, Pos{Index: 1, Flags: KeyRO})
		for _, i := range names[1:] {
			ps = append(ps, Pos{Index: i, Flags: KeyOW})
		}
		res.setKeys(ps)
		names = nil // the keys
	}
	if !rename {
		return res, nil
	}
	if err := rw.rename(&res, c, args, names, patterns); err != nil {
		return Result{}, err
	}
	return res, nil
}

// rename renames, in args, the keys of res and the names and patterns at
// the given positions, each position once, saving the originals in res.
// On a refusal args are left as they were. The work is linear in the
// number of arguments.
func (rw *Rewriter) rename(res *Result, c *Command, args []any, names, patterns []int) error {
	// Check first that every argument can be rendered: a refusal leaves
	// args untouched.
	for k := 0; k < res.nkeys; k++ {
		if i := res.Key(k).Index; !renderable(args[i]) {
			return refuse(c.Name, fmt.Sprintf("argument %d of type %T cannot be renamed", i, args[i]), shadow.ErrUnsupported)
		}
	}
	for _, i := range names {
		if !renderable(args[i]) {
			return refuse(c.Name, fmt.Sprintf("argument %d of type %T cannot be renamed", i, args[i]), shadow.ErrUnsupported)
		}
	}
	for _, i := range patterns {
		if !renderable(args[i]) {
			return refuse(c.Name, fmt.Sprintf("pattern argument %d of type %T", i, args[i]), shadow.ErrUnsupported)
		}
	}
	// A position named twice (by two key specs, or by a key spec and the
	// policy) is renamed once. Several key specs or an extra list are rare:
	// only then a bit set of the argument positions is kept.
	var seen bitset
	dedup := len(c.KeySpecs) > 1 || (res.nkeys > 0 && len(names)+len(patterns) > 0)
	if dedup {
		seen = newBitset(len(args))
	}
	var arena []byte // the shadow names of a multi-key command, in one allocation
	if n := res.nkeys + len(names) + len(patterns); n > 1 {
		res.saved = make([]Saved, 0, n-1)
		size := 0
		for k := 0; k < res.nkeys; k++ {
			size += textLen(args[res.Key(k).Index])
		}
		for _, i := range names {
			size += textLen(args[i])
		}
		arena = make([]byte, 0, size+(res.nkeys+len(names))*(len(rw.Naming.Prefix)+len(rw.Naming.Suffix)))
	}
	one := func(i int, pattern bool) error {
		if dedup && !seen.add(i) {
			return nil
		}
		var v any
		ok := true
		if pattern {
			v, ok = rw.shadowArg(args[i], true)
		} else if t, isText := text(args[i]); isText && len(arena)+len(t)+len(rw.Naming.Prefix)+len(rw.Naming.Suffix) <= cap(arena) {
			start := len(arena)
			arena = append(append(append(arena, rw.Naming.Prefix...), t...), rw.Naming.Suffix...)
			// The arena never grows (checked above) and is never written
			// again where a name was taken.
			v = unsafe.String(&arena[start], len(arena)-start)
		} else {
			v, ok = rw.shadowArg(args[i], false)
		}
		if !ok {
			// MarshalBinary failed: undo what was renamed.
			res.Restore(args)
			return refuse(c.Name, fmt.Sprintf("argument %d of type %T cannot be rendered", i, args[i]), shadow.ErrUnsupported)
		}
		res.save(i, args[i])
		args[i] = v
		return nil
	}
	for k := 0; k < res.nkeys; k++ {
		if err := one(res.Key(k).Index, false); err != nil {
			return err
		}
	}
	for _, i := range names {
		if err := one(i, false); err != nil {
			return err
		}
	}
	for _, i := range patterns {
		if err := one(i, true); err != nil {
			return err
		}
	}
	return nil
}

// text returns the bytes of a string or []byte argument.
func text(a any) (string, bool) {
	switch v := a.(type) {
	case string:
		return v, true
	case []byte:
		return unsafe.String(unsafe.SliceData(v), len(v)), true // only read
	}
	return "", false
}

// textLen is the length of a string or []byte argument, 0 otherwise.
func textLen(a any) int {
	t, _ := text(a)
	return len(t)
}

// bitset is a set of argument positions: one word on the stack for short
// argvs, a slice for long ones.
type bitset struct {
	w0   uint64
	more []uint64
}

func newBitset(n int) bitset {
	if n <= 64 {
		return bitset{}
	}
	return bitset{more: make([]uint64, (n+63)/64)}
}

// add adds i and reports whether it was new.
func (b *bitset) add(i int) bool {
	w, bit := &b.w0, uint64(1)<<(i%64)
	if b.more != nil {
		w = &b.more[i/64]
	}
	if *w&bit != 0 {
		return false
	}
	*w |= bit
	return true
}

// renderable reports whether go-redis can send a (see [AppendArg]),
// without rendering it.
func renderable(a any) bool {
	switch a.(type) {
	case string, []byte, nil, *string:
		return true
	}
	if plainNumber(a) {
		return true
	}
	_, ok := AppendArg(nil, a) // rare types; MarshalBinary may fail later too
	return ok
}

// sortArgs checks SORT's options: BY and GET patterns read keys named by
// the data (refused unless the instance is dedicated or the pattern reads
// nothing), STORE names a key.
func (rw *Rewriter) sortArgs(c *Command, args []any, names *[]int) error {
	if len(args) < 2 {
		return refuse(c.Name, "SORT needs a key", shadow.ErrUnsupported)
	}
	*names = append(*names, 1)
	free := rw.Dedicated && !rw.Renames()
	for i := 2; i < len(args); {
		tok, ok := Arg(args[i])
		if !ok {
			return refuse(c.Name, "SORT option is not a string", shadow.ErrUnsupported)
		}
		switch strings.ToUpper(tok) {
		case "ASC", "DESC", "ALPHA":
			i++
		case "LIMIT":
			i += 3
		case "BY", "GET":
			if i+1 >= len(args) {
				return refuse(c.Name, "SORT "+tok+" needs a pattern", shadow.ErrUnsupported)
			}
			p, ok := Arg(args[i+1])
			reads := !ok || (equalFold(tok, "BY") && strings.Contains(p, "*")) || (equalFold(tok, "GET") && p != "#")
			if reads && !free {
				return refuse(c.Name, "SORT BY/GET patterns read keys named by the data", shadow.ErrBlocked)
			}
			i += 2
		case "STORE":
			if c.Name != "SORT" || i+1 >= len(args) {
				return refuse(c.Name, "bad STORE", shadow.ErrUnsupported)
			}
			*names = append(*names, i+1)
			i += 2
		default:
			return refuse(c.Name, "unknown SORT option "+strconv.Quote(tok), shadow.ErrUnsupported)
		}
	}
	return nil
}

// shadowArg returns the shadow name (or, for a pattern, the shadow
// pattern) of argument a, rendered as go-redis would send it.
func (rw *Rewriter) shadowArg(a any, pattern bool) (any, bool) {
	var s string
	switch v := a.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		var buf [64]byte
		b, ok := AppendArg(buf[:0], a)
		if !ok {
			return nil, false
		}
		s = string(b)
	}
	if pattern {
		return rw.ShadowPattern(s), true
	}
	return rw.Naming.Shadow(s), true
}

// ShadowPattern returns the glob pattern that matches the shadow names of
// the names p matches: the naming's prefix and suffix, glob-escaped, around
// p.
func (rw *Rewriter) ShadowPattern(p string) string {
	return globEscape(rw.Naming.Prefix) + p + globEscape(rw.Naming.Suffix)
}

func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ProductionName returns the name the application used for the shadow name
// s, and whether s was a shadow name.
func (rw *Rewriter) ProductionName(s string) (string, bool) {
	if !rw.Renames() {
		return s, false
	}
	return rw.Naming.Production(s)
}

func guardErr(cmd string, arg any) error {
	name, _ := Arg(arg)
	return &shadow.Error{Store: Store, Target: name, Rule: "production " + cmd + " touched a shadow name (two-way guard)", Err: shadow.ErrShadowFromProduction}
}

func refuse(target, rule string, err error) error {
	return &shadow.Error{Store: Store, Target: target, Rule: rule, Err: err}
}

// ConnectionSetup reports whether args is a command that sets up the
// connection it runs on (HELLO, AUTH, SELECT, READONLY, READWRITE, CLIENT
// SETNAME/SETINFO/TRACKING/MAINT_NOTIFICATIONS). go-redis sends these
// through hooks while it opens a connection, with the context of the
// command that needed the connection, so a hook must let them reach that
// connection unchanged. They touch no data.
func ConnectionSetup(args []any) bool {
	if len(args) == 0 {
		return false
	}
	name, _ := Arg(args[0])
	switch {
	case equalFold(name, "HELLO"), equalFold(name, "AUTH"), equalFold(name, "SELECT"),
		equalFold(name, "READONLY"), equalFold(name, "READWRITE"):
		return true
	case equalFold(name, "CLIENT") && len(args) > 1:
		sub, _ := Arg(args[1])
		return equalFold(sub, "SETNAME") || equalFold(sub, "SETINFO") ||
			equalFold(sub, "TRACKING") || equalFold(sub, "MAINT_NOTIFICATIONS")
	}
	return false
}
