package limiter

// ParamValues counts the values the param rule tracks for resource (tests).
func ParamValues(l *Limiter, resource, rule string) int {
	l.smu.Lock()
	defer l.smu.Unlock()
	s, ok := l.states[stateKey{rule, resource, kindParam}]
	if !ok || s.ps == nil {
		return -1
	}
	return s.ps.size()
}
