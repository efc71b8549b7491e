package mysql

// smallMap is a map for the few entries one statement gives (table nodes,
// alias names): while it holds at most smallMapN entries a look-up scans a
// slice, which costs a fraction of hashing; past that it also keeps a
// real map, so a statement with thousands of tables stays linear. A later
// put of a key wins over an earlier one, as with a map.
type smallMap[K comparable, V any] struct {
	keys []K
	vals []V
	m    map[K]V
}

const smallMapN = 16

func (s *smallMap[K, V]) put(k K, v V) {
	s.keys = append(s.keys, k)
	s.vals = append(s.vals, v)
	if len(s.keys) <= smallMapN {
		return
	}
	if s.m == nil {
		s.m = make(map[K]V, 2*smallMapN)
	}
	if len(s.m) == 0 {
		for i, k := range s.keys {
			s.m[k] = s.vals[i]
		}
		return
	}
	s.m[k] = v
}

func (s *smallMap[K, V]) get(k K) (v V, ok bool) {
	if len(s.keys) > smallMapN {
		v, ok = s.m[k]
		return v, ok
	}
	for i := len(s.keys) - 1; i >= 0; i-- {
		if s.keys[i] == k {
			return s.vals[i], true
		}
	}
	return v, false
}

func (s *smallMap[K, V]) has(k K) bool {
	_, ok := s.get(k)
	return ok
}

// reset empties s, keeping its storage.
func (s *smallMap[K, V]) reset() {
	clear(s.keys)
	clear(s.vals)
	s.keys, s.vals = s.keys[:0], s.vals[:0]
	if len(s.m) > 0 {
		clear(s.m)
	}
}
