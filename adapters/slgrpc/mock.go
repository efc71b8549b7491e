package slgrpc

import (
	"context"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/shadowlane/shadowlane"
)

// answerUnary fills reply from a gRPC mock (or returns its status).
func answerUnary(m *shadowlane.GRPCMock, reply any) error {
	if m.Code != 0 {
		return status.Error(codes.Code(m.Code), string(m.Body))
	}
	return unmarshalMock(m.Body, reply)
}

func unmarshalMock(body []byte, reply any) error {
	msg, ok := reply.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "slgrpc: mock: reply type %T is not a protobuf message", reply)
	}
	if len(body) == 0 {
		proto.Reset(msg)
		return nil
	}
	if err := protojson.Unmarshal(body, msg); err != nil {
		return status.Errorf(codes.Internal, "slgrpc: mock body does not decode into %T: %v", reply, err)
	}
	return nil
}

// mockStream is the client stream of a mocked load-test call: sends are
// discarded, the first receive gets the mock's message, later ones io.EOF.
type mockStream struct {
	ctx  context.Context
	body []byte
	done bool
}

func (s *mockStream) Header() (metadata.MD, error) {
	return metadata.MD{"x-shadowlane-mock": {"true"}}, nil
}
func (s *mockStream) Trailer() metadata.MD     { return nil }
func (s *mockStream) CloseSend() error         { return nil }
func (s *mockStream) Context() context.Context { return s.ctx }
func (s *mockStream) SendMsg(any) error        { return nil }

func (s *mockStream) RecvMsg(m any) error {
	if s.done {
		return io.EOF
	}
	s.done = true
	return unmarshalMock(s.body, m)
}
