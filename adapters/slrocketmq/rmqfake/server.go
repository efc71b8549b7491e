package rmqfake

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq/remoting"
)

// Request codes the fixture serves (the client's names, in RocketMQ's
// RequestCode numbering).
const (
	CodeSendMessage           = 10
	CodePullMessage           = 11
	CodeQueryConsumerOffset   = 14
	CodeUpdateConsumerOffset  = 15
	CodeSearchOffsetByTime    = 29
	CodeGetMaxOffset          = 30
	CodeGetMinOffset          = 31
	CodeHeartBeat             = 34
	CodeConsumerSendMsgBack   = 36
	CodeGetConsumerListGroup  = 38
	CodeNotifyConsumerIDs     = 40
	CodeLockBatchMQ           = 41
	CodeUnlockBatchMQ         = 42
	CodeGetRouteInfoByTopic   = 105
	CodeSendMessageV2         = 310
	CodeSendBatchMessage      = 320
	codeSuccess               = 0
	codeSystemError           = 1
	codeNotSupported          = 3
	codeTopicNotExist         = 17
	codePullNotFound          = 19
	codePullRetryImmediately  = 20
	codeQueryNotFound         = 22
	nameValueSeparator        = '\x01'
	propertySeparator         = '\x02'
	defaultMaxHold            = time.Second
	maxFrame                  = 64 << 20
	brokerName                = "rmqfake-broker"
	clusterName               = "rmqfake"
	retryPrefix               = "%RETRY%"
	dlqPrefix                 = "%DLQ%"
	propertyRetryTopic        = "RETRY_TOPIC"
	propertyOriginMessageID   = "ORIGIN_MESSAGE_ID"
	propertyTags              = "TAGS"
	serverVersion             = 399
	defaultMaxReconsumeTimes  = 16
	sysFlagCompressed         = 0x1
	pullSysFlagCommitOffset   = 0x1
	maxPullBatch              = 256
	retryOrDLQQueueCount      = 1
	languageJava              = "JAVA"
	storeHostPortPlaceholder  = 0
	bornHostPlaceholderIPv4   = "\x7f\x00\x00\x01"
	consumerIDListField       = "consumerIdList"
	lockOKField               = "lockOKMQSet"
	maxReconsumeTimesExtField = "maxReconsumeTimes"
)

// Message is one message as the fixture stored it.
type Message struct {
	Topic           string
	QueueID         int
	QueueOffset     int64
	CommitLogOffset int64
	Body            []byte
	Flag            int32
	SysFlag         int32
	// Properties are the message's properties as parsed by the fixture
	// (a key given twice keeps its last value); RawProperties is the
	// property string exactly as it arrived.
	Properties     map[string]string
	RawProperties  string
	ProducerGroup  string
	BornTimestamp  int64
	StoreTimestamp int64
	ReconsumeTimes int32
}

// Server is the fixture: a name server and one broker on one loopback
// listener. Create it with [New]; stop it with [Server.Close].
type Server struct {
	ln   net.Listener
	addr string
	logf func(format string, args ...any)

	mu       sync.Mutex
	maxHold  time.Duration
	topics   map[string][][]*Message // topic -> queues -> messages
	log      []*Message              // commit log: index = commit-log offset
	offsets  map[offsetKey]int64
	pulled   map[offsetKey]bool
	members  map[string]map[string]*conn // group -> client id -> connection
	notify   chan struct{}               // closed and replaced on every append
	requests map[int]int
	unknown  map[int]int
	conns    map[*conn]struct{}
	groups   map[string]map[string]any // subscription group configs (admin.go)
	closed   bool
	opaque   int32
	wg       sync.WaitGroup
}

type offsetKey struct {
	group, topic string
	queue        int
}

