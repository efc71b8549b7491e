// Package slsarama is a stub of the shadowlane sarama adapter for the analyzer tests.
package slsarama

import "github.com/IBM/sarama"

type Shadow struct{}
type Producer struct{}

func New() (*Shadow, error)                                    { return &Shadow{}, nil }
func (s *Shadow) SyncProducer(p sarama.SyncProducer) *Producer { return &Producer{} }
func (s *Shadow) OnSend(m *sarama.ProducerMessage)             {}
