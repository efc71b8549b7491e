package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq/rmqfake"
)

// TestCheckRocketMQ: `shadowlane check --rocketmq` against the loopback
// RocketMQ fixture (name server and broker): twins that exist with as many
// queues pass; a missing twin, a twin with other queue counts and a missing
// production topic fail; a shadow group without consumers while production
// has some is a warning.
func TestCheckRocketMQ(t *testing.T) {
	srv, err := rmqfake.New(t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for topic, queues := range map[string]int{"orders": 4, "orders_shadow": 4, "refunds": 4, "refunds_shadow": 2, "payments": 2} {
		srv.CreateTopic(topic, queues)
	}
	srv.AddMember("billing", "10.0.0.1@1")
	srv.AddMember("billing", "10.0.0.2@1")
	srv.AddMember("billing_shadow", "10.0.0.1@2")
	srv.AddMember("audit", "10.0.0.3@1")

	code, out, errb := runCheckStores(t, internalCfg, "--rocketmq", srv.Addr(), "--rocketmq-topics", "orders", "--rocketmq-groups", "billing")
	if code != exitOK {
		t.Fatalf("ready twins: exit %d\n%s%s", code, out, errb)
	}
	wantLine(t, out, "ok", "name server: reachable")
	wantLine(t, out, "ok", "orders -> orders_shadow: exists, 4 write queue(s)")
	wantLine(t, out, "ok", "group billing -> billing_shadow: 1 consumer(s) online (production: 2)")

	code, out, errb = runCheckStores(t, internalCfg, "--rocketmq", "127.0.0.1:1;"+srv.Addr(),
		"--rocketmq-topics", "refunds,payments,nosuch", "--rocketmq-groups", "audit,idle")
	if code != exitViolation {
		t.Fatalf("exit %d\n%s%s", code, out, errb)
	}
	wantLine(t, out, "error", "refunds -> refunds_shadow: different: 4 write queue(s) in production, 2 in shadow")
	wantLine(t, out, "error", "payments -> payments_shadow: missing: create payments_shadow with 2 write queue(s)")
	wantLine(t, out, "error", "nosuch -> nosuch_shadow: production topic not found")
	wantLine(t, out, "warning", "group audit -> audit_shadow: no consumer online while production has 1")
	wantLine(t, out, "warning", "group idle -> idle_shadow: no consumer online in either group")
	if u := srv.Unknown(); len(u) != 0 {
		t.Errorf("check sent request codes the fixture does not serve: %v", u)
	}

	code, out, _ = runCheckStores(t, internalCfg, "--rocketmq", closedAddr(t), "--rocketmq-topics", "orders")
	if code != exitSetup || !strings.Contains(out, "name server: unreachable") {
		t.Errorf("closed name server: exit %d\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rocketmq-topics", "a"}, "need --rocketmq"},
		{[]string{"--rocketmq", "x:1"}, "--rocketmq-topics is required"},
		{[]string{"--rocketmq", "x:1", "--rocketmq-topics", "a_shadow"}, "already a shadow name"},
		{[]string{"--rocketmq", "x:1", "--rocketmq-topics", "a", "--rocketmq-group-suffix", ""}, "--rocketmq-group-suffix"},
	} {
		code, _, errb := runCheckStores(t, internalCfg, tc.args...)
		if code != exitUsage || !strings.Contains(errb, tc.want) {
			t.Errorf("%v: exit %d, stderr %q (want %q)", tc.args, code, errb, tc.want)
		}
	}
}

// The Java name server writes broker ids as bare integer keys; the route
// parser accepts them.
func TestRocketMQRouteBareKeys(t *testing.T) {
	r, err := parseRoute([]byte(`{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"},"brokerName":"b-a","cluster":"c"}],"queueDatas":[{"brokerName":"b-a","perm":6,"readQueueNums":8,"topicSysFlag":0,"writeQueueNums":8}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.writeQueues() != 8 || len(r.masters()) != 1 || r.masters()[0] != "10.0.0.1:10911" {
		t.Fatalf("parsed %+v", r)
	}
}

// FuzzRocketMQRoute: the route parser never panics, and a body that is
// already JSON parses as JSON does.
func FuzzRocketMQRoute(f *testing.F) {
	f.Add([]byte(`{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911"},"brokerName":"b"}],"queueDatas":[{"brokerName":"b","writeQueueNums":4}]}`))
	f.Add([]byte(`{"brokerDatas":[{"brokerAddrs":{"0":"a:1"}}],"queueDatas":[]}`))
	f.Add([]byte(`{"queueDatas":[{"brokerName":"x,1:","writeQueueNums":-1}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseRoute(body)
		var plain rmqRoute
		if json.Unmarshal(body, &plain) == nil && err == nil && r.writeQueues() != plain.writeQueues() {
			t.Fatalf("JSON body %q: %d write queues, plain JSON %d", body, r.writeQueues(), plain.writeQueues())
		}
	})
}
