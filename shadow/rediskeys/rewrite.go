package rediskeys

import (
	"fmt"
	"strconv"
	"strings"

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

// Result describes a rewritten command.
type Result struct {
	// Command is the table entry (never nil on success).
	Command *Command
	// Reply says whether the reply carries shadow names to give back.
	Reply Reply
	// Keys are the positions of the renamed keys (with their spec flags).
	Keys []Pos
	// Saved holds the replaced arguments; Restore puts them back.
	Saved []Saved
	// Append, when not nil, are arguments the command needs at its end (a
	// MATCH for SCAN, a pattern for PUBSUB CHANNELS) so that it sees only
	// shadow names. The caller must send args followed by Append.
	Append []any
}

// Restore puts the original arguments back into args.
func (r *Result) Restore(args []any) {
	for k := len(r.Saved) - 1; k >= 0; k-- {
		if s := r.Saved[k]; s.Index < len(args) {
			args[s.Index] = s.Value
		}
	}
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
		ps, err := c.KeyPositions(args, nil)
		if err != nil {
			return Result{}, refuse(c.Name, "cannot find every key: "+err.Error(), shadow.ErrUnsupported)
		}
		res.Keys = ps
	next:
		for _, p := range ps {
			for _, i := range names {
				if i == p.Index {
					continue next
				}
			}
			names = append(names, p.Index)
		}
	} else if pol.kind == kindSort {
		res.Keys = []Pos{{Index: 1, Flags: KeyRO}}
		for _, i := range names[1:] {
			res.Keys = append(res.Keys, Pos{Index: i, Flags: KeyOW})
		}
	}
	if !rename {
		return res, nil
	}
	// Compute every new value first: a refusal leaves args untouched.
	newVals := make([]any, 0, len(names)+len(patterns))
	for _, i := range names {
		v, ok := rw.shadowArg(args[i])
		if !ok {
			return Result{}, refuse(c.Name, fmt.Sprintf("argument %d of type %T cannot be renamed", i, args[i]), shadow.ErrUnsupported)
		}
		newVals = append(newVals, v)
	}
	for _, i := range patterns {
		s, ok := Arg(args[i])
		if !ok {
			return Result{}, refuse(c.Name, fmt.Sprintf("pattern argument %d of type %T", i, args[i]), shadow.ErrUnsupported)
		}
		newVals = append(newVals, rw.ShadowPattern(s))
	}
	res.Saved = make([]Saved, 0, len(newVals))
	for k, i := range append(names, patterns...) {
		res.Saved = append(res.Saved, Saved{Index: i, Value: args[i]})
		args[i] = newVals[k]
	}
	return res, nil
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

func (rw *Rewriter) shadowArg(a any) (string, bool) {
	switch v := a.(type) {
	case string:
		return rw.Naming.Shadow(v), true
	case []byte:
		return rw.Naming.Shadow(string(v)), true
	}
	if n, ok := intArg(a); ok {
		return rw.Naming.Shadow(strconv.FormatInt(n, 10)), true
	}
	return "", false
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
