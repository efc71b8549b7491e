package shadowlane

import "testing"

// The words of a DecodeError: position, field path, message.
func TestDecodeErrorWords(t *testing.T) {
	for _, c := range []struct {
		e    DecodeError
		want string
	}{
		{DecodeError{Line: 12, Col: 5, FieldError: FieldError{Field: "trust.keys[1].secret", Msg: "too short"}}, "config line 12, column 5, trust.keys[1].secret: too short"},
		{DecodeError{Line: 3, FieldError: FieldError{Msg: "bad"}}, "config line 3: bad"},
		{DecodeError{FieldError: FieldError{Field: "service", Msg: "empty"}}, "config service: empty"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}
