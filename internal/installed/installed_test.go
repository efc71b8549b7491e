package installed

import "testing"

func TestFunc(t *testing.T) {
	var d Func[int]
	if d.Get() != nil {
		t.Fatal("zero Func returned a value")
	}
	n := 7
	d.Set(func() *int { return &n })
	if p := d.Get(); p == nil || *p != 7 {
		t.Fatalf("Get = %v, want 7", p)
	}
	d.Set(nil)
	if d.Get() != nil {
		t.Fatal("Set(nil) kept the function")
	}
}
