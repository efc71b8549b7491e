package envbalancer

import "google.golang.org/grpc/resolver"

// zoneKey is the resolver.Endpoint attribute key of the zone label; its
// value is a string.
type zoneKey struct{}

// WithZone returns ep labelled with zone ("" = none). Within the
// environment lane the balancer chose, picks prefer endpoints in the
// caller's zone (envtag.Config.Zone, see envtag.ZoneSpills).
func WithZone(ep resolver.Endpoint, zone string) resolver.Endpoint {
	ep.Attributes = ep.Attributes.WithValue(zoneKey{}, zone)
	return ep
}

// ZoneOf returns ep's zone label ("" = none or not a string).
func ZoneOf(ep resolver.Endpoint) string {
	s, _ := ep.Attributes.Value(zoneKey{}).(string)
	return s
}
