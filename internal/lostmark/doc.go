// Package lostmark passes the lost-mark guard's "already counted" note
// between two layers of the same exit: the gorm plugin over a database/sql
// pool that slsql also wraps (Orchestrion wires both). With testData.action
// alert the outer layer counts the catch and lets the statement go on; the
// inner layer must not count it again.
package lostmark
