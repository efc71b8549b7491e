package rmqfake

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq/remoting"
)

// Admin request codes the fixture serves, as `shadowlane shadow create`
// sends them to a broker.
const (
	CodeUpdateAndCreateTopic             = 17
	CodeUpdateAndCreateSubscriptionGroup = 200
	CodeGetAllSubscriptionGroup          = 201
)

// CreateGroup creates (or replaces) the subscription group config of
// group, as a broker holds it: cfg is the config's JSON object (fields of
// RocketMQ's SubscriptionGroupConfig, such as retryMaxTimes); its
// groupName is set to group. The fixture does not create groups on its
// own (a broker with autoCreateSubscriptionGroup=false).
func (s *Server) CreateGroup(group string, cfg map[string]any) {
	c := maps.Clone(cfg)
	if c == nil {
		c = map[string]any{}
	}
	c["groupName"] = group
	s.mu.Lock()
	s.groups[group] = c
	s.mu.Unlock()
}

// Group returns a copy of the subscription group config of group.
func (s *Server) Group(group string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.groups[group]
	return maps.Clone(c), ok
}

// Groups returns the names of the subscription groups, sorted.
func (s *Server) Groups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.groups))
}

// admin serves UPDATE_AND_CREATE_TOPIC (the topic gets max(read, write)
// queues; an existing topic keeps its queues and messages),
// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (body: the group's config JSON) and
// GET_ALL_SUBSCRIPTIONGROUP_CONFIG (body: {"subscriptionGroupTable": ...}).
func (s *Server) admin(req *remoting.Command) *remoting.Command {
	f := req.ExtFields
	switch req.Code {
	case CodeUpdateAndCreateTopic:
		topic := f["topic"]
		r, _ := strconv.Atoi(f["readQueueNums"])
		w, _ := strconv.Atoi(f["writeQueueNums"])
		if topic == "" || max(r, w) < 1 {
			return reply(codeSystemError, "rmqfake: create topic: want topic and queue numbers")
		}
		s.CreateTopic(topic, max(r, w))
		return success(nil, nil)
	case CodeUpdateAndCreateSubscriptionGroup:
		var cfg map[string]any
		if err := json.Unmarshal(req.Body, &cfg); err != nil {
			return reply(codeSystemError, "rmqfake: bad subscription group body: "+err.Error())
		}
		g, _ := cfg["groupName"].(string)
		if g == "" {
			return reply(codeSystemError, "rmqfake: subscription group without groupName")
		}
		s.CreateGroup(g, cfg)
		return success(nil, nil)
	default: // CodeGetAllSubscriptionGroup
		s.mu.Lock()
		b, err := json.Marshal(map[string]any{
			"subscriptionGroupTable": s.groups,
			"dataVersion":            map[string]any{"timestamp": 0, "counter": len(s.groups)},
		})
		s.mu.Unlock()
		if err != nil {
			return reply(codeSystemError, "rmqfake: "+err.Error())
		}
		return success(nil, b)
	}
}
