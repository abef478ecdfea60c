// Package filewatch keeps the parsed content of a small file (a users file,
// a keys file) current without a reload: it polls the file's size, mtime and
// inode, and re-reads and re-parses it when they change. A file that becomes
// unreadable or invalid keeps the last good content, and the problem is
// logged: a typo in a users file must not lock everybody out, nor let
// everybody in.
package filewatch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Interval is how often a watched file is polled. A stat every two seconds
// costs nothing measurable, and is well within what an operator expects
// between saving the file and seeing the change.
const Interval = 2 * time.Second

// File holds the parsed content of one file. It is safe for concurrent use;
// Load is lock-free.
type File[T any] struct {
	path  string
	parse func([]byte) (T, error)
	log   *slog.Logger

	cur atomic.Pointer[T]

	mu      sync.Mutex // serializes Store and the poller's swaps
	stamp   stamp      // of the bytes in sum; zero: read the file at the next poll
	sum     [32]byte
	missing bool // the last stat failed (logged once)

	cancel context.CancelFunc
	done   chan struct{}
}

// stamp is what a poll compares: cheap to get (one stat), and it changes
// on every way editors and deploy tools replace a file (write in place,
// rename over, symlink swap).
type stamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

func statOf(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	s := stamp{mod: fi.ModTime(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s, nil
}

// Watch starts polling path every interval. parse turns the file's bytes
// into T; the first content is given with Store (the configuration build
// reads and checks the file itself, so that its errors are config errors).
func Watch[T any](path string, interval time.Duration, parse func([]byte) (T, error), log *slog.Logger) *File[T] {
	ctx, cancel := context.WithCancel(context.Background())
	f := &File[T]{path: path, parse: parse, log: log, cancel: cancel, done: make(chan struct{})}
	go f.poll(ctx, interval)
	return f
}

// Load returns the current content (the zero T before the first Store).
func (f *File[T]) Load() T {
	if p := f.cur.Load(); p != nil {
		return *p
	}
	var zero T
	return zero
}

// Store sets the content read from data by a configuration build. The
// file may have changed since it was read, so the next poll reads it again
// (and keeps v if its bytes are still data's).
func (f *File[T]) Store(v T, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stamp = stamp{}
	f.sum = sha256.Sum256(data)
	f.cur.Store(&v)
}

// Close stops the poller; Load keeps working.
func (f *File[T]) Close() error {
	f.cancel()
	<-f.done
	return nil
}

func (f *File[T]) poll(ctx context.Context, interval time.Duration) {
	defer close(f.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.check()
	}
}

// check re-reads the file if its stamp moved and its bytes differ.
func (f *File[T]) check() {
	st, err := statOf(f.path)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		if !f.missing {
			f.log.Warn("cannot stat watched file; keeping its last content", "file", f.path, "err", err)
			f.missing = true
		}
		return
	}
	f.missing = false
	if st == f.stamp {
		return
	}
	f.stamp = st
	data, err := os.ReadFile(f.path)
	if err != nil {
		f.log.Warn("cannot read watched file; keeping its last content", "file", f.path, "err", err)
		return
	}
	sum := sha256.Sum256(data)
	if bytes.Equal(sum[:], f.sum[:]) {
		return
	}
	v, err := f.parse(data)
	if err != nil {
		f.log.Error("watched file is invalid; keeping its last content", "file", f.path, "err", err)
		return
	}
	f.sum = sum
	f.cur.Store(&v)
	f.log.Info("watched file changed: new content in use", "file", f.path)
}

// MaxSize bounds what ReadFile reads: users and keys files are small, and a
// path pointed at a huge file by mistake should be an error, not a stall.
const MaxSize = 16 << 20

// ReadFile reads a regular file of at most MaxSize bytes, with errors fit
// for a configuration message.
func ReadFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %v", path, errors.Unwrap(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("cannot read %q: not a regular file", path)
	}
	if fi.Size() > MaxSize {
		return nil, fmt.Errorf("%q is %d bytes, over the %d limit", path, fi.Size(), MaxSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %v", path, err)
	}
	return data, nil
}
