package slgrpc

import (
	"google.golang.org/grpc"
)

// IncomingKeyLearned reports whether the interceptors read the metadata map
// directly (see incomingKey).
func IncomingKeyLearned() bool { return incomingKey != nil }

// LookupServerInterceptors are the server interceptors forced onto the
// ValueFromIncomingContext path, as when incomingKey cannot be learned.
func LookupServerInterceptors(opts ...Option) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	u, s := newEntry(opts), newEntry(opts)
	u.key, s.key = nil, nil
	return u.unary, s.stream
}
