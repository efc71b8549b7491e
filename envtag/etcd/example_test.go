package etcd_test

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/envtag/etcd"
)

// An instance registers itself in the environment it runs in
// (SHADOWLANE_ENV), and clients watch the service. Needs an etcd at
// 127.0.0.1:2379, so it is compiled but not run.
func Example() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}, DialTimeout: 2 * time.Second})
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	reg := etcd.New(cli)
	ctx := context.Background()

	env, err := envtag.Self()
	if err != nil {
		panic(err) // a malformed label must not start as trunk
	}
	stop, err := reg.Register(ctx, "orders", "orders-1", envtag.Endpoint{Addr: "10.0.0.7:8080", Env: env}, 10*time.Second)
	if err != nil {
		panic(err)
	}
	defer stop(ctx)

	err = reg.Watch(ctx, "orders", func(eps []envtag.Endpoint) {
		fmt.Println("orders instances:", eps)
	})
	if err != nil {
		panic(err)
	}
}
