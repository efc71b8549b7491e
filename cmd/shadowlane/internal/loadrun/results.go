package loadrun

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shadowlane/shadowlane/cmd/shadowlane/internal/evidence"
)

// ResultsVersion is the "v" of a results file's start line.
const ResultsVersion = 1

// Line is one JSON line of a results file. The first line of a file is
// kind "start"; then "req" (one per request), "token" (each mint),
// "abort", "evidence" (one per service, after the run) and a last "end".
type Line struct {
	Kind string `json:"kind"`

	// start
	V        int           `json:"v,omitempty"`
	Run      string        `json:"run,omitempty"`
	Scenario string        `json:"scenario,omitempty"`
	Part     int           `json:"part,omitempty"`
	Parts    int           `json:"parts,omitempty"`
	Host     string        `json:"host,omitempty"`
	Bucket   time.Duration `json:"bucketNs,omitempty"`
	Stages   []Stage       `json:"stages,omitempty"`
	Targets  []TargetInfo  `json:"targets,omitempty"`

	// req: T is when the request was sent (Unix ns), Lat its latency (ns).
	T      int64  `json:"t,omitempty"`
	Target string `json:"target,omitempty"`
	Probe  bool   `json:"probe,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
	Code   int    `json:"code,omitempty"`
	Lat    int64  `json:"lat,omitempty"`
	Err    string `json:"err,omitempty"`
	In     uint64 `json:"in,omitempty"`
	Out    uint64 `json:"out,omitempty"`

	// abort
	Reason string `json:"reason,omitempty"`

	// token: Exp is the new token's expiry (Unix s).
	Exp int64 `json:"exp,omitempty"`

	// evidence
	Service *ServiceEvidence `json:"service,omitempty"`

	// end
	Sent    uint64 `json:"sent,omitempty"`
	Aborted bool   `json:"aborted,omitempty"`
}

// TargetInfo describes a target in the start line.
type TargetInfo struct {
	Name   string `json:"name"`
	Method string `json:"method"`
	URL    string `json:"url"`
	Probe  bool   `json:"probe,omitempty"`
	Weight int    `json:"weight"`
}

// ServiceEvidence is what one service saw of the run (after - before).
type ServiceEvidence struct {
	URL    string          `json:"url"`
	Label  string          `json:"label,omitempty"`
	Diff   evidence.Status `json:"diff"`
	Lines  []string        `json:"lines,omitempty"`
	Leaks  []string        `json:"leaks,omitempty"`
	Err    string          `json:"err,omitempty"`
	AtUnix int64           `json:"at"` // when the "after" was read (Unix ns)
}

// lineWriter writes Lines as JSON lines.
type lineWriter struct {
	w   *bufio.Writer
	enc *json.Encoder
	err error
}

func newLineWriter(w io.Writer) *lineWriter {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &lineWriter{w: bw, enc: json.NewEncoder(bw)}
}

func (lw *lineWriter) write(l *Line) {
	if lw.err == nil {
		lw.err = lw.enc.Encode(l)
	}
}

func (lw *lineWriter) flush() error {
	if lw.err == nil {
		lw.err = lw.w.Flush()
	}
	return lw.err
}

// ReadResults feeds every line of a results file to agg.
func ReadResults(path string, agg *Aggregator) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("%s:%d: not a results line: %w", path, n, err)
		}
		if n == 1 && (l.Kind != "start" || l.V != ResultsVersion) {
			return fmt.Errorf("%s:1: not a shadowlane run results file (want a start line of version %d)", path, ResultsVersion)
		}
		if err := agg.Add(&l); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: empty results file", path)
	}
	return nil
}
