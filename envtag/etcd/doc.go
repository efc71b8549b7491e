// Package etcd is an envtag.Registry backed by etcd v3: instances register
// themselves with their environment label under a lease
// (<prefix><service>/<instance id> = {"addr": ..., "env": ...}) and
// watchers see instances come and go, so environment routing (the gRPC
// envbalancer resolver, the envtag HTTP Transport) follows without
// restarts.
//
//	reg := etcd.New(cli)
//	env, err := envtag.Self() // SHADOWLANE_ENV
//	stop, err := reg.Register(ctx, "orders", hostname, envtag.Endpoint{Addr: addr, Env: env}, 10*time.Second)
//	conn, err := grpc.NewClient("shadowlane:///orders",
//		grpc.WithResolvers(envbalancer.NewResolver(reg, "")), envbalancer.DialOption(), ...)
package etcd
