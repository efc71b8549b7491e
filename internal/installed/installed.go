package installed

import "sync/atomic"

// Func is an installed function returning a *T; the zero Func has none.
// It is safe for concurrent use.
type Func[T any] struct{ p atomic.Pointer[func() *T] }

// Set installs f (nil removes the installed function).
func (d *Func[T]) Set(f func() *T) {
	if f == nil {
		d.p.Store(nil)
		return
	}
	d.p.Store(&f)
}

// Get returns what the installed function returns, or nil when none is
// installed.
func (d *Func[T]) Get() *T {
	if f := d.p.Load(); f != nil {
		return (*f)()
	}
	return nil
}
