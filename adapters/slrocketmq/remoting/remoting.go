package remoting

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
)

// ResponseFlag is the bit of [Command.Flag] that makes a command a
// response (the opaque names the request it answers).
const ResponseFlag = 1

const (
	jsonSerialization      = 0
	headerLengthMask       = 0xFFFFFF
	serializationTypeShift = 24
)

// Command is one remoting command, a request or a response: its JSON
// header and its body.
type Command struct {
	Code      int               `json:"code"`
	Language  string            `json:"language"`
	Version   int               `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int32             `json:"flag"`
	Remark    string            `json:"remark,omitempty"`
	ExtFields map[string]string `json:"extFields,omitempty"`
	Body      []byte            `json:"-"`
}

// AppendFrame appends the frame of c (JSON header) to dst.
func AppendFrame(dst []byte, c *Command) ([]byte, error) {
	h, err := json.Marshal(c)
	if err != nil {
		return dst, err
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(4+len(h)+len(c.Body)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(h))&headerLengthMask) // serialization type 0: JSON
	dst = append(dst, h...)
	return append(dst, c.Body...), nil
}

// ReadFrame reads one frame from r. A frame longer than maxFrame bytes
// (its length word), with a header longer than the frame, or with a
// serialization other than JSON is an error.
func ReadFrame(r io.Reader, maxFrame uint32) (*Command, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, err
	}
	total, word := binary.BigEndian.Uint32(pre[0:]), binary.BigEndian.Uint32(pre[4:])
	typ, hlen := word>>serializationTypeShift, word&headerLengthMask
	if total < 4 || total > maxFrame || hlen > total-4 {
		return nil, fmt.Errorf("remoting: bad frame: length %d, header length %d", total, hlen)
	}
	if typ != jsonSerialization {
		return nil, fmt.Errorf("remoting: serialization type %d not supported (only JSON)", typ)
	}
	buf := make([]byte, total-4)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	c := &Command{}
	if err := json.Unmarshal(buf[:hlen], c); err != nil {
		return nil, fmt.Errorf("remoting: header: %w", err)
	}
	c.Body = buf[hlen:]
	return c, nil
}
