package rediskeys

import (
	"sort"
	"strings"
)

// Guard checks an unmarked (production) command: it returns a
// [*shadow.Error] wrapping [shadow.ErrShadowFromProduction] when a key,
// channel or pattern of args is a shadow name. Commands the table does not
// know pass (production traffic is never broken by an old table). The
// returned Reply is ReplyNameList or ReplyScan for commands whose reply
// may list shadow names, which the caller should filter out. Guard does not
// allocate for commands that pass.
//
// Fast path: the guard can only refuse a command when one of its
// arguments is a shadow name, so Guard first scans the string and []byte
// arguments after the command name with a byte compare against the
// naming's prefix and suffix. Only when one matches does it resolve the
// command in the table and look at key positions (the reference guard,
// which decides whether that argument is a key, a channel, a pattern or
// just a value). Without a match the answer is the command's reply shape
// alone, which is not ReplyNone for a handful of commands (KEYS, SCAN,
// PUBSUB CHANNELS...) found by comparing the name. The result is the same
// as the reference guard's for every argv (tests and a fuzz target check
// it command by command).
func (rw *Rewriter) Guard(args []any) (Reply, error) {
	// Every call below is in a return statement: nothing is live across a
	// call, so the hot path keeps everything in registers.
	p := rw.Naming.Prefix
	if rw.Naming.Suffix != "" || p == "" || len(args) == 0 {
		return rw.guardGeneral(args)
	}
	// Prefix only (the default naming): a length and first-byte test per
	// string or []byte argument. Plain numbers cannot be shadow names
	// unless the prefix starts like one; any other type (a *string, an
	// encoding.BinaryMarshaler, a net.IP, nil...) is rare and takes the
	// reference guard, which renders it as go-redis does.
	c := p[0]
	for i := 1; i < len(args); i++ {
		if v, ok := args[i].(string); ok {
			if len(v) >= len(p) && v[0] == c && hasPrefix(v, p) {
				return rw.guardRef(args)
			}
		} else if v, ok := args[i].([]byte); ok {
			if len(v) >= len(p) && v[0] == c && hasPrefixBytes(v, p) {
				return rw.guardRef(args)
			}
		} else if usualNumber(args[i]) {
			if numberStart[c] {
				return rw.guardRef(args)
			}
		} else {
			return rw.guardPrefixFrom(args, i)
		}
	}
	if name, ok := args[0].(string); ok && (len(name) >= 64 || guardReplyLens&(1<<len(name)) == 0) {
		return ReplyNone, nil
	}
	return rw.guardNoShadow(args)
}

// numberStart holds the bytes a number's text can start with (see
// numbersMayShadow).
var numberStart = [256]bool{'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true,
	'7': true, '8': true, '9': true, '-': true, '+': true, 'N': true}

// usualNumber reports whether a is an int64, a float64 or an int (one
// compare of the type word each, inlined; go-redis's typed API sends int64
// and float64).
func usualNumber(a any) bool {
	if _, ok := a.(int64); ok {
		return true
	}
	if _, ok := a.(float64); ok {
		return true
	}
	_, ok := a.(int)
	return ok
}

// guardPrefixFrom is Guard's prefix-only scan from args[i], an argument
// that is neither a string nor a []byte: plain numbers pass unless the
// prefix starts like a number, anything else takes the reference guard.
// Kept out of Guard so that its loop makes no call that returns to it.
func (rw *Rewriter) guardPrefixFrom(args []any, i int) (Reply, error) {
	p := rw.Naming.Prefix
	numbers := numbersMayShadow(p, "")
	for ; i < len(args); i++ {
		if v, ok := args[i].(string); ok {
			if len(v) >= len(p) && v[0] == p[0] && hasPrefix(v, p) {
				return rw.guardRef(args)
			}
		} else if v, ok := args[i].([]byte); ok {
			if len(v) >= len(p) && v[0] == p[0] && hasPrefixBytes(v, p) {
				return rw.guardRef(args)
			}
		} else if numbers {
			return rw.guardRef(args)
		} else {
			switch args[i].(type) {
			case int, int64, float64: // the usual numbers, compared inline
			default:
				if !plainNumber(args[i]) {
					return rw.guardRef(args)
				}
			}
		}
	}
	return rw.guardNoShadow(args)
}

