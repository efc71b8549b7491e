package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq/remoting"
	"github.com/shadowlane/shadowlane/shadow"
)

// rocketmqCheckFlags are the RocketMQ flags of `shadowlane check`.
type rocketmqCheckFlags struct {
	nameservers, topics, groups string
	topicSuffix, groupSuffix    string
}

func (f *rocketmqCheckFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.nameservers, "rocketmq", "", "comma-separated RocketMQ name servers (host:9876) whose shadow topics and consumer groups to check")
	fs.StringVar(&f.topics, "rocketmq-topics", "", "comma-separated production RocketMQ topics (needed with --rocketmq)")
	fs.StringVar(&f.groups, "rocketmq-groups", "", "comma-separated production RocketMQ consumer groups whose shadow groups must have consumers online")
	fs.StringVar(&f.topicSuffix, "rocketmq-topic-suffix", shadow.DefaultTopic.Suffix, "suffix that names a shadow RocketMQ topic")
	fs.StringVar(&f.groupSuffix, "rocketmq-group-suffix", shadow.DefaultGroup.Suffix, "suffix that names a shadow RocketMQ consumer group")
}

// usage returns what is wrong with the flags, or "".
func (f *rocketmqCheckFlags) usage() string {
	if f.nameservers == "" {
		if f.topics != "" || f.groups != "" {
			return "--rocketmq-topics and --rocketmq-groups need --rocketmq"
		}
		return ""
	}
	if f.topics == "" {
		return "--rocketmq-topics is required with --rocketmq"
	}
	for _, n := range []struct {
		flag, names string
		naming      shadow.Naming
	}{
		{"--rocketmq-topic-suffix", f.topics, shadow.Naming{Suffix: f.topicSuffix}},
		{"--rocketmq-group-suffix", f.groups, shadow.Naming{Suffix: f.groupSuffix}},
	} {
		if msg := namingProblem(n.flag, n.naming, n.names); msg != "" {
			return msg
		}
	}
	return ""
}

// RocketMQ remoting request and response codes the check uses.
const (
	rmqGetRouteInfo    = 105
	rmqGetConsumerList = 38
	rmqSuccess         = 0
	rmqTopicNotExist   = 17
	rmqMaxFrame        = 16 << 20
	rmqCheckVersion    = 317 // a 4.x client's version
)

// rmqConn is one remoting connection used for synchronous calls.
type rmqConn struct {
	nc     net.Conn
	r      *bufio.Reader
	opaque int32
}

func rmqDial(ctx context.Context, addr string, timeout time.Duration) (*rmqConn, error) {
	d := net.Dialer{Timeout: min(timeout, 5*time.Second)}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	return &rmqConn{nc: nc, r: bufio.NewReader(nc)}, nil
}

func (c *rmqConn) Close() error { return c.nc.Close() }

// call sends one request and returns its response header and body.
func (c *rmqConn) call(code int, ext map[string]string) (*remoting.Command, []byte, error) {
	return c.callBody(code, ext, nil)
}

// callBody is call with a request body.
func (c *rmqConn) callBody(code int, ext map[string]string, body []byte) (*remoting.Command, []byte, error) {
	c.opaque++
	frame, err := remoting.AppendFrame(nil, &remoting.Command{Code: code, Language: "GO", Version: rmqCheckVersion, Opaque: c.opaque, ExtFields: ext, Body: body})
	if err != nil {
		return nil, nil, err
	}
	if _, err := c.nc.Write(frame); err != nil {
		return nil, nil, err
	}
	for {
		resp, err := remoting.ReadFrame(c.r, rmqMaxFrame)
		if err != nil {
			return nil, nil, err
		}
		if resp.Flag&remoting.ResponseFlag == 0 || resp.Opaque != c.opaque {
			continue // a request of the server's, or another call's answer
		}
		return resp, resp.Body, nil
	}
}

// rmqRoute is the part of a topic route the check reads.
type rmqRoute struct {
	QueueDatas []struct {
		BrokerName     string `json:"brokerName"`
		WriteQueueNums int    `json:"writeQueueNums"`
		ReadQueueNums  int    `json:"readQueueNums"`
		Perm           int    `json:"perm"`
		TopicSysFlag   int    `json:"topicSynFlag"`
	} `json:"queueDatas"`
	BrokerDatas []struct {
		BrokerName  string            `json:"brokerName"`
		BrokerAddrs map[string]string `json:"brokerAddrs"`
	} `json:"brokerDatas"`
}

// bareIntKey matches the unquoted integer object keys the Java name server
// writes (brokerAddrs {0:"host:port"}), which JSON does not allow.
var bareIntKey = regexp.MustCompile(`([{,]\s*)(-?\d+)(\s*:)`)

