package sqlite

//go:generate go run ./internal/funcgen/gen -o funcs_gen.go
