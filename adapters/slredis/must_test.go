package slredis_test

// must returns v, failing the test binary on a construction error the
// test does not expect.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
