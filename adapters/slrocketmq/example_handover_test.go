package slrocketmq_test

import (
	"errors"
	"fmt"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
	"github.com/shadowlane/shadowlane/envtag"
)

// A trunk instance names the envs that have (or had) lane instances, so
// that after a restart it still runs a left lane's groups instead of
// leaving the lane's backlog behind; only a trunk with lanes may.
func ExampleWithHandoverEnvs() {
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{"billing": {"proj-a"}})
	trunk, err := slrocketmq.New(slrocketmq.WithShadowTopics("orders"), slrocketmq.WithLanes(&lanes),
		slrocketmq.WithHandoverEnvs("proj-a", "proj-b"))
	fmt.Println(trunk != nil, err)

	_, err = slrocketmq.New(slrocketmq.WithEnv("proj-a"), slrocketmq.WithLanes(&lanes), slrocketmq.WithHandoverEnvs("proj-a"))
	fmt.Println(errors.Is(err, slrocketmq.ErrConfig))
	// Output:
	// true <nil>
	// true
}
