package shadowlane

import "encoding/json"

// TEMPORARY until internal/yamlite lands: JSON (a YAML subset) only.
func unmarshalYAML(data []byte, v any) error { return json.Unmarshal(data, v) }