// route returns the route of topic, nil when the topic does not exist.
func (c *rmqConn) route(topic string) (*rmqRoute, error) {
	resp, body, err := c.call(rmqGetRouteInfo, map[string]string{"topic": topic})
	switch {
	case err != nil:
		return nil, err
	case resp.Code == rmqTopicNotExist:
		return nil, nil
	case resp.Code != rmqSuccess:
		return nil, fmt.Errorf("route of %s: code %d: %s", topic, resp.Code, resp.Remark)
	}
	r, err := parseRoute(body)
	if err != nil {
		return nil, fmt.Errorf("route of %s: %w", topic, err)
	}
	return r, nil
}

// parseRoute parses a route body, JSON but for the name server's bare
// integer keys.
func parseRoute(body []byte) (*rmqRoute, error) {
	var r rmqRoute
	if err := json.Unmarshal(bareIntKey.ReplaceAll(body, []byte(`$1"$2"$3`)), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func (r *rmqRoute) writeQueues() (n int) {
	for _, q := range r.QueueDatas {
		n += q.WriteQueueNums
	}
	return n
}

// masters returns the master (id 0) broker addresses of the route.
func (r *rmqRoute) masters() []string {
	var out []string
	for _, b := range r.BrokerDatas {
		if a := b.BrokerAddrs["0"]; a != "" {
			out = append(out, a)
		}
	}
	return out
}

// consumers returns how many consumers of group are online at the broker
// addr (a group the broker does not know has none).
func rmqConsumers(ctx context.Context, addr, group string, timeout time.Duration) (int, error) {
	c, err := rmqDial(ctx, addr, timeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	resp, body, err := c.call(rmqGetConsumerList, map[string]string{"consumerGroup": group})
	if err != nil {
		return 0, err
	}
	if resp.Code != rmqSuccess {
		return 0, nil // SYSTEM_ERROR "no consumer for this group"
	}
	var list struct {
		IDs []string `json:"consumerIdList"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return 0, fmt.Errorf("consumer list of %s: %w", group, err)
	}
	return len(list.IDs), nil
}

// checkRocketMQ checks, at the first reachable name server, that the shadow
// twin of every topic exists with as many write queues, and, at the
// brokers those topics live on, that the shadow group of every group has
// consumers online when the production group has.
func checkRocketMQ(ctx context.Context, nameservers, topics, groups []string, topicNaming, groupNaming shadow.Naming, timeout time.Duration) []finding {
	var c *rmqConn
	var errs []error
	for _, ns := range nameservers {
		var err error
		if c, err = rmqDial(ctx, ns, timeout); err == nil {
			break
		}
		errs = append(errs, err)
	}
	if c == nil {
		return []finding{findUnreachable("name server", errors.Join(errs...))}
	}
	defer c.Close()
	out := []finding{findOK("name server", "reachable at %s", c.nc.RemoteAddr())}
	var brokers []string
	for _, t := range topics {
		twin := topicNaming.Shadow(t)
		label := t + " -> " + twin
		p, perr := c.route(t)
		if perr != nil {
			return append(out, findUnreachable(label, perr))
		}
		s, serr := c.route(twin)
		if serr != nil {
			return append(out, findUnreachable(label, serr))
		}
		switch {
		case p == nil:
			out = append(out, findErr(label, "production topic not found"))
			continue
		case s == nil:
			out = append(out, findErr(label, "missing: create %s with %d write queue(s)", twin, p.writeQueues()))
		case p.writeQueues() != s.writeQueues():
			out = append(out, findErr(label, "different: %d write queue(s) in production, %d in shadow (sharding-key ordering and consumer parallelism differ)", p.writeQueues(), s.writeQueues()))
		default:
			out = append(out, findOK(label, "exists, %d write queue(s)", s.writeQueues()))
		}
		for _, a := range p.masters() {
			if !slices.Contains(brokers, a) {
				brokers = append(brokers, a)
			}
		}
	}
	for _, g := range groups {
		twin := groupNaming.Shadow(g)
		label := "group " + g + " -> " + twin
		if len(brokers) == 0 {
			out = append(out, findErr(label, "no broker to ask: none of the topics was found"))
			continue
		}
		var np, ns int
		for _, b := range brokers {
			n, err := rmqConsumers(ctx, b, g, timeout)
			if err != nil {
				return append(out, findUnreachable("broker "+b, err))
			}
			m, err := rmqConsumers(ctx, b, twin, timeout)
			if err != nil {
				return append(out, findUnreachable("broker "+b, err))
			}
			np, ns = max(np, n), max(ns, m)
		}
		switch {
		case ns > 0:
			out = append(out, findOK(label, "%d consumer(s) online (production: %d)", ns, np))
		case np > 0:
			out = append(out, findWarn(label, "no consumer online while production has %d: load-test messages will pile up on the shadow topics", np))
		default:
			out = append(out, findWarn(label, "no consumer online in either group"))
		}
	}
	return out
}

// rocketmqList splits a name server list (RocketMQ writes "a;b"; commas
// work too).
func rocketmqList(s string) []string {
	return splitList(strings.ReplaceAll(s, ";", ","))
}
