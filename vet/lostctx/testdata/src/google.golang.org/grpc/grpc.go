// Package grpc is a stub of google.golang.org/grpc for the analyzer tests.
package grpc

import "context"

type ServerStream interface {
	Context() context.Context
	SendMsg(m any) error
}
