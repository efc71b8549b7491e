package drill

// The Kafka fault proxy: Kafka clients learn every broker's address from
// the Metadata (and FindCoordinator) responses of the broker they
// bootstrapped from, so a plain TCP proxy in front of one broker would be
// bypassed at once. kafkaProxies puts one faultProxy in front of each
// broker and reads the Kafka protocol on it: it notes the API key and
// version of every Metadata and FindCoordinator request (by correlation
// id) and rewrites the broker hosts and ports in their responses to the
// proxies' own (decoded and encoded again with franz-go's kmsg), so every
// connection a client makes goes through a proxy the fault schedule
// controls. Every other request and response is forwarded as it is, frame
// by frame.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka API keys whose responses carry broker addresses.
const (
	apiMetadata        = 3
	apiFindCoordinator = 10
)

// maxKafkaFrame bounds a frame the proxy reads (a corrupt size prefix must
// not allocate gigabytes).
const maxKafkaFrame = 256 << 20

// kafkaProxies is the fault proxy of one Kafka cluster: a faultProxy per
// broker address (host:port as the cluster advertises it).
type kafkaProxies struct {
	mu         sync.Mutex
	byUpstream map[string]*faultProxy
	done       bool
}

func newKafkaProxies() *kafkaProxies {
	return &kafkaProxies{byUpstream: map[string]*faultProxy{}}
}

// proxyFor returns the proxy in front of the broker at upstream, starting
// one when there is none yet (fresh reports whether it did).
func (k *kafkaProxies) proxyFor(upstream string) (p *faultProxy, fresh bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.done {
		return nil, false, errors.New("drill: kafka proxies closed")
	}
	if p := k.byUpstream[upstream]; p != nil {
		return p, false, nil
	}
	name := "kafka"
	if len(k.byUpstream) > 0 {
		name = fmt.Sprintf("kafka%d", len(k.byUpstream)+1)
	}
	p, err = startFaultProxy(name, upstream, k)
	if err != nil {
		return nil, false, err
	}
	k.byUpstream[upstream] = p
	return p, true, nil
}

func (k *kafkaProxies) close() {
	k.mu.Lock()
	k.done = true
	ps := make([]*faultProxy, 0, len(k.byUpstream))
	for _, p := range k.byUpstream {
		ps = append(ps, p)
	}
	k.mu.Unlock()
	for _, p := range ps {
		p.close()
	}
}

// rewrite returns the address a client must use for the broker at
// host:port: its proxy's. On failure the broker's own address stays (the
// client then bypasses the fault proxy for it, which only weakens the
// drill).
func (k *kafkaProxies) rewrite(host string, port int32) (string, int32) {
	p, _, err := k.proxyFor(net.JoinHostPort(host, strconv.Itoa(int(port))))
	if err != nil {
		return host, port
	}
	h, ps, err := net.SplitHostPort(p.Addr())
	if err != nil {
		return host, port
	}
	n, err := strconv.Atoi(ps)
	if err != nil {
		return host, port
	}
	return h, int32(n)
}

// kafkaConn is the protocol state of one proxied connection: the requests
// whose responses are rewritten, by correlation id.
type kafkaConn struct {
	k        *kafkaProxies
	mu       sync.Mutex
	inflight map[int32][2]int16 // correlation id -> API key, version
}

// request notes a client request frame (without its size prefix) and
// returns it unchanged.
func (c *kafkaConn) request(frame []byte) []byte {
	if len(frame) < 8 {
		return frame
	}
	key := int16(binary.BigEndian.Uint16(frame))
	if key != apiMetadata && key != apiFindCoordinator {
		return frame
	}
	ver := int16(binary.BigEndian.Uint16(frame[2:]))
	corr := int32(binary.BigEndian.Uint32(frame[4:]))
	c.mu.Lock()
	c.inflight[corr] = [2]int16{key, ver}
	c.mu.Unlock()
	return frame
}

// response rewrites the broker addresses of a Metadata or FindCoordinator
// response frame (without its size prefix); other frames, and frames it
// cannot decode, are returned unchanged.
func (c *kafkaConn) response(frame []byte) []byte {
	if len(frame) < 4 {
		return frame
	}
	corr := int32(binary.BigEndian.Uint32(frame))
	c.mu.Lock()
	kv, ok := c.inflight[corr]
	delete(c.inflight, corr)
	c.mu.Unlock()
	if !ok {
		return frame
	}
	out, err := rewriteResponse(frame, kv[0], kv[1], c.k.rewrite)
	if err != nil {
		return frame
	}
	return out
}

// rewriteResponse decodes a response frame of API key at version, maps
// every broker address in it with addr and encodes it again.
func rewriteResponse(frame []byte, key, version int16, addr func(string, int32) (string, int32)) ([]byte, error) {
	resp := kmsg.ResponseForKey(key)
	if resp == nil {
		return nil, fmt.Errorf("no response type for API key %d", key)
	}
	resp.SetVersion(version)
	head := 4 // correlation id
	if resp.IsFlexible() {
		n, err := skipTags(frame[head:])
		if err != nil {
			return nil, err
		}
		head += n
	}
	if err := resp.ReadFrom(frame[head:]); err != nil {
		return nil, err
	}
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		for i := range r.Brokers {
			r.Brokers[i].Host, r.Brokers[i].Port = addr(r.Brokers[i].Host, r.Brokers[i].Port)
		}
	case *kmsg.FindCoordinatorResponse:
		if r.Host != "" {
			r.Host, r.Port = addr(r.Host, r.Port)
		}
		for i := range r.Coordinators {
			if r.Coordinators[i].Host != "" {
				r.Coordinators[i].Host, r.Coordinators[i].Port = addr(r.Coordinators[i].Host, r.Coordinators[i].Port)
			}
		}
	}
	out := append([]byte(nil), frame[:head]...)
	return resp.AppendTo(out), nil
}

// skipTags returns the length of a tagged-field section (KIP-482: a count,
// then tag, size and data per field) at the start of b.
func skipTags(b []byte) (int, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return 0, errors.New("bad tagged field count")
	}
	off := w
	for range n {
		_, w = binary.Uvarint(b[off:])
		if w <= 0 {
			return 0, errors.New("bad tag")
		}
		off += w
		size, w := binary.Uvarint(b[off:])
		if w <= 0 || uint64(len(b)-off-w) < size {
			return 0, errors.New("bad tagged field size")
		}
		off += w + int(size)
	}
	return off, nil
}

// pipeFrames forwards Kafka frames from src to dst one at a time, passing
// each (without its size prefix) through f and obeying the current fault
// before each write. Either side failing closes both.
func (p *faultProxy) pipeFrames(dst, src net.Conn, f func([]byte) []byte) {
	defer dst.Close()
	defer src.Close()
	var size [4]byte
	for {
		if _, err := io.ReadFull(src, size[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(size[:])
		if n > maxKafkaFrame {
			return
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(src, frame); err != nil {
			return
		}
		frame = f(frame)
		if !p.gate() {
			return
		}
		out := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(frame)), uint32(len(frame)))
		if _, err := dst.Write(append(out, frame...)); err != nil {
			return
		}
	}
}
