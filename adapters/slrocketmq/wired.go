package slrocketmq

import "github.com/apache/rocketmq-client-go/v2/primitive"

// wired is the Shadow of the zero-code wiring: default options (the
// default runtime; no topic has a shadow twin, so every marked message is
// refused until the code names twins).
func wired() *Shadow {
	s, err := New()
	if err != nil { // defaults are valid; never taken
		panic(err)
	}
	return s
}

// WiredProducerInterceptor returns [Shadow.ProducerInterceptor] of a
// Shadow with default options: what Orchestrion's zero-code wiring appends
// to rocketmq.NewProducer and rocketmq.NewTransactionProducer (see
// orchestrion.yml). Unmarked messages pass (a stale mark property is
// dropped); marked ones are refused with [shadow.ErrNoShadowTarget] until
// the code builds its producer with a Shadow that names twins.
func WiredProducerInterceptor() primitive.Interceptor { return wired().ProducerInterceptor() }

// WiredConsumerInterceptor returns [Shadow.ConsumerInterceptor] of a
// Shadow with default options, appended to rocketmq.NewPushConsumer by the
// zero-code wiring: production messages are handled as before, a message
// with a run mark on a production topic (an anomaly) or malformed mark
// properties is refused and acknowledged, never handled. Shadow groups
// and env lanes take code ([Shadow.NewPushConsumer]).
func WiredConsumerInterceptor() primitive.Interceptor { return wired().ConsumerInterceptor() }
