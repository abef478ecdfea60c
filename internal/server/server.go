package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/observe"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Server is one running gatehouse.
type Server struct {
	log       *slog.Logger
	snap      atomic.Pointer[Snapshot]
	accessLog atomic.Pointer[observe.AccessLog]

	// Loader re-reads the configuration for a reload.
	Loader func() (*config.Config, error)
	// Resolver looks up dns+ and srv+ targets; nil: net.DefaultResolver.
	// Set it before Start.
	Resolver *net.Resolver

	mu         sync.Mutex // serialises reloads and shutdown
	listeners  map[string]*listener
	backends   map[string]*upstream.Backend
	resolvers  []*resolver // of the current snapshot's pools with discovered targets
	admin      *adminServer
	accessKey  string // the access_log settings accessLog was opened with
	tracer     atomic.Pointer[observe.Tracer]
	tracingKey string
	reloads    atomic.Int64
	lastReload atomic.Pointer[reloadStatus]
	// reloadFailures counts rejected reloads; loadedAt is when the running
	// configuration was loaded (unix nanoseconds).
	reloadFailures atomic.Int64
	loadedAt       atomic.Int64
	monitor        *monitor
	drains         *drainSet
	startedAt      time.Time
	shuttingDown   bool
	env            *buildEnv
	// Metrics is the registry the admin listener's /metrics serves.
	Metrics *prometheus.Registry
}

type reloadStatus struct {
	At     time.Time
	OK     bool
	Errors []string
}

// New builds a server for cfg without opening anything yet.
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	return newServer(cfg, log, factories)
}

// newServer is New with the middleware it knows given (tests add their own).
func newServer(cfg *config.Config, log *slog.Logger, known map[string]filter.Factory) (*Server, error) {
	reg := prometheus.NewRegistry()
	s := &Server{log: log, listeners: map[string]*listener{}, startedAt: time.Now(), Metrics: reg,
		env: &buildEnv{known: known, log: log, metrics: reg}}
	snap, used, err := buildSnapshot(cfg, nil, nil, s.env)
	if err != nil {
		return nil, err
	}
	s.monitor = newMonitor(s, reg)
	s.drains = newDrainSet()
	s.monitor.instrument(snap)
	s.backends = used
	s.snap.Store(snap)
	s.loadedAt.Store(time.Now().UnixNano())
	s.logWarnings(cfg)
	return s, nil
}

func (s *Server) logWarnings(cfg *config.Config) {
	for _, w := range cfg.Warnings {
		s.log.Warn("configuration warning", "warning", w.Error())
	}
}

// Check builds a snapshot of cfg without opening anything: what validation
// of the file cannot see (features this build does not run yet) shows here.
func Check(cfg *config.Config) error {
	snap, _, err := buildSnapshot(cfg, nil, nil, &buildEnv{known: factories, log: slog.New(slog.DiscardHandler), metrics: prometheus.NewRegistry()})
	if err == nil {
		snap.Filters.Discard()
	}
	return err
}

// Start opens the listeners and the admin endpoint of the current config.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.snap.Load().Config
	if err := s.applyAccessLog(cfg); err != nil {
		return err
	}
	if err := s.applyTracing(cfg); err != nil {
		return err
	}
	if err := s.openNewListeners(cfg); err != nil {
		s.closeListeners(s.listeners)
		return err
	}
	if err := s.syncAdmin(cfg); err != nil {
		s.closeListeners(s.listeners)
		return err
	}
	startHealthChecks(s.snap.Load(), nil, s.log)
	s.resolvers = startResolvers(s.snap.Load(), nil, s.Resolver, s.log, s.drains)
	s.monitor.start()
	return nil
}

// Snapshot returns the configuration being served.
func (s *Server) Snapshot() *Snapshot { return s.snap.Load() }

// Reload loads the configuration again and swaps it in; an invalid one is
// refused and the running one keeps serving.
func (s *Server) Reload() error {
	if s.Loader == nil {
		return errors.New("this server has no configuration file to reload")
	}
	cfg, err := s.Loader()
	if err != nil {
		s.recordReload(err)
		s.log.Error("reload rejected: configuration invalid; keeping the running one", "errors", errorLines(err))
		return err
	}
	return s.Apply(cfg)
}

