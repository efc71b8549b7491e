package limiter

// ParamValues counts the values the param rule tracks for resource (tests).
func ParamValues(l *Limiter, resource, rule string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.states[stateKey{rule, resource, kindParam}]
	if !ok || s.ps == nil {
		return -1
	}
	return s.ps.size()
}
