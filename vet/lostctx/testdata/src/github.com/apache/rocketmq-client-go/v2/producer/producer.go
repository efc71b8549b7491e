// Package producer is a stub of rocketmq-client-go's producer package for the analyzer tests.
package producer

import "github.com/apache/rocketmq-client-go/v2/primitive"

type options struct{}
type Option func(*options)

func WithNameServer(s []string) Option                  { return nil }
func WithInterceptor(f ...primitive.Interceptor) Option { return nil }
