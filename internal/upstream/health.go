package upstream

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ActiveCheck is a pool's active health check.
type ActiveCheck struct {
	Path       string
	Interval   time.Duration
	Timeout    time.Duration
	Fall, Rise int
	// ExpectStatus tells a healthy status.
	ExpectStatus func(int) bool
	ExpectBody   string // substring; "" for any
	Host         string // Host header; "" for the target's
	Headers      map[string]string
	// Key is a stable rendering of the settings, to tell a changed check.
	Key string
	// Transport, when set, carries the checks (the pool's TLS settings or
	// HTTP/2 transport); nil: plain HTTP/1.1.
	Transport http.RoundTripper
}

// checker probes one backend on its own goroutine.
type checker struct {
	key    string
	cancel context.CancelFunc
	done   chan struct{}
}

// healthState is the part of a Backend that health checks own.
type healthState struct {
	mu      sync.Mutex // guards checker (set on reload only)
	checker *checker

	// statMu guards the last result; it is not mu, which is held while a
	// checker is stopped (and the checker may be recording a result).
	statMu        sync.Mutex
	lastCheck     time.Time
	lastCheckOK   bool
	lastCheckNote string
	// passed and failed count the checks since the backend was made.
	passed, failed atomic.Uint64
}

// StartChecks (re)starts the active check of b for a target at baseURL:
// kept as it is when the settings did not change, restarted when they did.
func (b *Backend) StartChecks(baseURL string, c *ActiveCheck, log *slog.Logger) {
	b.health.mu.Lock()
	defer b.health.mu.Unlock()
	if cur := b.health.checker; cur != nil {
		if c != nil && cur.key == c.Key {
			return
		}
		cur.stop()
		b.health.checker = nil
		b.SetDown(false)
	}
	if c == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := &checker{key: c.Key, cancel: cancel, done: make(chan struct{})}
	b.health.checker = ch
	go b.runChecks(ctx, ch, baseURL, *c, log)
}

// StopChecks ends the active check of a backend no pool uses any more.
func (b *Backend) StopChecks() {
	b.health.mu.Lock()
	defer b.health.mu.Unlock()
	if b.health.checker != nil {
		b.health.checker.stop()
		b.health.checker = nil
	}
}

func (c *checker) stop() {
	c.cancel()
	<-c.done
}

func (b *Backend) runChecks(ctx context.Context, ch *checker, baseURL string, c ActiveCheck, log *slog.Logger) {
	defer close(ch.done)
	var rt http.RoundTripper = &http.Transport{
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     2 * c.Interval,
		DisableCompression:  true,
	}
	if c.Transport != nil {
		rt = c.Transport
	}
	client := &http.Client{
		Timeout:       c.Timeout,
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	url := strings.TrimSuffix(baseURL, "/") + c.Path
	fails, oks := 0, 0
	// A random first delay spreads the checks of many targets (and of many
	// gatehouse instances) over the interval instead of firing them together.
	wait := time.Duration(rand.Int64N(int64(c.Interval)))
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		ok, note := probe(ctx, client, url, &c)
		b.recordCheck(ok, note)
		if ok {
			fails, oks = 0, oks+1
			if b.Down() && oks >= c.Rise {
				b.SetDown(false)
				log.Info("target up", "target", b.Addr, "check", url)
			}
		} else {
			oks, fails = 0, fails+1
			if !b.Down() && fails >= c.Fall {
				b.SetDown(true)
				log.Warn("target down", "target", b.Addr, "check", url, "reason", note)
			}
		}
		// ±10% jitter on every period keeps checks from falling into step.
		wait = c.Interval + time.Duration(rand.Int64N(int64(c.Interval)/5+1)) - c.Interval/10
	}
}

func probe(ctx context.Context, client *http.Client, url string, c *ActiveCheck) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "gatehouse-health-check")
	for k, v := range c.Headers {
		req.Header.Set(k, v)
	}
	if c.Host != "" {
		req.Host = c.Host
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, "request failed"
	}
	defer resp.Body.Close()
	if c.ExpectStatus != nil && !c.ExpectStatus(resp.StatusCode) {
		return false, "status " + resp.Status
	}
	if c.ExpectBody != "" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if !strings.Contains(string(body), c.ExpectBody) {
			return false, "body lacks expected text"
		}
	} else {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	}
	return true, "ok"
}

func (b *Backend) recordCheck(ok bool, note string) {
	if ok {
		b.health.passed.Add(1)
	} else {
		b.health.failed.Add(1)
	}
	b.health.statMu.Lock()
	b.health.lastCheck, b.health.lastCheckOK, b.health.lastCheckNote = time.Now(), ok, note
	b.health.statMu.Unlock()
}

// CheckCounts returns how many active checks of the backend passed and failed.
func (b *Backend) CheckCounts() (passed, failed uint64) {
	return b.health.passed.Load(), b.health.failed.Load()
}

// LastCheck returns the time and result of the latest active check.
func (b *Backend) LastCheck() (at time.Time, ok bool, note string) {
	b.health.statMu.Lock()
	defer b.health.statMu.Unlock()
	return b.health.lastCheck, b.health.lastCheckOK, b.health.lastCheckNote
}