// hasPrefix reports whether v (at least as long as p) starts with p. A
// byte loop, inlined, rather than a call to the runtime's memequal: a
// production key that shares its first byte with the prefix usually
// differs in the next one.
func hasPrefix(v, p string) bool {
	for j := 1; j < len(p); j++ {
		if v[j] != p[j] {
			return false
		}
	}
	return true
}

// hasPrefixBytes is hasPrefix for a []byte.
func hasPrefixBytes(v []byte, p string) bool {
	for j := 1; j < len(p); j++ {
		if v[j] != p[j] {
			return false
		}
	}
	return true
}

// guardGeneral is Guard for a naming with a suffix, no naming, or no
// arguments.
func (rw *Rewriter) guardGeneral(args []any) (Reply, error) {
	p, s := rw.Naming.Prefix, rw.Naming.Suffix
	if p == "" && s == "" || len(args) == 0 {
		return ReplyNone, nil
	}
	if s == "" {
		return rw.guardRef(args) // not reached from Guard (prefix-only namings stay there)
	}
	n, last := len(p)+len(s), s[len(s)-1]
	for i := 1; i < len(args); i++ {
		var b0, b1 byte
		if v, ok := args[i].(string); ok {
			if len(v) < n {
				continue
			}
			b0, b1 = v[0], v[len(v)-1]
		} else if v, ok := args[i].([]byte); ok {
			if len(v) < n {
				continue
			}
			b0, b1 = v[0], v[len(v)-1]
		} else if !plainNumber(args[i]) || numbersMayShadow(p, s) {
			return rw.guardRef(args) // see Guard
		} else {
			continue
		}
		if (p == "" || b0 == p[0]) && b1 == last && rw.isShadowArg(args[i]) {
			return rw.guardRef(args)
		}
	}
	return rw.guardNoShadow(args)
}

// guardNoShadow is Guard for args (not empty) none of whose arguments is a
// shadow name: the reply shape of the command.
func (rw *Rewriter) guardNoShadow(args []any) (Reply, error) {
	name, ok := args[0].(string)
	if !ok {
		return rw.guardRef(args) // a []byte command name: rare, take the long way
	}
	if len(name) >= 64 || guardReplyLens&(1<<len(name)) == 0 {
		return ReplyNone, nil
	}
	return guardReply(name, args), nil
}

// guardReply is the reply shape of args, whose command name is name, when
// none of its arguments is a shadow name.
func guardReply(name string, args []any) Reply {
	for _, e := range guardReplyNames {
		if len(name) == len(e) && equalFold(name, e) {
			return guardReplies[FindCommand(args)]
		}
	}
	return ReplyNone
}

// guardReplyNames are the lower-case top-level names of the commands (or of
// the containers of the subcommands) whose guard reply is not ReplyNone;
// guardReplies holds that reply per table entry. Both are derived from the
// table and the policies at init.
var (
	guardReplyNames []string
	guardReplyLens  uint64 // bit n: some name in guardReplyNames has length n
	guardReplies    = map[*Command]Reply{}
)

func init() {
	for name, c := range commands {
		found := false
		for _, e := range append([]*Command{c}, subcommandList(c)...) {
			if r := staticGuardReply(e); r != ReplyNone {
				guardReplies[e] = r
				found = true
			}
		}
		if found {
			if len(name) >= 64 {
				panic("rediskeys: command name " + name + " too long for guardReplyLens")
			}
			guardReplyNames = append(guardReplyNames, strings.ToLower(name))
			guardReplyLens |= 1 << len(name)
		}
	}
	sort.Strings(guardReplyNames)
}

func subcommandList(c *Command) []*Command {
	var out []*Command
	for _, s := range c.Subcommands {
		out = append(out, s)
	}
	return out
}

