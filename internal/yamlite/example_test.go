package yamlite_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/shadowlane/shadowlane/internal/yamlite"
)

func ExampleUnmarshal() {
	type Config struct {
		Service  string
		Reload   time.Duration
		Outbound struct {
			Allow []string
		}
	}
	var c Config
	err := yamlite.Unmarshal([]byte(`
service: orders
reload: 2s
outbound:
  allow: ["*.internal", 127.0.0.1]
`), &c)
	fmt.Println(c.Service, c.Reload, c.Outbound.Allow, err)

	err = yamlite.Unmarshal([]byte("service: orders\nrelaod: 2s\n"), &c)
	fmt.Println(err)

	err = yamlite.Unmarshal([]byte("outbound:\n  allow: yes\n"), &c)
	var e *yamlite.Error
	if errors.As(err, &e) {
		fmt.Println(e.Line, e.Path)
	}
	// Output:
	// orders 2s [*.internal 127.0.0.1] <nil>
	// config line 2, relaod: unknown key "relaod" (valid keys: service, reload, outbound)
	// 2 outbound.allow
}

func ExampleParse() {
	tree, err := yamlite.Parse([]byte("a: [1, 1.5, true, yes, ~, '1']"))
	fmt.Printf("%#v %v\n", tree, err)
	// Output:
	// map[string]interface {}{"a":[]interface {}{1, 1.5, true, "yes", interface {}(nil), "1"}} <nil>
}
