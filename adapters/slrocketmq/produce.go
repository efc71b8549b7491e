package slrocketmq

import (
	"context"
	"fmt"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// ProducerInterceptor returns the producer interceptor that applies the
// produce rules to every message the producer sends (SendSync, SendAsync,
// SendOneWay, Request, RequestAsync; a batch as a whole): install it with
// producer.WithInterceptor, last, so that it sees the message as it is
// sent. [Shadow.NewProducer] does that for you.
//
// Under a load-test mark (see [propagation.With]) the message goes to the
// shadow twin of its topic with the mark in the X-Shadowlane-Run and
// X-Shadowlane-Env properties; a marked message for a topic without a
// configured twin is refused with a [*shadow.Error] wrapping
// [shadow.ErrNoShadowTarget], an unmarked one for a shadow topic with
// [shadow.ErrShadowFromProduction]. Unmarked messages keep their topic and
// lose any stale mark property (copied from a consumed message, say).
//
// A refused message is not sent: the interceptor returns the error without
// calling the client, and empties the message's topic, so that a client
// path that sends after the interceptor whatever it returned
// (RequestAsync does) fails with the client's own error instead of
// sending it. The caller's *primitive.Message is changed in place (topic
// and properties), as the client itself changes it.
func (s *Shadow) ProducerInterceptor() primitive.Interceptor { return s.produce }

func (s *Shadow) produce(ctx context.Context, req, reply any, next primitive.Invoker) error {
	m := propagation.FromContext(ctx)
	msg, ok := req.(*primitive.Message)
	if !ok || msg == nil {
		if m.Run == "" {
			return next(ctx, req, reply)
		}
		return shadow.Refuse(Store, "", "unknown request type in the producer interceptor", m, shadow.ErrUnsupported)
	}
	if err := s.prepare(m, msg); err != nil {
		msg.Topic = ""
		return err
	}
	err := next(ctx, req, reply)
	s.countPublish(ctx, err) // evidence.go
	return err
}

// prepare applies the produce rule to msg under m, in place. A message
// whose properties cannot carry the mark safely (a property that would
// smuggle a mark property onto the wire, a batch body that does not parse)
// is refused before the rule, and counted as a block.
func (s *Shadow) prepare(m propagation.Mark, msg *primitive.Message) error {
	ns, topic := splitNamespace(msg.Topic)
	var body []byte
	var props map[string]string
	var err error
	if msg.Batch {
		body, err = rewriteBatch(msg.Body, m)
	} else {
		props = msg.GetProperties()
		err = checkProperties(props)
	}
	var qns string
	if err == nil && msg.Queue != nil {
		// the manual queue selector sends to msg.Queue, and the request
		// names msg.Queue.Topic: it must be the message's topic, and it
		// moves with it
		var qt string
		if qns, qt = splitNamespace(msg.Queue.Topic); qt != topic {
			err = fmt.Errorf("the message's Queue names topic %q, not the message's %q", msg.Queue.Topic, msg.Topic)
		}
	}
	if err != nil {
		s.decisions().Record(m.Run, Store, s.r.Production(topic), shadow.Block)
		return shadow.Refuse(Store, topic, err.Error(), m, shadow.ErrUnsupported)
	}
	to, serr := s.r.Produce(m, topic)
	if serr != nil {
		return serr
	}
	if msg.Batch {
		msg.Body = body
	} else {
		writeProperties(msg, props, m)
	}
	msg.Topic = ns + to
	if msg.Queue != nil && to != topic {
		q := *msg.Queue // the caller's MessageQueue stays as it was
		q.Topic = qns + to
		msg.Queue = &q
	}
	return nil
}

// NewProducer is rocketmq.NewProducer with [Shadow.ProducerInterceptor]
// installed after the interceptors opts install.
func (s *Shadow) NewProducer(opts ...producer.Option) (rocketmq.Producer, error) {
	opts = append(opts[:len(opts):len(opts)], producer.WithInterceptor(s.ProducerInterceptor()))
	p, err := rocketmq.NewProducer(opts...)
	if err != nil {
		return nil, wrapClientErr("new producer", err)
	}
	return p, nil
}
