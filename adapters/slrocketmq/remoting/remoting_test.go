package remoting_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"maps"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq/remoting"
)

func TestFrameRoundTrip(t *testing.T) {
	in := &remoting.Command{Code: 105, Language: "GO", Version: 317, Opaque: 7, Flag: remoting.ResponseFlag,
		Remark: "r", ExtFields: map[string]string{"topic": "orders"}, Body: []byte("body")}
	frame, err := remoting.AppendFrame([]byte("keep"), in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(frame, []byte("keep")) {
		t.Fatalf("dst not kept: %q", frame)
	}
	frame = frame[4:]
	if total := binary.BigEndian.Uint32(frame); int(total) != len(frame)-4 {
		t.Fatalf("length word %d, frame %d bytes", total, len(frame))
	}
	if typ := frame[4]; typ != 0 {
		t.Fatalf("serialization %d, want JSON (0)", typ)
	}
	r := bytes.NewReader(append(frame, frame...))
	for range 2 {
		out, err := remoting.ReadFrame(r, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if out.Code != in.Code || out.Language != in.Language || out.Version != in.Version || out.Opaque != in.Opaque ||
			out.Flag != in.Flag || out.Remark != in.Remark || !maps.Equal(out.ExtFields, in.ExtFields) || string(out.Body) != "body" {
			t.Fatalf("read %+v, wrote %+v", out, in)
		}
	}
	if _, err := remoting.ReadFrame(r, 1<<20); err != io.EOF {
		t.Fatalf("after the last frame: %v", err)
	}
}

func TestReadFrameRefuses(t *testing.T) {
	good, _ := remoting.AppendFrame(nil, &remoting.Command{Code: 1})
	long := binary.BigEndian.Uint32(good)
	for name, tc := range map[string]struct {
		frame []byte
		max   uint32
		want  string
	}{
		"over max":       {good, long - 1, "bad frame"},
		"short":          {binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 3), 0), 1 << 20, "bad frame"},
		"header too big": {binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 4), 1), 1 << 20, "bad frame"},
		"not JSON":       {append(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 6), 1<<24|2), "{}"...), 1 << 20, "serialization type 1"},
		"bad header":     {append(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 6), 2), "{x"...), 1 << 20, "header"},
	} {
		_, err := remoting.ReadFrame(bytes.NewReader(tc.frame), tc.max)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	if _, err := remoting.ReadFrame(bytes.NewReader(good[:len(good)-1]), 1<<20); err != io.ErrUnexpectedEOF {
		t.Errorf("cut frame: %v", err)
	}
}
