package ctescope

// Scopes is a stack of WITH scopes, innermost last; each maps the CTE
// names it makes visible to true.
type Scopes []map[string]bool

// Push opens a scope and returns it, for the caller to add names to.
func (s *Scopes) Push() map[string]bool {
	m := map[string]bool{}
	*s = append(*s, m)
	return m
}

// Pop closes the innermost scope.
func (s *Scopes) Pop() { *s = (*s)[:len(*s)-1] }

// Has reports whether name is a CTE of any open scope.
func (s Scopes) Has(name string) bool {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i][name] {
			return true
		}
	}
	return false
}

// Add makes name visible in the innermost scope.
func (s Scopes) Add(name string) { s[len(s)-1][name] = true }
