// Package etcd is an envtag.Registry backed by etcd v3: instances register
// themselves with their environment label under a lease
// (<prefix><service>/<instance id> = {"addr": ..., "env": ...}) and
// watchers see instances come and go, so environment routing (the gRPC
// envbalancer resolver, the envtag HTTP Transport) follows without
// restarts.
//
// Under faults: a registration whose lease is lost while the instance
// lives (expired during a partition or an etcd outage longer than its TTL,
// revoked by someone else) is written again under a new lease; a watch
// that breaks (lost leader, etcd restart, compaction past its revision)
// reads everything again, and until it can the last set stays in force; a
// removed key stays in the set for [WithDeleteGrace] (default 1 s), so
// that the keys clients write again after an etcd restart never leave
// routing in between; an
// address claimed under two environment labels is withheld (no traffic)
// until one claim goes, so that untagged traffic never reaches an instance
// that may now serve a project. [WithOnError] receives what was worked
// around.
//
//	reg := etcd.New(cli)
//	env, err := envtag.Self() // SHADOWLANE_ENV
//	stop, err := reg.Register(ctx, "orders", hostname, envtag.Endpoint{Addr: addr, Env: env}, 10*time.Second)
//	conn, err := grpc.NewClient("shadowlane:///orders",
//		grpc.WithResolvers(envbalancer.NewResolver(reg, "")), envbalancer.DialOption(), ...)
package etcd
