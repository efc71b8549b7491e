package envtag

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/shadowlane/shadowlane/internal/tick"
)

// ErrBadFile is wrapped by every error about the content of a registry
// file.
var ErrBadFile = errors.New("envtag: bad registry file")

// ParseFile parses the registry file format:
//
//	{"services": {"orders": [{"addr": "10.0.0.7:8080"},
//	                         {"addr": "10.0.3.9:8080", "env": "proj-42"}]}}
//
// Unknown fields, endpoints without an address, malformed labels and an
// address listed under two environments of one service (also wrapping
// [ErrConflict]) are errors (wrapping [ErrBadFile]) that name the service.
func ParseFile(data []byte) (map[string][]Endpoint, error) {
	var f struct {
		Services map[string][]Endpoint `json:"services"`
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFile, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrBadFile)
	}
	for s, eps := range f.Services {
		if err := validateSet(s, eps); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadFile, err)
		}
	}
	if f.Services == nil {
		f.Services = map[string][]Endpoint{}
	}
	return f.Services, nil
}

// FileRegistry is a [Registry] read from a JSON file (see [ParseFile]).
// [FileRegistry.Reload] re-reads it; [FileRegistry.Poll] does so whenever
// the file changes. A file that fails to read or parse keeps the previous
// content, and the error says why.
type FileRegistry struct {
	StaticRegistry
	path string

	mu   sync.Mutex
	last []byte
}

// NewFileRegistry loads path; an unreadable or invalid file is an error.
func NewFileRegistry(path string) (*FileRegistry, error) {
	f := &FileRegistry{path: path}
	if _, err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload re-reads the file. It reports whether the content changed; on
// error the previous content stays in force.
func (f *FileRegistry) Reload() (changed bool, err error) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return false, fmt.Errorf("envtag: registry file: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last != nil && bytes.Equal(data, f.last) {
		return false, nil
	}
	services, err := ParseFile(data)
	if err != nil {
		return false, fmt.Errorf("%s: %w (keeping the previous content)", f.path, err)
	}
	if err := f.Replace(services); err != nil {
		return false, fmt.Errorf("%s: %w (keeping the previous content)", f.path, err)
	}
	f.last = data
	return true, nil
}

// Poll reloads the file every interval until ctx is done, passing errors
// to onError (which may be nil). Watchers see each change.
func (f *FileRegistry) Poll(ctx context.Context, interval time.Duration, onError func(error)) {
	tick.Every(ctx, interval, func() bool {
		if _, err := f.Reload(); err != nil && onError != nil {
			onError(err)
		}
		return true
	})
}
