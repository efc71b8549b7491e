// Package yamlite decodes shadowlane's YAML config with the standard library
// only (the core module may not depend on a YAML library).
//
// It reads a strict subset of YAML 1.2 that covers configuration files:
//   - block mappings and sequences at any depth, including "- key: v" items
//     and "key:" followed by "- " items at the key's own indentation;
//   - flow sequences [a, "b"] and flow mappings {k: v}, nested, across lines;
//   - plain, 'single-quoted' (a doubled quote escapes one) and "double-quoted"
//     scalars (\n \t \" \\ \/ \0 \e \xXX \uXXXX \UXXXXXXXX and the other
//     YAML escapes), each on one line;
//   - literal | and folded > block scalars with - / + chomping and an
//     optional indentation digit (whitespace-only lines count as empty);
//   - comments, one optional leading "---" and a trailing "...".
//
// Plain scalars resolve by the YAML 1.2 core schema: empty, ~ and null are
// null; only true and false (and True/TRUE, False/FALSE) are booleans, so yes,
// no, on and off are strings; integers are decimal, 0x hex or 0o octal; floats
// include .inf and .nan. Quoted and block scalars are always strings.
//
// Everything else is rejected with an [*Error] naming the construct: anchors,
// aliases, merge keys, tags, directives, complex keys, multiple documents,
// multi-line plain or quoted scalars, and tabs used for indentation.
//
// [Unmarshal] decodes into Go values strictly: unknown keys, duplicate keys
// and type mismatches are errors that carry the line and the config path
// ("config line 12, trust.keys[1].secret: expected a string, got a
// mapping"). Keys come from `yaml:"name"`, else `json:"name"`, else the field
// name in lower camel case (OnUntrusted -> onUntrusted, ID -> id); "-" skips a
// field; embedded structs and `yaml:",inline"` fields are promoted.
// Targets: strings (any scalar, exactly as written), bools, ints, uints,
// floats, time.Duration (a string for time.ParseDuration, like "1.5s"),
// structs, pointers, slices, arrays, maps with string keys, any, and any type
// whose pointer implements encoding.TextUnmarshaler (given the scalar's text).
// A null leaves a value unchanged, and sets pointers, maps, slices and
// interfaces to nil, as encoding/json does.
//
// [Parse] returns the generic tree: map[string]any, []any, string, int64,
// float64, bool and nil.
package yamlite
