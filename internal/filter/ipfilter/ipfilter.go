// Package ipfilter is the ip_filter middleware: allow and deny lists of
// addresses and prefixes, written in the configuration or kept in files
// that are re-read when they change, checked against the client's real
// address (trusted_proxies applied).
//
// Semantics: deny wins; then, if there is an allow list at all, whatever
// it does not name is refused. That is nginx's first-match model with
// every deny rule written before every allow rule, followed by `deny all`
// when there is an allow rule.
package ipfilter

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/filter"
)

type settings struct {
	Allow        []netip.Prefix `yaml:"allow"`
	Deny         []netip.Prefix `yaml:"deny"`
	AllowFile    string         `yaml:"allow_file"`
	DenyFile     string         `yaml:"deny_file"`
	PollInterval time.Duration  `yaml:"poll_interval"`
}

// Filter is one ip_filter entry.
type Filter struct {
	l       *lists
	refused *series
}

// lists holds the compiled allow and deny sets; they are swapped whole
// when a file changes, so a request sees one consistent version.
type lists struct {
	allowList bool // an allow list is configured: default deny
	allow     atomic.Pointer[set]
	deny      atomic.Pointer[set]

	static   settings
	files    []*watched
	interval time.Duration
	log      *slog.Logger
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

// watched is one list file and what it held when last read successfully.
type watched struct {
	path    string
	field   string // allow_file or deny_file
	deny    bool
	entries []netip.Prefix
	stamp   stamp // of the version last read (good or bad)
}

// stamp identifies a version of a file without reading it.
type stamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

// New builds an ip_filter (the middleware factory).
func New(b *filter.Build) (filter.Filter, error) {
	s := settings{PollInterval: time.Second}
	pos, err := b.Decode(&s)
	if err != nil {
		return nil, err
	}
	if len(s.Allow) == 0 && len(s.Deny) == 0 && s.AllowFile == "" && s.DenyFile == "" {
		return nil, b.Errorf(pos, "", "needs at least one of allow, deny, allow_file, deny_file")
	}
	if s.PollInterval < 100*time.Millisecond || s.PollInterval > time.Hour {
		return nil, b.Errorf(pos, "poll_interval", "must be between 100ms and 1h")
	}
	// A reload that keeps the settings keeps the lists as they are: the
	// files are read (and must be good) only when the filter is new.
	var bad *fileError
	key := fmt.Sprintf("ipfilter|%s|%v|%v|%s|%s|%v", b.Entry.Path, s.Allow, s.Deny, s.AllowFile, s.DenyFile, s.PollInterval)
	l, err := filter.Keep(b.State, key, func() (*lists, error) {
		var files []*watched
		for _, f := range []struct {
			field, path string
			deny        bool
		}{{"allow_file", s.AllowFile, false}, {"deny_file", s.DenyFile, true}} {
			if f.path == "" {
				continue
			}
			w := &watched{path: f.path, field: f.field, deny: f.deny}
			if err := w.load(); err != nil {
				bad = &fileError{f.field, err}
				return nil, bad
			}
			files = append(files, w)
		}
		l := &lists{
			allowList: len(s.Allow) > 0 || s.AllowFile != "",
			static:    s,
			files:     files,
			interval:  s.PollInterval,
			log:       b.Log,
			stop:      make(chan struct{}),
			done:      make(chan struct{}),
		}
		l.rebuild()
		if len(files) > 0 {
			go l.poll()
		} else {
			close(l.done)
		}
		return l, nil
	})
	if bad != nil {
		return nil, b.Errorf(pos, bad.field, "%v", bad.err)
	}
	if err != nil {
		return nil, err
	}
	m, err := filter.Keep(b.State, "ipfilter.metrics", func() (*metrics, error) { return newMetrics(b.Metrics) })
	if err != nil {
		return nil, err
	}
	sr, err := filter.Keep(b.State, "ipfilter.series|"+b.Entry.Path, func() (*series, error) {
		return &series{m: m, path: b.Entry.Path, refused: m.refused.WithLabelValues(b.Entry.Path)}, nil
	})
	if err != nil {
		return nil, err
	}
	return &Filter{l: l, refused: sr}, nil
}

// Serve refuses the request with 403 unless the client may pass.
func (f *Filter) Serve(x *filter.Exchange, next filter.Handler) {
	if !f.l.allowed(x.ClientIP) {
		x.Log.Blocked = "ip_filter"
		f.refused.refused.Inc()
		filter.Reply(x, 403, filter.StatusText(403))
		return
	}
	next.Serve(x)
}

func (l *lists) allowed(a netip.Addr) bool {
	if l.deny.Load().contains(a) {
		return false
	}
	return !l.allowList || l.allow.Load().contains(a)
}

// rebuild compiles the static lists and the files' last good contents.
func (l *lists) rebuild() {
	allow, deny := [][]netip.Prefix{l.static.Allow}, [][]netip.Prefix{l.static.Deny}
	for _, w := range l.files {
		if w.deny {
			deny = append(deny, w.entries)
		} else {
			allow = append(allow, w.entries)
		}
	}
	l.allow.Store(newSet(allow...))
	l.deny.Store(newSet(deny...))
}

// poll re-reads the files whose stamp changed. A file that cannot be read
// or parsed keeps its last good contents, and is logged once per version.
func (l *lists) poll() {
	defer close(l.done)
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		changed := false
		for _, w := range l.files {
			st, err := statFile(w.path)
			if err != nil {
				if w.stamp != (stamp{}) {
					l.log.Error("ip_filter: cannot read list file; keeping its last good contents", "field", w.field, "error", err.Error())
					w.stamp = stamp{}
				}
				continue
			}
			if st == w.stamp {
				continue
			}
			before := w.entries
			if err := w.load(); err != nil {
				w.stamp = st // do not log the same broken version again
				l.log.Error("ip_filter: list file rejected; keeping its last good contents", "field", w.field, "error", err.Error())
				continue
			}
			changed = true
			l.log.Info("ip_filter: list file reloaded", "field", w.field, "file", w.path, "entries", len(w.entries), "before", len(before))
		}
		if changed {
			l.rebuild()
		}
	}
}

// load reads and parses the file, keeping the old entries on error.
func (w *watched) load() error {
	st, err := statFile(w.path)
	if err != nil {
		return err
	}
	data, err := readFile(w.path)
	if err != nil {
		return err
	}
	entries, err := parseList(w.path, data)
	if err != nil {
		return err
	}
	w.entries, w.stamp = entries, st
	return nil
}

func statFile(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	if !fi.Mode().IsRegular() {
		return stamp{}, fmt.Errorf("%s is not a regular file", path)
	}
	return stamp{mod: fi.ModTime(), size: fi.Size(), ino: inode(fi)}, nil
}

// readFile reads at most one byte more than a list may hold, so that an
// oversized file is refused without being read whole.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxFileBytes+1))
}

type fileError struct {
	field string
	err   error
}

func (e *fileError) Error() string { return e.field + ": " + e.err.Error() }

// Close stops the poller; the lists stay usable by requests in flight.
func (l *lists) Close() error {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
	})
	return nil
}
