// Package primitive is a stub of rocketmq-client-go's primitive package for the analyzer tests.
package primitive

import "context"

type Invoker func(ctx context.Context, req, reply any) error
type Interceptor func(ctx context.Context, req, reply any, next Invoker) error
