package slgrpc

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane"
)

// exit is the exit name of client calls for the lost-mark guard
// (Stats().LostMarks).
const exit = "grpc"

// lostMark is the lost-mark guard of client calls (config testData:, see
// [shadowlane.TestDataConfig]), run by the client interceptors on an
// unmarked call after its stale mark carriers were removed (md is its
// outgoing metadata as [outgoing] read it; nil for a marked call or
// one without metadata): a call whose
// outgoing metadata values look like load-test data (the header rules by
// key and value, the other rules by value) is refused with a
// [LostMarkError] (codes.PermissionDenied, wrapping [shadow.ErrLostMark]),
// or only reported with testData.action: alert, counted under "grpc" with
// the client's target. Request messages are not read: testData has no
// rule for bodies. Without testData rules it costs one pointer load.
func lostMark(rt *shadowlane.Runtime, md metadata.MD, target string) error {
	if len(md) == 0 {
		return nil
	}
	td := rt.TestData()
	if td == nil {
		return nil
	}
	for k, vs := range md {
		for _, v := range vs {
			if rule, hit := td.MatchHeader(k, v); hit {
				if err := rt.LostMark(exit, target, rule); err != nil {
					return &LostMarkError{err: err}
				}
				return nil
			}
		}
	}
	return nil
}

// LostMarkError is the error of a client call the lost-mark guard refused:
// status.Code(err) is codes.PermissionDenied and errors.Is(err,
// shadow.ErrLostMark) holds (it wraps the [*shadow.Error]). The call never
// reached the server.
type LostMarkError struct{ err error }

func (e *LostMarkError) Error() string { return e.err.Error() }

// Unwrap returns the [*shadow.Error].
func (e *LostMarkError) Unwrap() error { return e.err }

// GRPCStatus makes the error a codes.PermissionDenied status.
func (e *LostMarkError) GRPCStatus() *status.Status {
	return status.New(codes.PermissionDenied, e.err.Error())
}
