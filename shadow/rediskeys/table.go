package rediskeys

//go:generate go run ./internal/gen/cmd -in ../../../shared/data/redis-commands.json -out zz_commands.go

import (
	"errors"
	"strconv"
)

// Flags are the command flags of the Redis command table that matter for
// shadowing, plus two flags derived from the argument list.
type Flags uint32

// Command flags.
const (
	FlagWrite Flags = 1 << iota
	FlagReadonly
	FlagAdmin
	FlagPubSub
	FlagNoScript
	FlagBlocking
	FlagFast
	FlagMayReplicate
	FlagNoMandatoryKeys
	FlagTouchesArbitraryKeys
	FlagOnlySentinel
	FlagDenyOOM
	// FlagPatternArg: some argument is a glob pattern (KEYS, SCAN MATCH,
	// PSUBSCRIBE, SORT BY/GET, ...).
	FlagPatternArg
	// FlagChannelArg: some argument is a pub/sub channel.
	FlagChannelArg
)

// KeyFlags are the flags of one key specification.
type KeyFlags uint16

// Key specification flags (see the Redis documentation on key specs).
const (
	KeyRO KeyFlags = 1 << iota
	KeyRW
	KeyOW
	KeyRM
	KeyAccess
	KeyInsert
	KeyUpdate
	KeyDelete
	KeyNotKey // the "key" is a shard channel, not a key
	KeyIncomplete
	KeyVariableFlags
)

// Writes reports whether a key with these flags may be created or
// overwritten by the command.
func (f KeyFlags) Writes() bool { return f&(KeyRW|KeyOW|KeyInsert|KeyUpdate) != 0 }

// Begin is how a key spec finds its first argument.
type Begin uint8

// Begin kinds.
const (
	BeginUnknown Begin = iota
	BeginIndex
	BeginKeyword
)

// Find is how a key spec finds the keys after its first argument.
type Find uint8

// Find kinds.
const (
	FindUnknown Find = iota
	FindRange
	FindKeynum
)

// KeySpec is one key specification of a command, as in the Redis command
// table. Positions count from argv[0] (the command name; for a subcommand
// argv[0] is the container and argv[1] the subcommand).
type KeySpec struct {
	Flags KeyFlags
	Begin Begin
	// BeginIndex: the position of the first key.
	Pos int
	// BeginKeyword: the keyword after which keys start, searched from
	// StartFrom (backwards from the end when negative).
	Keyword   string
	StartFrom int
	Find      Find
	// FindRange: the last key relative to the first (negative: relative to
	// the end of argv), the distance between keys, and Limit (with LastKey
	// -1: only the first 1/Limit of the remaining arguments are keys).
	LastKey, KeyStep, Limit int
	// FindKeynum: the argument holding the number of keys (relative to the
	// begin position) and the first key relative to the begin position.
	KeyNumIdx, FirstKey int
}

// Command is one entry of the generated command table.
type Command struct {
	Name        string // upper case, subcommands as "CONTAINER SUB"
	Container   string // the container of a subcommand
	Group       string
	Arity       int // Redis arity: exact when positive, minimum when negative
	Flags       Flags
	KeySpecs    []KeySpec
	Subcommands map[string]*Command // lower-case subcommand name -> entry

	single int // derived: > 0 when the only key is at this fixed position
}

// fast is an open-addressing index of the top-level commands by lower-case
// name, faster than a Go map for the short names of the hot path.
var fast [1024]*Command

