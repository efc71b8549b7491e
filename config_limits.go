package shadowlane

// LimitsConfig configures flow control. (Filled in by the limiter work:
// rules, system protection.)
type LimitsConfig struct{}

type limitsState struct{}

func compileLimits(c LimitsConfig, errs []error) (*limitsState, []error) {
	return &limitsState{}, errs
}

// applyLimits makes a newly compiled limits config take effect.
func (rt *Runtime) applyLimits(c *compiled) {}