// New starts a fixture on 127.0.0.1 (a free port). logf, when not nil,
// receives a line for every request code the fixture does not serve and
// every protocol error (pass t.Logf).
func New(logf func(format string, args ...any)) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("rmqfake: listen: %w", err)
	}
	s := &Server{
		ln:       ln,
		addr:     ln.Addr().String(),
		logf:     logf,
		maxHold:  defaultMaxHold,
		topics:   map[string][][]*Message{},
		offsets:  map[offsetKey]int64{},
		pulled:   map[offsetKey]bool{},
		members:  map[string]map[string]*conn{},
		notify:   make(chan struct{}),
		requests: map[int]int{},
		unknown:  map[int]int{},
		conns:    map[*conn]struct{}{},
		groups:   map[string]map[string]any{},
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr returns "127.0.0.1:port", the address of both the name server and
// the broker: pass it to the client as its name server.
func (s *Server) Addr() string { return s.addr }

// SetMaxHold sets how long a pull request without messages is held at most
// (long polling; default 1s).
func (s *Server) SetMaxHold(d time.Duration) {
	s.mu.Lock()
	s.maxHold = d
	s.mu.Unlock()
}

// CreateTopic creates topic with queues read/write queues (at least one).
// Creating an existing topic keeps its messages.
func (s *Server) CreateTopic(topic string, queues int) {
	if queues < 1 {
		queues = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.topics[topic]; !ok {
		s.topics[topic] = make([][]*Message, queues)
	}
}

// Topics returns the names of the topics that exist, sorted.
func (s *Server) Topics() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.topics))
}

// Messages returns copies of the messages stored on topic, queue by queue,
// in offset order.
func (s *Server) Messages(topic string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, q := range s.topics[topic] {
		for _, m := range q {
			c := *m
			c.Properties = make(map[string]string, len(m.Properties))
			for k, v := range m.Properties {
				c.Properties[k] = v
			}
			out = append(out, c)
		}
	}
	return out
}

// Offset returns the offset group committed for a queue of topic and
// whether it committed one.
func (s *Server) Offset(group, topic string, queue int) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.offsets[offsetKey{group, topic, queue}]
	return o, ok
}

// Pulled reports whether group has pulled from every queue of each of
// topics at least once (a consumer that has, has finished its start-up
// rebalance for them).
func (s *Server) Pulled(group string, topics ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range topics {
		q, ok := s.topics[t]
		if !ok {
			return false
		}
		for i := range q {
			if !s.pulled[offsetKey{group, t, i}] {
				return false
			}
		}
	}
	return true
}

// AddMember makes clientID a member of group without a client connection
// (a consumer online elsewhere, for tests of tools that ask the broker);
// it stays until [Server.Close].
func (s *Server) AddMember(group, clientID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.members[group] == nil {
		s.members[group] = map[string]*conn{}
	}
	s.members[group][clientID] = nil
}

// Members returns the client ids that are members of group, sorted.
func (s *Server) Members(group string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.membersLocked(group)
}

func (s *Server) membersLocked(group string) []string {
	return slices.Sorted(maps.Keys(s.members[group]))
}

// Requests returns how many requests of each code the fixture received.
func (s *Server) Requests() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.requests)
}

// Unknown returns how many requests of each code the fixture does not serve
// it received (answered REQUEST_CODE_NOT_SUPPORTED).
func (s *Server) Unknown() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.unknown)
}

// Close stops the listener, closes every connection, wakes held pulls and
// waits for the fixture's goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.notify)
	s.notify = make(chan struct{})
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range conns {
		c.nc.Close()
	}
	s.wg.Wait()
	return err
}

func (s *Server) logln(format string, args ...any) {
	if s.logf != nil {
		s.logf("rmqfake: "+format, args...)
	}
}

type conn struct {
	nc net.Conn
	wm sync.Mutex
}

func (c *conn) write(cmd *remoting.Command) error {
	frame, err := remoting.AppendFrame(nil, cmd)
	if err != nil {
		return err
	}
	c.wm.Lock()
	defer c.wm.Unlock()
	_, err = c.nc.Write(frame)
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := &conn{nc: nc}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

func (s *Server) serve(c *conn) {
	defer s.wg.Done()
	defer s.drop(c)
	r := bufio.NewReader(c.nc)
	var reqs sync.WaitGroup
	defer reqs.Wait()
	for {
		cmd, err := remoting.ReadFrame(r, maxFrame)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) {
				s.mu.Lock()
				closed := s.closed
				s.mu.Unlock()
				if !closed {
					s.logln("connection %s: %v", c.nc.RemoteAddr(), err)
				}
			}
			c.nc.Close()
			return
		}
		if cmd.Flag&remoting.ResponseFlag != 0 {
			continue // a client's answer to a notification: nothing to do
		}
		reqs.Add(1)
		go func() {
			defer reqs.Done()
			resp := s.handle(c, cmd)
			resp.Opaque, resp.Flag, resp.Language, resp.Version = cmd.Opaque, remoting.ResponseFlag, languageJava, serverVersion
			if err := c.write(resp); err != nil {
				c.nc.Close()
			}
		}()
	}
}

