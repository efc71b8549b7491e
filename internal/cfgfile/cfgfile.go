package cfgfile

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the config file at path (at most shadowlane.MaxConfigFileSize
// bytes) and decodes it into v as shadowlane.LoadFile decodes a Config:
// strictly (unknown fields, duplicate keys and a second document refused),
// every error wrapping shadowlane.ErrConfig and carrying a
// *shadowlane.DecodeError with the line, column and field path. Package
// shadowlane installs it; it is nil in a program that does not link that
// package, which is never the case for its importers.
var Load func(path string, v any) error

// Others, inlined into a struct (`yaml:",inline"`), takes the top-level
// keys the struct does not name, so [Load] checks only the struct's own
// sections strictly.
type Others map[string]Skip

// Skip accepts any YAML value and keeps nothing.
type Skip struct{}

// UnmarshalYAML implements yaml.Unmarshaler.
func (*Skip) UnmarshalYAML(*yaml.Node) error { return nil }

// SplitList splits a comma-separated list (an environment variable, a
// command-line flag), trimming blanks and dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Where words a position in a file for an error: "line 12, column 5",
// "line 12" without a column, "" without a line.
func Where(line, col int) string {
	switch {
	case line <= 0:
		return ""
	case col <= 0:
		return "line " + strconv.Itoa(line)
	}
	return "line " + strconv.Itoa(line) + ", column " + strconv.Itoa(col)
}
