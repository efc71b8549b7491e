package sqlshadow

import (
	"errors"
	"reflect"
	"strconv"

	"github.com/shadowlane/shadowlane/shadow"
)

// ErrorReason is the reason the SQL adapters (slsql's connector, the gorm
// plugin) count an error of a marked statement under in the run's
// evidence ([shadow.Series.RunError]):
//   - "sql no shadow table": the shadow table is missing (an error
//     wrapping [shadow.ErrNoShadowTarget]);
//   - "sql timeout", "sql canceled", "sql closed" ([shadow.ErrorClass]);
//   - "sql <SQLSTATE>" for servers that report one (PostgreSQL through
//     pgx or lib/pq: "sql 23505");
//   - "sql mysql <number>" for MySQL/MariaDB ("sql mysql 1062");
//   - "sql error" otherwise.
//
// Its cardinality is bounded by the servers' error codes. The drivers are
// recognised by their error types' methods and fields; no driver is
// imported.
func ErrorReason(err error) string {
	if errors.Is(err, shadow.ErrNoShadowTarget) {
		return "sql no shadow table"
	}
	if c := shadow.ErrorClass(err); c != "" {
		return "sql " + c
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if s, ok := e.(interface{ SQLState() string }); ok && validState(s.SQLState()) {
			return "sql " + s.SQLState()
		}
		if n := MySQLErrorNumber(e); n != 0 {
			return "sql mysql " + strconv.Itoa(int(n))
		}
	}
	return "sql error"
}

// validState reports whether s looks like a SQLSTATE (five digits or
// capital letters).
func validState(s string) bool {
	if len(s) != 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'A' || s[i] > 'Z') {
			return false
		}
	}
	return true
}

// MySQLErrorNumber returns the Number field of a *mysql.MySQLError-shaped
// error e (a pointer to a struct with a uint16 field Number), 0 otherwise.
// It does not look into the chain of e.
func MySQLErrorNumber(e error) uint16 {
	v := reflect.ValueOf(e)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return 0
	}
	f := v.Elem().FieldByName("Number")
	if !f.IsValid() || f.Kind() != reflect.Uint16 {
		return 0
	}
	return uint16(f.Uint())
}
