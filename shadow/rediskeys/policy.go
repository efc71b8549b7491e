package rediskeys

// kind is what the rewriter does with a command beyond its key specs. The
// generated table says where keys are; this hand-kept policy says which
// keyless commands marked traffic may run, and which arguments other than
// keys (patterns, channels) name data. A command with a pattern or channel
// argument must have an entry here (a test enforces it), so a new command of
// that kind is refused until someone decides.
type kind uint8

const (
	kindKeyed          kind = iota // key specs only (the default for commands with key specs)
	kindAllow                      // keyless and harmless: runs as is
	kindBlock                      // never for marked traffic
	kindScript                     // EVAL/FCALL family: declared keys shadowed; refused when strict
	kindKeys                       // KEYS pattern
	kindScan                       // SCAN cursor [MATCH pattern] ...
	kindSort                       // SORT / SORT_RO: BY/GET patterns, STORE key
	kindCopy                       // COPY: refused with the DB option
	kindChannels1                  // channels from argv[1] (SUBSCRIBE, UNSUBSCRIBE)
	kindChannel1                   // one channel at argv[1] (PUBLISH)
	kindPatterns1                  // patterns from argv[1] (PSUBSCRIBE, PUNSUBSCRIBE)
	kindPubsubPattern              // PUBSUB CHANNELS/SHARDCHANNELS [pattern]
	kindPubsubChannels             // PUBSUB NUMSUB/SHARDNUMSUB channel...
	kindDedicatedOnly              // keyless data commands allowed only on a dedicated shadow DB/instance
)

type policy struct {
	kind  kind
	reply Reply
	rule  string // why, for refusals
}

// Reply says whether and how a command's reply carries key or channel
// names that must be given back to the application under its own names.
type Reply uint8

// Reply shapes.
const (
	ReplyNone       Reply = iota
	ReplyNameList         // KEYS, PUBSUB CHANNELS: an array of names
	ReplyScan             // SCAN: cursor and an array of names
	ReplyName             // RANDOMKEY: one name
	ReplyFirstName        // BLPOP, BZPOPMIN, BLMPOP, ZMPOP...: the first element is the key
	ReplyStreams          // XREAD, XREADGROUP: stream names with entries
	ReplyNameCounts       // PUBSUB NUMSUB: name, count pairs
)

var policies = map[string]policy{
	// Keyless and harmless.
	"PING": {kind: kindAllow}, "ECHO": {kind: kindAllow}, "TIME": {kind: kindAllow},
	"MULTI": {kind: kindAllow}, "EXEC": {kind: kindAllow}, "DISCARD": {kind: kindAllow},
	"UNWATCH": {kind: kindAllow}, "ASKING": {kind: kindAllow}, "READONLY": {kind: kindAllow},
	"READWRITE": {kind: kindAllow}, "QUIT": {kind: kindAllow}, "RESET": {kind: kindAllow},
	"HELLO": {kind: kindAllow}, "AUTH": {kind: kindAllow}, "LOLWUT": {kind: kindAllow},
	"CLIENT GETNAME": {kind: kindAllow}, "CLIENT ID": {kind: kindAllow}, "CLIENT INFO": {kind: kindAllow},
	"CLIENT SETNAME": {kind: kindAllow}, "CLIENT SETINFO": {kind: kindAllow},
	"SCRIPT LOAD": {kind: kindAllow}, "SCRIPT EXISTS": {kind: kindAllow},
	"COMMAND": {kind: kindAllow}, "COMMAND COUNT": {kind: kindAllow}, "COMMAND DOCS": {kind: kindAllow},
	"COMMAND GETKEYS": {kind: kindAllow}, "COMMAND GETKEYSANDFLAGS": {kind: kindAllow},
	"COMMAND INFO": {kind: kindAllow}, "COMMAND LIST": {kind: kindAllow}, "COMMAND HELP": {kind: kindAllow},
	"PUBSUB NUMPAT": {kind: kindAllow},

	// Keyed, with something extra to say.
	"MIGRATE": {kind: kindBlock, rule: "MIGRATE moves keys to another server"},
	"MOVE":    {kind: kindBlock, rule: "MOVE moves a key to another database"},
	"COPY":    {kind: kindCopy},
	"EVAL":    {kind: kindScript}, "EVALSHA": {kind: kindScript}, "EVAL_RO": {kind: kindScript},
	"EVALSHA_RO": {kind: kindScript}, "FCALL": {kind: kindScript}, "FCALL_RO": {kind: kindScript},
	"SORT": {kind: kindSort}, "SORT_RO": {kind: kindSort},
	"HSCAN": {kind: kindKeyed}, "SSCAN": {kind: kindKeyed}, "ZSCAN": {kind: kindKeyed}, // MATCH filters fields/members, not keys
	"SPUBLISH": {kind: kindKeyed}, "SSUBSCRIBE": {kind: kindKeyed}, "SUNSUBSCRIBE": {kind: kindKeyed}, // shard channels are key specs (NOT_KEY)

	// Replies naming keys.
	"BLPOP": {kind: kindKeyed, reply: ReplyFirstName}, "BRPOP": {kind: kindKeyed, reply: ReplyFirstName},
	"BZPOPMIN": {kind: kindKeyed, reply: ReplyFirstName}, "BZPOPMAX": {kind: kindKeyed, reply: ReplyFirstName},
	"BLMPOP": {kind: kindKeyed, reply: ReplyFirstName}, "LMPOP": {kind: kindKeyed, reply: ReplyFirstName},
	"ZMPOP": {kind: kindKeyed, reply: ReplyFirstName}, "BZMPOP": {kind: kindKeyed, reply: ReplyFirstName},
	"XREAD": {kind: kindKeyed, reply: ReplyStreams}, "XREADGROUP": {kind: kindKeyed, reply: ReplyStreams},

	// Patterns and channels.
	"KEYS":                 {kind: kindKeys, reply: ReplyNameList},
	"SCAN":                 {kind: kindScan, reply: ReplyScan},
	"RANDOMKEY":            {kind: kindDedicatedOnly, reply: ReplyName, rule: "RANDOMKEY would pick among production keys; it runs only on a dedicated shadow instance/DB"},
	"DBSIZE":               {kind: kindDedicatedOnly, rule: "DBSIZE counts production keys; it runs only on a dedicated shadow instance/DB"},
	"SUBSCRIBE":            {kind: kindChannels1},
	"UNSUBSCRIBE":          {kind: kindChannels1},
	"PUBLISH":              {kind: kindChannel1},
	"PSUBSCRIBE":           {kind: kindPatterns1},
	"PUNSUBSCRIBE":         {kind: kindPatterns1},
	"PUBSUB CHANNELS":      {kind: kindPubsubPattern, reply: ReplyNameList},
	"PUBSUB SHARDCHANNELS": {kind: kindPubsubPattern, reply: ReplyNameList},
	"PUBSUB NUMSUB":        {kind: kindPubsubChannels, reply: ReplyNameCounts},
	"PUBSUB SHARDNUMSUB":   {kind: kindPubsubChannels, reply: ReplyNameCounts},
	"FUNCTION LIST":        {kind: kindBlock, rule: "function libraries are server-wide"},
	"SENTINEL RESET":       {kind: kindBlock, rule: "sentinel administration"},
}

// Scripts reports whether the command runs a server-side script or function
// (EVAL, EVALSHA, FCALL and their _RO forms).
func (c *Command) Scripts() bool { return policies[c.Name].kind == kindScript }
