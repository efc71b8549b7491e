package shadowlane

// RedisConfig configures how Redis commands of load-test traffic are
// shadowed by adapters/slredis (hooks built with its WithRuntime option,
// or with none: the default runtime that [Init] sets).
//
//	redis:
//	  scripts: refuse
type RedisConfig struct {
	// Scripts is what a marked EVAL, EVALSHA or FCALL (and their _RO forms)
	// does: "allow" (the default) renames the keys the script declares,
	// but a script that builds key names itself reads or writes production
	// keys; "refuse" refuses them with shadow.ErrBlocked. `shadowlane
	// check` warns while scripts are allowed.
	Scripts string `yaml:"scripts"`
}

// RefusesScripts reports whether marked scripts are refused.
func (r RedisConfig) RefusesScripts() bool { return r.Scripts == "refuse" }

func (r RedisConfig) validate(bad func(field, format string, a ...any)) {
	switch r.Scripts {
	case "", "allow", "refuse":
	default:
		bad("redis.scripts", "%q: want allow or refuse", r.Scripts)
	}
}