// drop forgets a closed connection and the group memberships it carried.
func (s *Server) drop(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	var changed []string
	for g, m := range s.members {
		for id, mc := range m {
			if mc == c {
				delete(m, id)
				changed = append(changed, g)
			}
		}
	}
	s.mu.Unlock()
	for _, g := range changed {
		s.notifyGroup(g, nil)
	}
}

func reply(code int, remark string) *remoting.Command {
	return &remoting.Command{Code: code, Remark: remark}
}

func success(ext map[string]string, body []byte) *remoting.Command {
	return &remoting.Command{Code: codeSuccess, ExtFields: ext, Body: body}
}

func (s *Server) handle(c *conn, req *remoting.Command) *remoting.Command {
	s.mu.Lock()
	s.requests[req.Code]++
	s.mu.Unlock()
	f := req.ExtFields
	switch req.Code {
	case CodeGetRouteInfoByTopic:
		return s.route(f["topic"])
	case CodeSendMessage:
		return s.send(f["producerGroup"], f["topic"], f["queueId"], f["sysFlag"], f["flag"], f["properties"], f["bornTimestamp"], f["reconsumeTimes"], f["batch"] == "true", req.Body)
	case CodeSendMessageV2, CodeSendBatchMessage:
		return s.send(f["a"], f["b"], f["e"], f["f"], f["h"], f["i"], f["g"], f["j"], f["m"] == "true" || req.Code == CodeSendBatchMessage, req.Body)
	case CodePullMessage:
		return s.pull(f)
	case CodeQueryConsumerOffset:
		q, _ := strconv.Atoi(f["queueId"])
		if o, ok := s.Offset(f["consumerGroup"], f["topic"], q); ok {
			return okExt("offset", strconv.FormatInt(o, 10))
		}
		return reply(codeQueryNotFound, "no offset committed")
	case CodeUpdateConsumerOffset:
		q, _ := strconv.Atoi(f["queueId"])
		o, err := strconv.ParseInt(f["commitOffset"], 10, 64)
		if err != nil {
			return reply(codeSystemError, "bad commitOffset")
		}
		s.commit(f["consumerGroup"], f["topic"], q, o)
		return success(nil, nil)
	case CodeGetMaxOffset, CodeGetMinOffset, CodeSearchOffsetByTime:
		return s.offsetOf(req.Code, f)
	case CodeHeartBeat:
		return s.heartbeat(c, req.Body)
	case CodeGetConsumerListGroup:
		s.mu.Lock()
		ids := s.membersLocked(f["consumerGroup"])
		s.mu.Unlock()
		b, _ := json.Marshal(map[string][]string{consumerIDListField: ids})
		return success(nil, b)
	case CodeConsumerSendMsgBack:
		return s.sendBack(f)
	case CodeLockBatchMQ:
		var body struct {
			MQSet json.RawMessage `json:"mqSet"`
		}
		if err := json.Unmarshal(req.Body, &body); err != nil {
			return reply(codeSystemError, "bad lock body")
		}
		b, _ := json.Marshal(map[string]json.RawMessage{lockOKField: body.MQSet})
		return success(nil, b)
	case CodeUnlockBatchMQ:
		return success(nil, nil)
	case CodeUpdateAndCreateTopic, CodeUpdateAndCreateSubscriptionGroup, CodeGetAllSubscriptionGroup:
		return s.admin(req) // admin.go
	}
	s.mu.Lock()
	s.unknown[req.Code]++
	s.mu.Unlock()
	s.logln("request code %d not served (ext %v)", req.Code, f)
	return reply(codeNotSupported, fmt.Sprintf("rmqfake: request code %d not supported", req.Code))
}

