package shadowlane

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// MigrationConfig configures a broker migration by dual write (package
// shadow/bus/migrate): the phase in force and the topic map. A reload
// that changes the phase moves running producers and consumers built with
// this Runtime as their [migrate.Source] to the new phase without a
// restart.
//
//	migration:
//	  phase: 1            # 0 not migrating, 1 dual write, 2 dual read, 3 new only
//	  topics:             # old production name: new production name
//	    orders.created: orders-created
type MigrationConfig struct {
	// Phase is 0 (not migrating, the default), 1 (dual write: produce to
	// old and new, consume old), 2 (dual read: consume both, drop
	// duplicates by message id) or 3 (new only).
	Phase int `yaml:"phase"`
	// Topics maps each migrating topic (subject, queue) of the old system
	// to its name on the new system. Production names only: each side's
	// adapter derives the shadow names.
	Topics map[string]string `yaml:"topics"`
}

func (m MigrationConfig) compile(bad func(field, format string, a ...any)) migrate.Plan {
	p := migrate.Plan{Topics: maps.Clone(m.Topics)}
	if m.Phase < 0 || m.Phase > int(migrate.NewOnly) {
		bad("migration.phase", "%d: want 0 (not migrating), 1 (dual write), 2 (dual read) or 3 (new only)", m.Phase)
	} else {
		p.Phase = migrate.Phase(m.Phase)
	}
	if p.Phase != migrate.Before && len(m.Topics) == 0 {
		bad("migration.topics", "phase %d needs the topic map (old name: new name)", m.Phase)
	}
	seen := make(map[string]string, len(m.Topics))
	for _, o := range slices.Sorted(maps.Keys(m.Topics)) {
		n := m.Topics[o]
		f := "migration.topics[" + strconv.Quote(o) + "]"
		switch {
		case o == "":
			bad("migration.topics", "an empty old name")
		case n == "":
			bad(f, "the new name is empty")
		default:
			if prev, dup := seen[n]; dup {
				bad(f, "%q is also the new name of %q: each old name needs its own new name", n, prev)
			}
			seen[n] = o
		}
	}
	return p
}

// MigrationPlan returns the migration in force (the "migration:" section
// as last applied by [Runtime.Apply] or a reload): rt is a
// [migrate.Source]. The returned plan's map must not be modified.
func (rt *Runtime) MigrationPlan() migrate.Plan { return rt.st.Load().migration }

var _ migrate.Source = (*Runtime)(nil)

func migrationEnv(c *Config, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return &FieldError{Field: "SHADOWLANE_MIGRATION_PHASE", Msg: fmt.Sprintf("%q: want 0, 1, 2 or 3", v)}
	}
	c.Migration.Phase = n
	return nil
}
