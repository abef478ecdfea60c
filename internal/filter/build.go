package filter

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/prometheus/client_golang/prometheus"
)

// Factory builds one filter from its middleware entry. Errors name the
// file, line and field (use Build.Decode and Build.Errorf).
type Factory func(b *Build) (Filter, error)

// Build is what a Factory gets: its entry, the whole configuration, and
// the state kept across reloads.
type Build struct {
	Config *config.Config
	Entry  config.Middleware
	Log    *slog.Logger
	State  *State
	// Metrics is where filters register their collectors (the admin
	// listener's /metrics). Register through State.Keep so that a reload
	// reuses the collectors, and unregister in Close.
	Metrics prometheus.Registerer
}

// Decode decodes the entry's settings into v with the configuration file's
// strict rules; errors are positioned in the file.
func (b *Build) Decode(v any) (config.Positions, error) {
	return config.Decode(b.Config.File, b.Entry.Path, b.Entry.Settings, v)
}

// Errorf returns a configuration error at the entry (or at field, a
// sub-path of the entry such as "rate", when positions knows it).
func (b *Build) Errorf(pos config.Positions, field, format string, args ...any) error {
	path := b.Entry.Path
	at := b.Entry.Pos
	if field != "" {
		path += "." + field
		if p, ok := pos[path]; ok {
			at = p
		}
	}
	return config.Errors{{File: b.Config.File, Line: at.Line, Col: at.Col, Path: path, Msg: fmt.Sprintf(format, args...)}}
}

// State holds what filters keep across reloads (rate-limit buckets, cache
// stores, fetched key sets), keyed by identity: a reload that keeps a
// filter's settings keeps its state. A State belongs to one snapshot; the
// server hands the previous one to the next build and closes what the new
// configuration no longer uses.
type State struct {
	mu    sync.Mutex
	prev  map[string]any
	items map[string]any
}

// NewState returns the state of a new build that may take over prev's
// objects (prev may be nil).
func NewState(prev *State) *State {
	s := &State{items: map[string]any{}}
	if prev != nil {
		prev.mu.Lock()
		s.prev = prev.items
		prev.mu.Unlock()
	}
	return s
}

// Keep returns the object stored under key by this build or the previous
// one, or creates it. Objects that implement io.Closer are closed when a
// later build no longer keeps them (Retire) or the server stops (Close);
// requests of the retired snapshot may still be using them, so Close stops
// background work and must not break a use in progress.
// T should be a pointer type: identity is how Retire knows what was kept.
func Keep[T any](s *State, key string, create func() (T, error)) (T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.items[key]; ok {
		return v.(T), nil
	}
	if v, ok := s.prev[key]; ok {
		if t, ok := v.(T); ok {
			s.items[key] = t
			return t, nil
		}
	}
	t, err := create()
	if err != nil {
		return t, err
	}
	s.items[key] = t
	return t, nil
}

// Each calls fn with every object s keeps (the admin API finds the cache
// stores of the running configuration this way). fn runs without s's lock.
func (s *State) Each(fn func(key string, v any)) {
	s.mu.Lock()
	items := make(map[string]any, len(s.items))
	maps.Copy(items, s.items)
	s.mu.Unlock()
	for k, v := range items {
		fn(k, v)
	}
}

// Retire closes the objects of old that s did not take over: call it once
// s has replaced old. Discard a build that failed with Discard instead.
func (s *State) Retire(old *State) {
	if old == nil {
		return
	}
	s.mu.Lock()
	kept := s.items
	s.mu.Unlock()
	old.mu.Lock()
	defer old.mu.Unlock()
	for k, v := range old.items {
		if nv, ok := kept[k]; ok && same(nv, v) {
			continue
		}
		closeItem(v)
	}
	old.items = nil
}

// Discard closes what a failed build created (and did not take over).
func (s *State) Discard() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.items {
		if pv, ok := s.prev[k]; ok && same(pv, v) {
			continue
		}
		closeItem(v)
	}
	s.items = nil
}

// Close closes everything s holds (the server is stopping).
func (s *State) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.items {
		closeItem(v)
	}
	s.items = nil
}

// same reports whether a and b are the same object; kept objects are
// pointers, but a value that cannot be compared is never "the same".
func same(a, b any) (eq bool) {
	defer func() {
		if recover() != nil {
			eq = false
		}
	}()
	return a == b
}

func closeItem(v any) {
	if c, ok := v.(io.Closer); ok {
		c.Close()
	}
}