func okExt(k, v string) *remoting.Command { return success(map[string]string{k: v}, nil) }

// queuesLocked returns the queues of topic, creating retry and dead-letter
// topics on first use.
func (s *Server) queuesLocked(topic string) ([][]*Message, bool) {
	q, ok := s.topics[topic]
	if !ok && (strings.HasPrefix(topic, retryPrefix) || strings.HasPrefix(topic, dlqPrefix)) && len(topic) > len(dlqPrefix) {
		q = make([][]*Message, retryOrDLQQueueCount)
		s.topics[topic] = q
		ok = true
	}
	return q, ok
}

func (s *Server) route(topic string) *remoting.Command {
	s.mu.Lock()
	q, ok := s.queuesLocked(topic)
	s.mu.Unlock()
	if !ok {
		return reply(codeTopicNotExist, "No topic route info in name server for the topic: "+topic)
	}
	type queueData struct {
		BrokerName     string `json:"brokerName"`
		ReadQueueNums  int    `json:"readQueueNums"`
		WriteQueueNums int    `json:"writeQueueNums"`
		Perm           int    `json:"perm"`
		TopicSynFlag   int    `json:"topicSynFlag"`
	}
	type brokerData struct {
		Cluster     string            `json:"cluster"`
		BrokerName  string            `json:"brokerName"`
		BrokerAddrs map[string]string `json:"brokerAddrs"`
	}
	b, _ := json.Marshal(struct {
		QueueDatas  []queueData  `json:"queueDatas"`
		BrokerDatas []brokerData `json:"brokerDatas"`
	}{
		QueueDatas:  []queueData{{BrokerName: brokerName, ReadQueueNums: len(q), WriteQueueNums: len(q), Perm: 6}},
		BrokerDatas: []brokerData{{Cluster: clusterName, BrokerName: brokerName, BrokerAddrs: map[string]string{"0": s.addr}}},
	})
	return success(nil, b)
}

// ParseProperties parses a property string as the client writes it
// (name \x01 value \x02, repeated); a key given twice keeps its last value.
// Items without exactly one separator are skipped, as the client does.
func ParseProperties(raw string) map[string]string {
	out := map[string]string{}
	for _, item := range strings.Split(raw, string(propertySeparator)) {
		k, v, found := strings.Cut(item, string(nameValueSeparator))
		if !found || strings.IndexByte(v, nameValueSeparator) >= 0 {
			continue
		}
		out[k] = v
	}
	return out
}

// batchItem is one message of a batch body (the client's Message.Marshal
// layout: total size, magic, body CRC, flag, body size, body, property
// size (2 bytes), properties).
type batchItem struct {
	flag  int32
	body  []byte
	props string
}

func parseBatch(b []byte) ([]batchItem, error) {
	var out []batchItem
	for len(b) > 0 {
		if len(b) < 20 {
			return nil, errors.New("short batch item")
		}
		total := int(binary.BigEndian.Uint32(b[0:]))
		if total < 22 || total > len(b) {
			return nil, fmt.Errorf("batch item size %d of %d bytes left", total, len(b))
		}
		it := b[:total]
		flag := int32(binary.BigEndian.Uint32(it[12:]))
		blen := int(binary.BigEndian.Uint32(it[16:]))
		if blen < 0 || 20+blen+2 > total {
			return nil, fmt.Errorf("batch body size %d in item of %d", blen, total)
		}
		body := it[20 : 20+blen]
		plen := int(binary.BigEndian.Uint16(it[20+blen:]))
		if 22+blen+plen != total {
			return nil, fmt.Errorf("batch property size %d in item of %d", plen, total)
		}
		out = append(out, batchItem{flag: flag, body: body, props: string(it[22+blen:])})
		b = b[total:]
	}
	return out, nil
}

