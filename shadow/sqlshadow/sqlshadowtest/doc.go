// Package sqlshadowtest checks a [sqlshadow.Dialect] against the promise
// shadowlane makes for load-test traffic: a marked statement is either
// refused with a [*shadow.Error] or rewritten into one that writes only
// shadow tables and reads only shadow or read-through tables. Dialect
// modules run their hostile-statement lists through [Run]; a third-party
// dialect can do the same.
package sqlshadowtest
