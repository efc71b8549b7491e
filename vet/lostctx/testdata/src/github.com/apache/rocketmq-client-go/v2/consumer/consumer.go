// Package consumer is a stub of rocketmq-client-go's consumer package for the analyzer tests.
package consumer

import "github.com/apache/rocketmq-client-go/v2/primitive"

type options struct{}
type Option func(*options)

func WithGroupName(g string) Option                     { return nil }
func WithInterceptor(f ...primitive.Interceptor) Option { return nil }