func (s *Server) send(group, topic, queue, sysFlag, flag, props, born, reconsume string, batch bool, body []byte) *remoting.Command {
	qid, err := strconv.Atoi(queue)
	if err != nil {
		return reply(codeSystemError, "bad queueId")
	}
	sf, _ := strconv.ParseInt(sysFlag, 10, 32)
	fl, _ := strconv.ParseInt(flag, 10, 32)
	bt, _ := strconv.ParseInt(born, 10, 64)
	rc, _ := strconv.ParseInt(reconsume, 10, 32)
	var items []batchItem
	if batch {
		if items, err = parseBatch(body); err != nil {
			return reply(codeSystemError, "rmqfake: bad batch: "+err.Error())
		}
	} else {
		items = []batchItem{{flag: int32(fl), body: body, props: props}}
	}
	s.mu.Lock()
	q, ok := s.queuesLocked(topic)
	if !ok || topic == "" {
		s.mu.Unlock()
		return reply(codeTopicNotExist, "topic["+topic+"] not exist, apply first please!")
	}
	if qid < 0 || qid >= len(q) {
		s.mu.Unlock()
		return reply(codeSystemError, fmt.Sprintf("queueId %d out of range", qid))
	}
	var first *Message
	now := time.Now().UnixMilli()
	ids := make([]string, 0, len(items))
	for _, it := range items {
		m := &Message{
			Topic: topic, QueueID: qid, Body: append([]byte(nil), it.body...), Flag: it.flag,
			SysFlag: int32(sf) & sysFlagCompressed, Properties: ParseProperties(it.props), RawProperties: it.props,
			ProducerGroup: group, BornTimestamp: bt, StoreTimestamp: now, ReconsumeTimes: int32(rc),
		}
		if batch {
			m.SysFlag = 0
		}
		s.appendLocked(m)
		ids = append(ids, s.msgID(m.CommitLogOffset))
		if first == nil {
			first = m
		}
	}
	s.mu.Unlock()
	return success(map[string]string{
		"msgId":       strings.Join(ids, ","),
		"queueId":     strconv.Itoa(qid),
		"queueOffset": strconv.FormatInt(first.QueueOffset, 10),
	}, nil)
}

// appendLocked stores m at the end of its queue and the commit log and
// wakes held pulls.
func (s *Server) appendLocked(m *Message) {
	q := s.topics[m.Topic]
	m.QueueOffset = int64(len(q[m.QueueID]))
	m.CommitLogOffset = int64(len(s.log))
	q[m.QueueID] = append(q[m.QueueID], m)
	s.log = append(s.log, m)
	close(s.notify)
	s.notify = make(chan struct{})
}

