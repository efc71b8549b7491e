package loadrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// gRPC targets (kind: grpc) go through the same attacker, pacer and
// metrics as HTTP ones: the targeter builds a request for
// grpc://host:port/pkg.Service/Method whose body is the JSON request, and
// grpcTransport, the attacker's transport, makes the unary call. It learns
// the method's request and response types from the server's reflection
// service (grpc.reflection.v1), once per address and method, builds the
// request with dynamicpb from the JSON (protojson), sends the request's
// headers as metadata (the mark among them) and answers with the HTTP
// status grpc-gateway maps the call's code to (OK 200, NotFound 404,
// Unavailable 503...), the code in Grpc-Status and the response as JSON.
// Plaintext only (no TLS).

// grpcMethodRE is a full method name: package.Service/Method.
var grpcMethodRE = regexp.MustCompile(`^/?([A-Za-z_][A-Za-z0-9_]*\.)*[A-Za-z_][A-Za-z0-9_]*/[A-Za-z_][A-Za-z0-9_]*$`)

type grpcTransport struct {
	base http.RoundTripper

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
	meths map[string]*grpcMethod // address + " " + full method
}

type grpcMethod struct {
	once     sync.Once
	in, out  protoreflect.MessageDescriptor
	err      error
	fullName string // "/pkg.Service/Method"
}

func newGRPCTransport(base http.RoundTripper) *grpcTransport {
	return &grpcTransport{base: base, conns: map[string]*grpc.ClientConn{}, meths: map[string]*grpcMethod{}}
}

func (g *grpcTransport) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = map[string]*grpc.ClientConn{}
}

func (g *grpcTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "grpc" {
		return g.base.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	conn, m, err := g.method(req.Context(), req.URL.Host, req.URL.Path)
	if err != nil {
		return nil, err
	}
	in := dynamicpb.NewMessage(m.in)
	if len(bytes.TrimSpace(body)) > 0 {
		if err := protojson.Unmarshal(body, in); err != nil {
			return nil, fmt.Errorf("grpc %s: request body is not a %s in JSON: %w", m.fullName, m.in.FullName(), err)
		}
	}
	md := metadata.MD{}
	for k, vs := range req.Header {
		lk := strings.ToLower(k)
		switch {
		case lk == "content-type", lk == "content-length", lk == "te", lk == "connection", lk == "host", strings.HasPrefix(lk, "grpc-"):
			continue
		}
		md[lk] = append(md[lk], vs...)
	}
	out := dynamicpb.NewMessage(m.out)
	err = conn.Invoke(metadata.NewOutgoingContext(req.Context(), md), m.fullName, in, out)
	st := status.Convert(err)
	var respBody []byte
	if err == nil {
		respBody, _ = protojson.Marshal(out)
	} else {
		if ctxErr := req.Context().Err(); ctxErr != nil && (st.Code() == codes.DeadlineExceeded || st.Code() == codes.Canceled) {
			return nil, ctxErr // the attacker's timeout: a transport error, as for HTTP
		}
		respBody = []byte(st.Message())
	}
	code := httpStatus(st.Code())
	h := http.Header{"Content-Type": {"application/json"}, "Grpc-Status": {st.Code().String()}}
	return &http.Response{Status: strconv.Itoa(code) + " " + http.StatusText(code), StatusCode: code, Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: h, Body: io.NopCloser(bytes.NewReader(respBody)), ContentLength: int64(len(respBody)), Request: req}, nil
}

// method returns the connection to addr and the descriptors of the full
// method path ("/pkg.Service/Method"), asking the server's reflection
// service the first time.
func (g *grpcTransport) method(ctx context.Context, addr, path string) (*grpc.ClientConn, *grpcMethod, error) {
	full := "/" + strings.TrimPrefix(path, "/")
	g.mu.Lock()
	conn := g.conns[addr]
	if conn == nil {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			g.mu.Unlock()
			return nil, nil, fmt.Errorf("grpc %s: %w", addr, err)
		}
		conn = c
		g.conns[addr] = c
	}
	m := g.meths[addr+" "+full]
	if m == nil {
		m = &grpcMethod{fullName: full}
		g.meths[addr+" "+full] = m
	}
	g.mu.Unlock()
	m.once.Do(func() { m.in, m.out, m.err = reflectMethod(context.WithoutCancel(ctx), conn, full) })
	return conn, m, m.err
}

// reflectMethod asks the server's reflection service for the file that
// defines the method's service (and the files it depends on) and returns
// the method's request and response descriptors.
func reflectMethod(ctx context.Context, conn *grpc.ClientConn, full string) (in, out protoreflect.MessageDescriptor, err error) {
	svc, name, _ := strings.Cut(strings.TrimPrefix(full, "/"), "/")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("grpc %s: server reflection: %w", full, err)
	}
	defer stream.CloseSend()
	files := map[string]*descriptorpb.FileDescriptorProto{}
	ask := func(r *rpb.ServerReflectionRequest) error {
		if err := stream.Send(r); err != nil {
			return err
		}
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		if e := resp.GetErrorResponse(); e != nil {
			return errors.New(e.GetErrorMessage())
		}
		for _, b := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
			fd := &descriptorpb.FileDescriptorProto{}
			if err := proto.Unmarshal(b, fd); err != nil {
				return err
			}
			files[fd.GetName()] = fd
		}
		return nil
	}
	if err := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: svc}}); err != nil {
		return nil, nil, fmt.Errorf("grpc %s: server reflection (grpc.reflection.v1) for %s: %w", full, svc, err)
	}
	for missing := true; missing; {
		missing = false
		for _, fd := range files {
			for _, dep := range fd.GetDependency() {
				if _, ok := files[dep]; ok {
					continue
				}
				missing = true
				if err := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileByFilename{FileByFilename: dep}}); err != nil {
					return nil, nil, fmt.Errorf("grpc %s: server reflection for %s: %w", full, dep, err)
				}
				if _, ok := files[dep]; !ok {
					return nil, nil, fmt.Errorf("grpc %s: the server did not send %s", full, dep)
				}
			}
		}
	}
	set := &descriptorpb.FileDescriptorSet{}
	for _, fd := range files {
		set.File = append(set.File, fd)
	}
	reg, err := protodesc.NewFiles(set)
	if err != nil {
		return nil, nil, fmt.Errorf("grpc %s: %w", full, err)
	}
	d, err := reg.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil, nil, fmt.Errorf("grpc %s: service %s: %w", full, svc, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, nil, fmt.Errorf("grpc %s: %s is not a service", full, svc)
	}
	md := sd.Methods().ByName(protoreflect.Name(name))
	if md == nil {
		return nil, nil, fmt.Errorf("grpc %s: service %s has no method %s", full, svc, name)
	}
	if md.IsStreamingClient() || md.IsStreamingServer() {
		return nil, nil, fmt.Errorf("grpc %s: a streaming method; only unary methods are targets", full)
	}
	return md.Input(), md.Output(), nil
}

// httpStatus is the HTTP status grpc-gateway maps a gRPC code to.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError // Unknown, Internal, DataLoss
}
