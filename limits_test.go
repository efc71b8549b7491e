package shadowlane

import (
	"strings"
	"testing"
)

// TestLimitsConfigRefusesNeverPass: a limits rule that a class could never
// pass, or a share that would mean nothing, is refused at load with the
// field and the reason; warmUpMode is read.
func TestLimitsConfigRefusesNeverPass(t *testing.T) {
	c, err := decodeConfig("limits.yaml", []byte(`
limits:
  rules:
    - resource: "GET /a"
      class: loadtest
      qps: 10
      loadTestShare: 0.5
    - resource: "GET /b"
      qps: 4
      warmUp: 10s
      loadTestShare: 0.5
    - resource: "GET /c"
      qps: 100
      warmUp: 10s
      warmUpMode: linear
      loadTestShare: 0.05
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.Rules[2].WarmUpMode != "linear" {
		t.Fatalf("warmUpMode not decoded: %+v", c.Limits.Rules[2])
	}
	_, errs := compileLimits(c.Limits, nil)
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"limits.rules[0].loadTestShare: applies only to a rule for both classes",
		"limits.rules[1].loadTestShare: load-test cold threshold",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in:\n%s", want, all)
		}
	}
	if len(errs) != 2 {
		t.Fatalf("%d errors, want 2 (rule 2 is valid):\n%s", len(errs), all)
	}
}