// msgID is the broker's offset message id: store host (4 bytes), port (4
// bytes), commit-log offset (8 bytes), in upper-case hex.
func (s *Server) msgID(off int64) string {
	var b [16]byte
	copy(b[:4], bornHostPlaceholderIPv4)
	if _, p, err := net.SplitHostPort(s.addr); err == nil {
		n, _ := strconv.Atoi(p)
		binary.BigEndian.PutUint32(b[4:], uint32(n))
	}
	binary.BigEndian.PutUint64(b[8:], uint64(off))
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

func (s *Server) commit(group, topic string, queue int, off int64) {
	s.mu.Lock()
	s.offsets[offsetKey{group, topic, queue}] = off
	s.mu.Unlock()
}

func (s *Server) offsetOf(code int, f map[string]string) *remoting.Command {
	qid, _ := strconv.Atoi(f["queueId"])
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queuesLocked(f["topic"])
	if !ok || qid < 0 || qid >= len(q) {
		return reply(codeTopicNotExist, "no such queue")
	}
	var off int64
	switch code {
	case CodeGetMaxOffset:
		off = int64(len(q[qid]))
	case CodeGetMinOffset:
		off = 0
	case CodeSearchOffsetByTime:
		ts, _ := strconv.ParseInt(f["timestamp"], 10, 64)
		off = int64(sort.Search(len(q[qid]), func(i int) bool { return q[qid][i].StoreTimestamp >= ts }))
	}
	return okExt("offset", strconv.FormatInt(off, 10))
}

// tagFilter returns a matcher for a tag subscription expression.
func tagFilter(expr string) func(*Message) bool {
	expr = strings.TrimSpace(expr)
	if expr == "" || expr == "*" {
		return func(*Message) bool { return true }
	}
	set := map[string]bool{}
	for _, t := range strings.Split(expr, "||") {
		if t = strings.TrimSpace(t); t != "" {
			set[t] = true
		}
	}
	return func(m *Message) bool { return set[m.Properties[propertyTags]] }
}

func (s *Server) pull(f map[string]string) *remoting.Command {
	topic, group := f["topic"], f["consumerGroup"]
	qid, _ := strconv.Atoi(f["queueId"])
	off, _ := strconv.ParseInt(f["queueOffset"], 10, 64)
	max, _ := strconv.Atoi(f["maxMsgNums"])
	if max <= 0 || max > maxPullBatch {
		max = maxPullBatch
	}
	sysFlag, _ := strconv.Atoi(f["sysFlag"])
	suspend, _ := strconv.ParseInt(f["suspendTimeoutMillis"], 10, 64)
	if sysFlag&pullSysFlagCommitOffset != 0 {
		if co, err := strconv.ParseInt(f["commitOffset"], 10, 64); err == nil && co >= 0 {
			s.commit(group, topic, qid, co)
		}
	}
	match := tagFilter(f["subscription"])
	s.mu.Lock()
	s.pulled[offsetKey{group, topic, qid}] = true
	hold := s.maxHold
	s.mu.Unlock()
	if d := time.Duration(suspend) * time.Millisecond; d < hold {
		hold = d
	}
	deadline := time.Now().Add(hold)
	for {
		s.mu.Lock()
		q, ok := s.queuesLocked(topic)
		if !ok || qid < 0 || qid >= len(q) {
			s.mu.Unlock()
			return reply(codeTopicNotExist, "no such queue")
		}
		msgs := q[qid]
		maxOff := int64(len(msgs))
		if off < 0 {
			off = 0
		}
		if off > maxOff {
			off = maxOff
		}
		var body []byte
		n, next := 0, off
		for ; next < maxOff && n < max; next++ {
			if m := msgs[next]; match(m) {
				body = s.encodeLocked(body, m)
				n++
			}
		}
		wake, closed := s.notify, s.closed
		s.mu.Unlock()
		ext := map[string]string{
			"nextBeginOffset":      strconv.FormatInt(next, 10),
			"minOffset":            "0",
			"maxOffset":            strconv.FormatInt(maxOff, 10),
			"suggestWhichBrokerId": "0",
		}
		switch {
		case n > 0:
			return success(ext, body)
		case next > off:
			return &remoting.Command{Code: codePullRetryImmediately, ExtFields: ext}
		}
		wait := time.Until(deadline)
		if closed || wait <= 0 {
			return &remoting.Command{Code: codePullNotFound, ExtFields: ext}
		}
		t := time.NewTimer(wait)
		select {
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// encodeLocked appends m in the broker's store layout, the layout the
// client decodes pull bodies with.
func (s *Server) encodeLocked(b []byte, m *Message) []byte {
	props := m.RawProperties
	size := 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 4 + len(m.Body) + 1 + len(m.Topic) + 2 + len(props)
	var port uint32
	if _, p, err := net.SplitHostPort(s.addr); err == nil {
		n, _ := strconv.Atoi(p)
		port = uint32(n)
	}
	u32 := func(v uint32) { b = binary.BigEndian.AppendUint32(b, v) }
	u64 := func(v uint64) { b = binary.BigEndian.AppendUint64(b, v) }
	u32(uint32(size))
	u32(0xdaa320a7) // magic code
	u32(0)          // body CRC (not checked by the client)
	u32(uint32(m.QueueID))
	u32(uint32(m.Flag))
	u64(uint64(m.QueueOffset))
	u64(uint64(m.CommitLogOffset))
	u32(uint32(m.SysFlag))
	u64(uint64(m.BornTimestamp))
	b = append(b, bornHostPlaceholderIPv4...)
	u32(storeHostPortPlaceholder)
	u64(uint64(m.StoreTimestamp))
	b = append(b, bornHostPlaceholderIPv4...)
	u32(port)
	u32(uint32(m.ReconsumeTimes))
	u64(0) // prepared transaction offset
	u32(uint32(len(m.Body)))
	b = append(b, m.Body...)
	b = append(b, byte(len(m.Topic)))
	b = append(b, m.Topic...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(props)))
	b = append(b, props...)
	return b
}

func (s *Server) heartbeat(c *conn, body []byte) *remoting.Command {
	var hb struct {
		ClientID  string `json:"clientID"`
		Consumers []struct {
			GroupName string `json:"groupName"`
		} `json:"consumerDataSet"`
	}
	if err := json.Unmarshal(body, &hb); err != nil || hb.ClientID == "" {
		return reply(codeSystemError, "bad heartbeat")
	}
	groups := map[string]bool{}
	for _, cd := range hb.Consumers {
		groups[cd.GroupName] = true
	}
	var changed []string
	s.mu.Lock()
	for g, m := range s.members {
		if mc, in := m[hb.ClientID]; in && (!groups[g] || mc != c) {
			delete(m, hb.ClientID)
			if !groups[g] {
				changed = append(changed, g)
			}
		}
	}
	for g := range groups {
		m := s.members[g]
		if m == nil {
			m = map[string]*conn{}
			s.members[g] = m
		}
		if _, in := m[hb.ClientID]; !in {
			changed = append(changed, g)
		}
		m[hb.ClientID] = c
	}
	s.mu.Unlock()
	for _, g := range changed {
		s.notifyGroup(g, c)
	}
	return success(nil, nil)
}

// notifyGroup tells every member of group but the one on skip that its
// membership changed (NOTIFY_CONSUMER_IDS_CHANGED, one-way), so they
// rebalance now. (A real broker tells the new member too; its client
// rebalances at start anyway, and the extra rebalance would race with a
// quick Shutdown in the client.)
func (s *Server) notifyGroup(group string, skip *conn) {
	s.mu.Lock()
	var cs []*conn
	for _, c := range s.members[group] {
		if c != nil && c != skip { // AddMember's members have no connection
			cs = append(cs, c)
		}
	}
	s.opaque++
	op := s.opaque
	s.mu.Unlock()
	for _, c := range cs {
		_ = c.write(&remoting.Command{Code: CodeNotifyConsumerIDs, Language: languageJava, Version: serverVersion, Opaque: op, ExtFields: map[string]string{"consumerGroup": group}})
	}
}

func (s *Server) sendBack(f map[string]string) *remoting.Command {
	group := f["group"]
	off, err := strconv.ParseInt(f["offset"], 10, 64)
	if err != nil || group == "" {
		return reply(codeSystemError, "bad send-back header")
	}
	delay, _ := strconv.Atoi(f["delayLevel"])
	maxTimes, err := strconv.Atoi(f[maxReconsumeTimesExtField])
	if err != nil || maxTimes <= 0 {
		maxTimes = defaultMaxReconsumeTimes
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if off < 0 || off >= int64(len(s.log)) {
		return reply(codeSystemError, "no message at commit-log offset "+f["offset"])
	}
	orig := s.log[off]
	props := make(map[string]string, len(orig.Properties)+2)
	for k, v := range orig.Properties {
		props[k] = v
	}
	if props[propertyRetryTopic] == "" {
		props[propertyRetryTopic] = f["originTopic"]
	}
	if props[propertyOriginMessageID] == "" {
		props[propertyOriginMessageID] = f["originMsgId"]
	}
	topic := retryPrefix + group
	times := orig.ReconsumeTimes + 1
	if delay < 0 || int(times) > maxTimes {
		topic = dlqPrefix + group
	}
	if _, ok := s.queuesLocked(topic); !ok {
		return reply(codeSystemError, "cannot create "+topic)
	}
	m := &Message{
		Topic: topic, Body: orig.Body, Flag: orig.Flag, SysFlag: orig.SysFlag,
		Properties: props, RawProperties: formatProperties(props), ProducerGroup: orig.ProducerGroup,
		BornTimestamp: orig.BornTimestamp, StoreTimestamp: time.Now().UnixMilli(), ReconsumeTimes: times,
	}
	s.appendLocked(m)
	return success(nil, nil)
}

func formatProperties(p map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(p)) {
		b.WriteString(k)
		b.WriteByte(nameValueSeparator)
		b.WriteString(p[k])
		b.WriteByte(propertySeparator)
	}
	return b.String()
}
