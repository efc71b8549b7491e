// Package sarama is a stub of github.com/IBM/sarama for the analyzer tests.
package sarama

type ProducerInterceptor interface{ OnSend(*ProducerMessage) }
type ProducerMessage struct{}

type Config struct {
	Producer struct{ Interceptors []ProducerInterceptor }
}

func NewConfig() *Config { return &Config{} }

type SyncProducer interface{ Close() error }
type AsyncProducer interface{ Close() error }

func NewSyncProducer(addrs []string, c *Config) (SyncProducer, error)   { return nil, nil }
func NewAsyncProducer(addrs []string, c *Config) (AsyncProducer, error) { return nil, nil }
