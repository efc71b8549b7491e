package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/shadowlane/shadowlane/shadow"
)

// RocketMQ twins are made with the remoting protocol directly, the admin
// requests of RocketMQ's mqadmin: a shadow topic gets, on every master
// broker the production topic lives on, that broker's read and write queue
// counts, permission and topic flags (UPDATE_AND_CREATE_TOPIC); a shadow
// consumer group gets a copy of the production group's subscription group
// config (retry queues, maximum reconsume times, broadcast...) on the same
// brokers (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP), or the broker's defaults
// when the broker does not hold the production group (yet: brokers that
// create groups on a consumer's first heartbeat).

const (
	rmqUpdateCreateTopic = 17
	rmqUpdateCreateGroup = 200
	rmqGetAllGroups      = 201
	rmqDefaultTopic      = "TBW102" // the broker's template topic, named in every create
)

// rmqDialAny connects to the first reachable name server.
func rmqDialAny(ctx context.Context, nameservers []string, timeout time.Duration) (*rmqConn, error) {
	var errs []error
	for _, ns := range nameservers {
		c, err := rmqDial(ctx, ns, timeout)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// brokerAddr returns the master address of broker name in the route.
func (r *rmqRoute) brokerAddr(name string) string {
	for _, b := range r.BrokerDatas {
		if b.BrokerName == name {
			return b.BrokerAddrs["0"]
		}
	}
	return ""
}

// rmqBrokerCall makes one call to the broker at addr.
func rmqBrokerCall(ctx context.Context, addr string, timeout time.Duration, code int, ext map[string]string, body []byte) ([]byte, error) {
	c, err := rmqDial(ctx, addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	resp, out, err := c.callBody(code, ext, body)
	if err != nil {
		return nil, err
	}
	if resp.Code != rmqSuccess {
		return nil, fmt.Errorf("code %d: %s", resp.Code, resp.Remark)
	}
	return out, nil
}

// rmqGroups returns the subscription group configs the broker at addr
// holds, by group name.
func rmqGroups(ctx context.Context, addr string, timeout time.Duration) (map[string]map[string]any, error) {
	body, err := rmqBrokerCall(ctx, addr, timeout, rmqGetAllGroups, nil, nil)
	if err != nil {
		return nil, err
	}
	var w struct {
		Table map[string]map[string]any `json:"subscriptionGroupTable"`
	}
	if err := json.Unmarshal(bareIntKey.ReplaceAll(body, []byte(`$1"$2"$3`)), &w); err != nil {
		return nil, fmt.Errorf("subscription groups: %w", err)
	}
	return w.Table, nil
}

// rocketmqTwins plans (apply false) or creates the shadow topics of topics
// and the shadow consumer groups of groups.
func rocketmqTwins(ctx context.Context, nameservers, topics, groups []string, topicNaming, groupNaming shadow.Naming, timeout time.Duration, apply bool, stdout, stderr io.Writer) int {
	for _, l := range []struct {
		what  string
		names []string
		n     shadow.Naming
	}{{"topic", topics, topicNaming}, {"consumer group", groups, groupNaming}} {
		for _, name := range l.names {
			if l.n.IsShadow(name) {
				fmt.Fprintf(stderr, "shadowlane shadow: rocketmq: %q is already a shadow %s; list production names\n", name, l.what)
				return exitUsage
			}
		}
	}
	ns, err := rmqDialAny(ctx, nameservers, timeout)
	if err != nil {
		fmt.Fprintf(stderr, "shadowlane shadow: rocketmq: cannot connect to a name server: %v\n", err)
		return exitSetup
	}
	defer ns.Close()
	code := exitOK
	var brokers []string // masters of the production topics, for the groups
	for _, t := range topics {
		twin := topicNaming.Shadow(t)
		p, err := ns.route(t)
		if err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow: rocketmq: route of %s: %v\n", t, err)
			return exitSetup
		}
		if p == nil {
			fmt.Fprintf(stderr, "shadowlane shadow: rocketmq: production topic %s not found\n", t)
			code = worst(code, exitViolation)
			continue
		}
		for _, a := range p.masters() {
			if !slices.Contains(brokers, a) {
				brokers = append(brokers, a)
			}
		}
		s, err := ns.route(twin)
		if err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow: rocketmq: route of %s: %v\n", twin, err)
			return exitSetup
		}
		if s != nil {
			fmt.Fprintf(stdout, "rocketmq topic %s: exists, %d write queue(s)\n", twin, s.writeQueues())
			continue
		}
		for _, qd := range p.QueueDatas {
			addr := p.brokerAddr(qd.BrokerName)
			what := fmt.Sprintf("on broker %s (%s) with %d write / %d read queue(s), perm %d", qd.BrokerName, addr, qd.WriteQueueNums, qd.ReadQueueNums, qd.Perm)
			if !apply {
				fmt.Fprintf(stdout, "rocketmq topic %s: would create %s\n", twin, what)
				continue
			}
			if addr == "" {
				fmt.Fprintf(stderr, "shadowlane shadow: rocketmq: create %s: broker %s has no master in the route\n", twin, qd.BrokerName)
				code = worst(code, exitViolation)
				continue
			}
			ext := map[string]string{
				"topic": twin, "defaultTopic": rmqDefaultTopic,
				"readQueueNums": strconv.Itoa(qd.ReadQueueNums), "writeQueueNums": strconv.Itoa(qd.WriteQueueNums),
				"perm": strconv.Itoa(qd.Perm), "topicFilterType": "SINGLE_TAG",
				"topicSysFlag": strconv.Itoa(qd.TopicSysFlag), "order": "false",
			}
			if _, err := rmqBrokerCall(ctx, addr, timeout, rmqUpdateCreateTopic, ext, nil); err != nil {
				fmt.Fprintf(stderr, "shadowlane shadow: rocketmq: create %s on %s: %v\n", twin, addr, err)
				code = worst(code, exitViolation)
				continue
			}
			fmt.Fprintf(stdout, "rocketmq topic %s: created %s\n", twin, what)
		}
	}
	if len(groups) == 0 {
		return code
	}
	if len(brokers) == 0 {
		fmt.Fprintln(stderr, "shadowlane shadow: rocketmq: no broker to create the shadow groups on: none of the topics was found")
		return worst(code, exitViolation)
	}
	sort.Strings(brokers)
	for _, b := range brokers {
		table, err := rmqGroups(ctx, b, timeout)
		if err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow: rocketmq: broker %s: %v\n", b, err)
			return worst(code, exitSetup)
		}
		for _, g := range groups {
			twin := groupNaming.Shadow(g)
			if _, ok := table[twin]; ok {
				fmt.Fprintf(stdout, "rocketmq group %s on %s: exists\n", twin, b)
				continue
			}
			cfg, from := maps.Clone(table[g]), "a copy of "+g+"'s config"
			if cfg == nil {
				cfg, from = map[string]any{}, "the broker's defaults ("+g+" not found there)"
			}
			cfg["groupName"] = twin
			if !apply {
				fmt.Fprintf(stdout, "rocketmq group %s on %s: would create with %s\n", twin, b, from)
				continue
			}
			body, err := json.Marshal(cfg)
			if err == nil {
				_, err = rmqBrokerCall(ctx, b, timeout, rmqUpdateCreateGroup, nil, body)
			}
			if err != nil {
				fmt.Fprintf(stderr, "shadowlane shadow: rocketmq: create group %s on %s: %v\n", twin, b, err)
				code = worst(code, exitViolation)
				continue
			}
			fmt.Fprintf(stdout, "rocketmq group %s on %s: created with %s\n", twin, b, from)
		}
	}
	return code
}
