package mysql

import "testing"

// TestSmallMap: the same answers below and above the switch to a map, a
// later put wins, reset empties.
func TestSmallMap(t *testing.T) {
	var s smallMap[int, int]
	for round := 0; round < 2; round++ {
		for i := 0; i < 3*smallMapN; i++ {
			s.put(i, i)
			s.put(i%5, 100+i) // later puts of 0..4 win
			for j := 0; j <= i; j++ {
				v, ok := s.get(j)
				want := j
				if j < 5 {
					want = 100 + i - (i-j)%5
				}
				if !ok || v != want {
					t.Fatalf("round %d, %d entries: get(%d) = %d, %v; want %d", round, i+1, j, v, ok, want)
				}
			}
			if s.has(i + 1) {
				t.Fatalf("has(%d) before its put", i+1)
			}
		}
		s.reset()
		if s.has(0) || s.has(7) {
			t.Fatal("reset left entries")
		}
	}
}
