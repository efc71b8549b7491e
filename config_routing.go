package shadowlane

// RoutingConfig configures environment routing. (Filled in by the routing
// work: strict mode, fallbacks, edge tag sources, registry.)
type RoutingConfig struct{}

type routingState struct{}

func compileRouting(c RoutingConfig, errs []error) (*routingState, []error) {
	return &routingState{}, errs
}

// applyRouting makes a newly compiled routing config take effect.
func (rt *Runtime) applyRouting(c *compiled) {}
