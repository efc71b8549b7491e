package envtag

import "sync/atomic"

// Lanes tells a trunk consumer whether an environment has a live consumer of
// its own for a consumer (service, group or queue) name, so the trunk
// consumer skips that environment's messages, and takes them back once the
// lane consumer goes away. Implementations must be safe for concurrent use
// and cheap: they are asked once per consumed message.
type Lanes interface {
	HasLane(consumer, env string) bool
}

// StaticLanes is a fixed Lanes: consumer name -> environments that have a
// lane consumer. Replace it atomically with [SwapLanes] to change it.
type StaticLanes map[string][]string

// HasLane implements Lanes.
func (s StaticLanes) HasLane(consumer, env string) bool {
	if env == "" {
		return false
	}
	for _, e := range s[consumer] {
		if e == env {
			return true
		}
	}
	return false
}

// SwapLanes is a Lanes whose content can be replaced at run time.
type SwapLanes struct{ p atomic.Pointer[Lanes] }

// Store replaces the current lanes.
func (s *SwapLanes) Store(l Lanes) { s.p.Store(&l) }

// HasLane implements Lanes; with nothing stored no environment has a lane.
func (s *SwapLanes) HasLane(consumer, env string) bool {
	if p := s.p.Load(); p != nil {
		return (*p).HasLane(consumer, env)
	}
	return false
}
