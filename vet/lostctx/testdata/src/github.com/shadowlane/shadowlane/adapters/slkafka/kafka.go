// Package slkafka is a stub of the shadowlane kafka adapter for the analyzer tests.
package slkafka

import "github.com/twmb/franz-go/pkg/kgo"

type Shadow struct{}
type Producer struct{}

func New() (*Shadow, error)                                  { return &Shadow{}, nil }
func (s *Shadow) Producer(cl *kgo.Client) (*Producer, error) { return &Producer{}, nil }
