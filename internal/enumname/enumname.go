package enumname

import "strconv"

// String returns names[v], or typ(v) ("Strategy(7)") when v has no name:
// out of the table, or an empty entry (an unused zero value).
func String[T ~int | ~int32 | ~uint8](names []string, v T, typ string) string {
	if v >= 0 && int(v) < len(names) && names[v] != "" {
		return names[v]
	}
	return typ + "(" + strconv.Itoa(int(v)) + ")"
}
