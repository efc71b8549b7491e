package gormtest_test

// must returns v, panicking on a construction error the test does not
// expect.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