func hashName(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func init() {
	derive := func(c *Command) {
		if len(c.KeySpecs) == 1 {
			ks := c.KeySpecs[0]
			if ks.Begin == BeginIndex && ks.Find == FindRange && ks.LastKey == 0 && ks.Flags&KeyIncomplete == 0 && ks.Pos > 0 {
				c.single = ks.Pos
			}
		}
	}
	for name, c := range commands {
		derive(c)
		for _, s := range c.Subcommands {
			derive(s)
		}
		h := hashName(name)
		for i := uint32(0); ; i++ {
			slot := &fast[(h+i)&uint32(len(fast)-1)]
			if *slot == nil {
				*slot = c
				break
			}
		}
	}
}

func lookupLower(name string) *Command {
	h := hashName(name)
	for i := uint32(0); i < uint32(len(fast)); i++ {
		c := fast[(h+i)&uint32(len(fast)-1)]
		if c == nil {
			return nil
		}
		if len(c.Name) == len(name) && equalLower(c.Name, name) {
			return c
		}
	}
	return nil
}

// equalLower reports whether upper (a table name) equals lower (a
// lower-case name).
func equalLower(upper, lower string) bool {
	for i := 0; i < len(lower); i++ {
		u := upper[i]
		if 'A' <= u && u <= 'Z' {
			u += 'a' - 'A'
		}
		if u != lower[i] {
			return false
		}
	}
	return true
}

// Len returns the number of commands and subcommands in the table.
func Len() int { return numCommands }

// Lookup returns the table entry of the top-level command name (any case),
// or nil. It does not allocate.
func Lookup(name string) *Command {
	if c := lookupLower(name); c != nil {
		return c
	}
	if len(name) > 32 {
		return nil
	}
	var buf [32]byte
	n := copy(buf[:], name)
	changed := false
	for i := 0; i < n; i++ {
		if c := buf[i]; 'A' <= c && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return lookupLower(string(buf[:n]))
}

// Find resolves the command of argv args (args[0] is the name), including
// its subcommand for containers such as OBJECT or XINFO. It returns nil when
// the table does not know the command or the subcommand; a container named
// without a subcommand resolves to the container itself.
func FindCommand(args []any) *Command {
	if len(args) == 0 {
		return nil
	}
	name, ok := Arg(args[0])
	if !ok {
		return nil
	}
	c := Lookup(name)
	if c == nil || c.Subcommands == nil || len(args) < 2 {
		return c
	}
	sub, ok := Arg(args[1])
	if !ok {
		return nil
	}
	if s, ok := c.Subcommands[sub]; ok {
		return s
	}
	var buf [32]byte
	if len(sub) > len(buf) {
		return nil
	}
	n := copy(buf[:], sub)
	for i := 0; i < n; i++ {
		if b := buf[i]; 'A' <= b && b <= 'Z' {
			buf[i] = b + 'a' - 'A'
		}
	}
	return c.Subcommands[string(buf[:n])]
}

// Arg returns the text go-redis sends for the argument a (see
// [AppendArg]), and whether go-redis can send it at all. Strings and
// []byte are the common case; other types are rendered (and allocate).
func Arg(a any) (string, bool) {
	if s, ok := a.(string); ok { // inlined
		return s, true
	}
	return argSlow(a)
}

func argSlow(a any) (string, bool) {
	switch v := a.(type) {
	case []byte:
		return string(v), true
	case *string:
		if v == nil {
			return "", true
		}
		return *v, true
	}
	var buf [64]byte
	b, ok := AppendArg(buf[:0], a)
	return string(b), ok
}

// Pos is the position of one key in argv and the flags of its key spec.
type Pos struct {
	Index int
	Flags KeyFlags
}

// Errors of [Command.KeyPositions].
var (
	// ErrUnknownSpec: a key spec of the command cannot be evaluated from the
	// arguments alone (SORT BY/GET, MIGRATE's incomplete spec).
	ErrUnknownSpec = errors.New("rediskeys: key positions cannot be derived from the arguments")
	// ErrBadArgs: the arguments do not fit the key spec (a key count that
	// is not a number, keys beyond the end of argv).
	ErrBadArgs = errors.New("rediskeys: arguments do not match the command's key spec")
)

// KeyPositions appends to dst the positions in args of every key the
// command's key specs name, in spec order, and returns the extended slice.
// It follows the Redis server's own algorithm (the one behind COMMAND
// GETKEYS). An optional key that is absent (a keyword not found) yields no
// position. Any spec it cannot evaluate makes it return [ErrUnknownSpec] or
// [ErrBadArgs]: a caller that must shadow every key treats that as "refuse".
// It does not allocate when dst has room.
func (c *Command) KeyPositions(args []any, dst []Pos) ([]Pos, error) {
	argc := len(args)
	for i := range c.KeySpecs {
		ks := &c.KeySpecs[i]
		first := 0
		switch ks.Begin {
		case BeginIndex:
			first = ks.Pos
		case BeginKeyword:
			start, end, step := ks.StartFrom, argc-1, 1
			if ks.StartFrom < 0 {
				start, end, step = argc+ks.StartFrom, 0, -1
			}
			for j := start; j != end; j += step {
				if j >= argc || j < 0 {
					break
				}
				if argIs(args[j], ks.Keyword) {
					first = j + 1
					break
				}
			}
			if first == 0 {
				continue // optional keyword absent
			}
		default:
			return dst, ErrUnknownSpec
		}
		if ks.Flags&KeyIncomplete != 0 {
			return dst, ErrUnknownSpec
		}
		last, step := 0, 1
		switch ks.Find {
		case FindRange:
			switch {
			case ks.LastKey >= 0:
				last = first + ks.LastKey
			case ks.Limit == 0:
				last = argc + ks.LastKey
			default:
				if ks.LastKey != -1 || ks.Limit < 0 {
					return dst, ErrUnknownSpec
				}
				last = first + ((argc-first)/ks.Limit + ks.LastKey)
			}
			step = ks.KeyStep
		case FindKeynum:
			step = ks.KeyStep
			if first+ks.KeyNumIdx >= argc || first+ks.KeyNumIdx < 0 {
				if first >= argc {
					continue // no arguments at all from here: no keys
				}
				return dst, ErrBadArgs
			}
			var buf [24]byte
			b, ok := AppendArg(buf[:0], args[first+ks.KeyNumIdx])
			if !ok || len(b) > len(buf) {
				return dst, ErrBadArgs
			}
			n, err := strconv.ParseInt(string(b), 10, 64)
			if err != nil || n < 0 || n > int64(argc) {
				return dst, ErrBadArgs
			}
			first += ks.FirstKey
			last = first + int(n) - 1
			if n == 0 {
				continue
			}
		default:
			return dst, ErrUnknownSpec
		}
		if step <= 0 {
			return dst, ErrUnknownSpec
		}
		if last >= argc || last < first || first >= argc {
			// The server rejects such a command (or its spec cannot be
			// evaluated); either way we cannot name its keys.
			return dst, ErrBadArgs
		}
		for j := first; j <= last; j += step {
			dst = append(dst, Pos{Index: j, Flags: ks.Flags})
		}
	}
	return dst, nil
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
