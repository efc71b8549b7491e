package shadowlane

import "github.com/shadowlane/shadowlane/internal/yamlite"

// unmarshalYAML decodes the config file: a strict YAML subset (JSON is a
// subset too) decoded by internal/yamlite, since the core module takes no
// dependency beyond the standard library and OpenTelemetry.
func unmarshalYAML(data []byte, v any) error { return yamlite.Unmarshal(data, v) }
