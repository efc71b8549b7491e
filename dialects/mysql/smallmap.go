package mysql

// smallMap is a map for the few entries one statement gives (table nodes,
// alias names): while it holds at most smallMapN entries a look-up scans a
// slice, which costs a fraction of hashing; past that it also keeps a
// real map, so a statement with thousands of tables stays linear. A later
// put of a key wins over an earlier one, as with a map.
type smallMap[K comparable, V any] struct {
	ents []smallEnt[K, V]
	m    map[K]V
}

type smallEnt[K comparable, V any] struct {
	k K
	v V
}

const smallMapN = 16

func (s *smallMap[K, V]) put(k K, v V) {
	s.ents = append(s.ents, smallEnt[K, V]{k, v})
	if len(s.ents) <= smallMapN {
		return
	}
	if s.m == nil {
		s.m = make(map[K]V, 2*smallMapN)
	}
	if len(s.m) == 0 {
		for _, e := range s.ents {
			s.m[e.k] = e.v
		}
		return
	}
	s.m[k] = v
}

func (s *smallMap[K, V]) get(k K) (v V, ok bool) {
	if len(s.ents) > smallMapN {
		v, ok = s.m[k]
		return v, ok
	}
	for i := len(s.ents) - 1; i >= 0; i-- {
		if s.ents[i].k == k {
			return s.ents[i].v, true
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
	if len(s.ents) > 0 {
		clear(s.ents)
		s.ents = s.ents[:0]
	}
	if len(s.m) > 0 {
		clear(s.m)
	}
}
