package ctescope

import "testing"

func TestScopes(t *testing.T) {
	var s Scopes
	if s.Has("a") {
		t.Fatal("empty stack has a")
	}
	s.Push()["a"] = true
	s.Push()
	s.Add("b")
	if !s.Has("a") || !s.Has("b") || s.Has("c") {
		t.Fatalf("two scopes: a %v b %v c %v", s.Has("a"), s.Has("b"), s.Has("c"))
	}
	s.Pop()
	if !s.Has("a") || s.Has("b") {
		t.Fatalf("after pop: a %v b %v", s.Has("a"), s.Has("b"))
	}
	s.Pop()
	if len(s) != 0 || s.Has("a") {
		t.Fatalf("after two pops: %v", s)
	}
}
