package mysql

// ExecComments returns the contents of the executable comments of query:
// MySQL's /*! ... */ and /*!50100 ... */, MariaDB's /*M! ... */ and
// /*M!100100 ... */ (and TiDB's /*T! ... */), which the servers run as code
// when their version is at least the one written. The version digits are
// not part of the content. Strings, quoted identifiers and ordinary
// comments are skipped as the MySQL lexer skips them (backslash escapes
// on, the default sql_mode); inside an executable comment strings are
// lexed too, so a '*/' in a string does not end it. An unterminated
// comment runs to the end of query.
func ExecComments(query string) []string {
	var out []string
	n := len(query)
	for i := 0; i < n; {
		if j, ok := skipStringOrLine(query, i); ok {
			i = j
			continue
		}
		switch {
		case query[i] == '/' && i+1 < n && query[i+1] == '*':
			j := i + 2
			if j < n && query[j] != '!' && isLetter(query[j]) && j+1 < n && query[j+1] == '!' {
				j++ // M!, T!
			}
			if j < n && query[j] == '!' {
				j++
				for j < n && query[j] >= '0' && query[j] <= '9' {
					j++
				}
				start := j
				end := n
				k := j
				for k < n {
					ch := query[k]
					if ch == '\'' || ch == '"' || ch == '`' {
						k = skipQuoted(query, k)
						continue
					}
					if ch == '*' && k+1 < n && query[k+1] == '/' {
						end = k
						break
					}
					k++
				}
				out = append(out, query[start:end])
				if end == n {
					return out
				}
				i = end + 2
				continue
			}
			// ordinary comment
			k := indexFrom(query, i+2, "*/")
			if k < 0 {
				return out
			}
			i = k + 2
		default:
			i++
		}
	}
	return out
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// skipStringOrLine returns the index after the string, quoted identifier
// or line comment ('#', or '--' followed by a space, a control character
// or the end) that starts at i, and false when none starts there.
func skipStringOrLine(q string, i int) (int, bool) {
	switch c := q[i]; {
	case c == '\'' || c == '"' || c == '`':
		return skipQuoted(q, i), true
	case c == '#', c == '-' && i+1 < len(q) && q[i+1] == '-' && (i+2 == len(q) || q[i+2] <= ' '):
		return skipLine(q, i), true
	}
	return i, false
}

// skipQuoted returns the index after the quoted token starting at i.
func skipQuoted(q string, i int) int {
	quote := q[i]
	for j := i + 1; j < len(q); j++ {
		switch q[j] {
		case '\\':
			if quote != '`' {
				j++
			}
		case quote:
			if j+1 < len(q) && q[j+1] == quote {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(q)
}

func skipLine(q string, i int) int {
	for ; i < len(q); i++ {
		if q[i] == '\n' {
			return i + 1
		}
	}
	return len(q)
}

func indexFrom(s string, from int, sub string) int {
	for k := from; k+len(sub) <= len(s); k++ {
		if s[k:k+len(sub)] == sub {
			return k
		}
	}
	return -1
}
