// Package funclist is the shared half of the SQL dialects' function
// allow-list generators (dialects/*/internal/funcgen, run by `go generate`
// in each dialect): [Generator.Main] opens the database and writes the file, [Generator.Source]
// renders funcs_gen.go. Each dialect keeps only how it reads its catalog.
// Internal to this repository: the dialect modules import it under the
// shadowlane path prefix; applications cannot.
package funclist