// staticGuardReply is the reply the reference guard gives for command c
// when none of its arguments is a shadow name.
func staticGuardReply(c *Command) Reply {
	if c.Flags&(FlagPatternArg|FlagChannelArg) == 0 {
		return ReplyNone
	}
	pol := policies[c.Name]
	switch pol.kind {
	case kindScan:
		return ReplyScan
	case kindKeys, kindChannels1, kindChannel1, kindPatterns1, kindPubsubPattern, kindPubsubChannels:
		if pol.reply == ReplyNameList {
			return ReplyNameList
		}
	}
	return ReplyNone
}

// guardRef is the reference guard: it resolves the command in the table
// and checks exactly the arguments at key, channel and pattern positions.
// [Rewriter.Guard] calls it only when some argument is a shadow name; the
// tests check that both always agree.
func (rw *Rewriter) guardRef(args []any) (Reply, error) {
	if rw.Naming.Prefix == "" && rw.Naming.Suffix == "" {
		return ReplyNone, nil
	}
	c := FindCommand(args)
	if c == nil {
		return ReplyNone, nil
	}
	if p := c.single; p > 0 {
		if p < len(args) {
			if rw.isShadowArg(args[p]) {
				return ReplyNone, guardErr(c.Name, args[p])
			}
		}
	} else if len(c.KeySpecs) > 0 {
		var buf [8]Pos
		ps, _ := c.KeyPositions(args, buf[:0])
		for _, p := range ps {
			if rw.isShadowArg(args[p.Index]) {
				return ReplyNone, guardErr(c.Name, args[p.Index])
			}
		}
	}
	if c.Flags&(FlagPatternArg|FlagChannelArg) == 0 {
		return ReplyNone, nil
	}
	return rw.guardSlow(c, args)
}

func (rw *Rewriter) guardSlow(c *Command, args []any) (Reply, error) {
	pol := policies[c.Name]
	from := 0
	switch pol.kind {
	case kindKeys, kindChannels1, kindChannel1, kindPatterns1:
		from = 1
	case kindPubsubPattern, kindPubsubChannels:
		from = 2
	case kindScan:
		for i := 2; i+1 < len(args); i += 2 {
			if argIs(args[i], "MATCH") {
				if rw.isShadowArg(args[i+1]) {
					return ReplyNone, guardErr(c.Name, args[i+1])
				}
			}
		}
		return ReplyScan, nil
	case kindSort:
		for i := 2; i < len(args); i++ {
			if rw.isShadowArg(args[i]) {
				return ReplyNone, guardErr(c.Name, args[i])
			}
		}
		return ReplyNone, nil
	default:
		return ReplyNone, nil
	}
	if pol.kind == kindChannel1 && len(args) > 2 {
		args = args[:2]
	}
	for i := from; i < len(args); i++ {
		if rw.isShadowArg(args[i]) {
			return ReplyNone, guardErr(c.Name, args[i])
		}
	}
	if pol.reply == ReplyNameList {
		return ReplyNameList, nil
	}
	return ReplyNone, nil
}

// isShadowArg reports whether a, rendered as go-redis sends it (see
// [AppendArg]), is a shadow name. It does not allocate for strings, []byte,
// *string and numbers.
func (rw *Rewriter) isShadowArg(a any) bool {
	switch v := a.(type) {
	case string:
		return rw.Naming.IsShadow(v)
	case []byte:
		return isShadowBytes(rw.Naming.Prefix, rw.Naming.Suffix, v)
	case *string:
		return v != nil && rw.Naming.IsShadow(*v)
	}
	var buf [64]byte
	b, ok := AppendArg(buf[:0], a)
	return ok && isShadowBytes(rw.Naming.Prefix, rw.Naming.Suffix, b)
}

// isShadowBytes is [shadow.Naming.IsShadow] for a []byte name and a
// naming with prefix p and suffix s, not both empty.
func isShadowBytes(p, s string, v []byte) bool {
	// string(...) in a comparison does not allocate.
	return len(v) >= len(p)+len(s) && (p == "" || v[0] == p[0] && string(v[:len(p)]) == p) &&
		(s == "" || v[len(v)-1] == s[len(s)-1] && string(v[len(v)-len(s):]) == s)
}