// Apply swaps in cfg.
func (s *Server) Apply(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return errors.New("shutting down")
	}
	prev := s.snap.Load()
	snap, used, err := buildSnapshot(cfg, s.backends, prev.Filters, s.env)
	if err == nil {
		err = s.applyAccessLog(cfg)
	}
	if err == nil {
		err = s.applyTracing(cfg)
	}
	if err == nil {
		// Listeners first: if a new address cannot be opened, nothing changes.
		err = s.openNewListeners(cfg)
	}
	if err != nil {
		if snap != nil {
			snap.Filters.Discard()
		}
		s.recordReload(err)
		s.log.Error("reload rejected; keeping the running configuration", "err", err)
		return err
	}
	// The new pools' names are looked up before they serve; the old
	// resolvers hand their backends over.
	s.monitor.instrument(snap)
	seeds := stopResolvers(s.resolvers)
	s.resolvers = startResolvers(snap, seeds, s.Resolver, s.log, s.drains)
	releaseBackends(seeds) // pools that no longer have discovered targets
	s.drains.apply(snap)
	old := s.backends
	s.backends = used
	s.snap.Store(snap)
	s.loadedAt.Store(time.Now().UnixNano())
	snap.Filters.Retire(prev.Filters)
	s.closeRemovedListeners(cfg)
	if err := s.syncAdmin(cfg); err != nil {
		s.log.Error("admin listener not moved", "err", err)
	}
	stale := map[string]*upstream.Backend{}
	for k, be := range old {
		if used[k] != be {
			stale[k] = be
			be.Transport.CloseIdle(true)
		}
	}
	startHealthChecks(snap, stale, s.log)
	s.reloads.Add(1)
	s.recordReload(nil)
	s.logWarnings(cfg)
	s.log.Info("configuration reloaded", "file", cfg.File, "hash", cfg.Hash)
	return nil
}

func (s *Server) recordReload(err error) {
	st := &reloadStatus{At: time.Now(), OK: err == nil}
	if err != nil {
		st.Errors = errorLines(err)
		s.reloadFailures.Add(1)
	}
	s.lastReload.Store(st)
}

// errorLines splits a config error into its lines (one per problem).
func errorLines(err error) []string {
	var errs config.Errors
	if errors.As(err, &errs) {
		out := make([]string, len(errs))
		for i, e := range errs {
			out[i] = e.Error()
		}
		return out
	}
	return []string{err.Error()}
}

func (s *Server) applyAccessLog(cfg *config.Config) error {
	a := cfg.AccessLog
	key := ""
	if a.Enabled {
		key = a.Output + "\x00" + a.Format + "\x00" + strings.Join(a.Fields, "\x00")
	}
	if key == s.accessKey {
		return nil
	}
	var al *observe.AccessLog
	if key != "" {
		var err error
		if al, err = observe.OpenAccessLog(a.Output, observe.NewFormat(a.Format, a.Fields)); err != nil {
			return fmt.Errorf("access_log.output: %w", err)
		}
	}
	prev := s.accessLog.Swap(al)
	s.accessKey = key
	if prev != nil {
		// Requests still holding it finish writing within a moment.
		time.AfterFunc(5*time.Second, prev.Close)
	}
	return nil
}

// applyTracing starts, replaces or stops the span exporter when the
// tracing section changed.
func (s *Server) applyTracing(cfg *config.Config) error {
	key := ""
	if t := cfg.Tracing; t != nil {
		key = fmt.Sprintf("%s|%g|%s|%v", t.OTLPEndpoint, t.SampleRatio, t.ServiceName, t.Headers)
	}
	if key == s.tracingKey {
		return nil
	}
	var tr *observe.Tracer
	if t := cfg.Tracing; t != nil {
		var err error
		tr, err = observe.NewTracer(observe.TracingConfig{Endpoint: t.OTLPEndpoint, SampleRatio: t.SampleRatio,
			ServiceName: t.ServiceName, Headers: t.Headers, Version: Version})
		if err != nil {
			return fmt.Errorf("tracing: %w", err)
		}
	}
	prev := s.tracer.Swap(tr)
	s.tracingKey = key
	if prev != nil {
		time.AfterFunc(5*time.Second, prev.Close)
	}
	return nil
}

// ReopenLogs reopens the access log file (SIGUSR1, after logrotate).
func (s *Server) ReopenLogs() error {
	if al := s.accessLog.Load(); al != nil {
		return al.Reopen()
	}
	return nil
}

// Shutdown stops accepting, lets in-flight requests finish until ctx ends,
// then closes what is left.
func (s *Server) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.shuttingDown = true
	ls := s.listeners
	s.listeners = map[string]*listener{}
	admin := s.admin
	s.admin = nil
	rs := s.resolvers
	s.resolvers = nil
	s.mu.Unlock()
	for _, l := range ls {
		l.stopAccepting()
	}
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() { defer wg.Done(); l.drain(ctx) }()
	}
	wg.Wait()
	if admin != nil {
		admin.close()
	}
	s.monitor.stop()
	releaseBackends(stopResolvers(rs))
	for _, be := range s.backends {
		be.StopChecks()
		be.Transport.CloseIdle(true)
	}
	if al := s.accessLog.Swap(nil); al != nil {
		al.Close()
	}
	if tr := s.tracer.Swap(nil); tr != nil {
		tr.Close()
	}
	s.snap.Load().Filters.Close()
}

// Addrs are the addresses actually listened on (useful with port 0).
func (s *Server) Addrs() map[string]net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]net.Addr{}
	for k, l := range s.listeners {
		m[k] = l.ln.Addr()
	}
	return m
}
