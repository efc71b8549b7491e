package shadowlane

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// MaxConfigFileSize caps the config file (1 MiB). A larger file is refused
// before it is decoded, at Init, on reload and by `shadowlane check`.
const MaxConfigFileSize = 1 << 20

// settleTime is how long a config file must stay unchanged (mtime, size
// and content) before Init or [Runtime.Reload] reads it as complete.
const settleTime = 50 * time.Millisecond

// reloadResult is the outcome of the last reload (Stats reports it).
type reloadResult struct {
	at  time.Time
	err error
}

// readConfigFile reads at most MaxConfigFileSize bytes of path.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	if len(data) > MaxConfigFileSize {
		return nil, &FieldError{Field: "(file)", Msg: fmt.Sprintf("%s is larger than %d bytes; a config file is small", path, MaxConfigFileSize)}
	}
	return data, nil
}

// readStable reads path once it is not being written: the stat before and
// after the read agree with each other and with the bytes read, and either
// the last write is at least settle old or a second read settle later gives
// the same bytes. A file that keeps changing for 50 settle periods is an
// error.
func readStable(path string, settle time.Duration) ([]byte, error) {
	var prev []byte
	for range 50 {
		before, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		data, err := readConfigFile(path)
		if err != nil {
			return nil, err
		}
		after, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		still := before.Size() == after.Size() && before.ModTime().Equal(after.ModTime()) && int64(len(data)) == after.Size()
		if still && (time.Since(after.ModTime()) >= settle || prev != nil && bytes.Equal(prev, data)) {
			return data, nil
		}
		prev = data
		time.Sleep(settle)
	}
	return nil, fmt.Errorf("%w: %s is still being written; not applied", ErrConfig, path)
}

// Reload re-reads the config file now, with the options Init was given
// ([WithConfig], [WithEdit], [WithGetenv] and the rest), once the file has
// stopped changing. On error the old config stays and the error names the
// bad fields; the outcome shows in Stats().LastReload.
func (rt *Runtime) Reload() error {
	if rt.file == "" {
		return errors.New("shadowlane: no config file to reload")
	}
	data, err := readStable(rt.file, settleTime)
	if err != nil {
		rt.reloaded(rt.file, err)
		return err
	}
	return rt.reloadData(data)
}

// reloadData applies the file content data, merged with Init's options.
func (rt *Runtime) reloadData(data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		// A file truncated for a rewrite reads empty; an empty config would
		// drop every section at once.
		err := fmt.Errorf("%w: %s is empty; not applied (delete the keys you mean to drop instead)", ErrConfig, rt.file)
		rt.reloaded(rt.file, err)
		return err
	}
	cfg, err := loadMergedData(rt.opts, rt.file, data, rt.getenv)
	if err == nil {
		err = rt.Apply(cfg)
	}
	rt.reloaded(rt.file, err)
	return err
}

func (rt *Runtime) reloaded(file string, err error) {
	rt.reloadErr.Store(&reloadResult{at: rt.now(), err: err})
	if err != nil {
		rt.logger.Error("shadowlane: config reload failed; keeping the previous config", "file", file, "error", err)
		return
	}
	rt.logger.Info("shadowlane: config reloaded", "file", file)
}

// watch polls the file every interval (no fsnotify in the core module:
// polling a small file is cheap and works on every filesystem and ConfigMap
// mount), starting from content, the bytes Init applied. New content
// applies only once two polls an interval apart read the same bytes, so a
// file caught in the middle of a rewrite is never applied while it is
// still changing. The interval is the one Init read: a reloaded file
// cannot change it (a torn "reload: 100ms" reads "reload: 100m").
func (rt *Runtime) watch(every time.Duration, content []byte) {
	applied, pending := sha256.Sum256(content), [32]byte{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				b, err := readConfigFile(rt.file)
				if err != nil {
					pending = [32]byte{}
					continue
				}
				d := sha256.Sum256(b)
				if d == applied {
					pending = [32]byte{}
					continue
				}
				if d != pending {
					pending = d // first sight: wait one interval for it to settle
					continue
				}
				applied, pending = d, [32]byte{}
				_ = rt.reloadData(b)
			}
		}
	}()
	rt.AddCloser(func() error { close(stop); <-done; return nil })
}
