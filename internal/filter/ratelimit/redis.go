package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// gcraScript is GCRA in Redis, so that every gatehouse instance counts
// against one bucket. It reads Redis's own clock (TIME): instances whose
// clocks disagree still agree on the bucket. Times are microseconds, which
// Lua's doubles hold exactly for centuries. The tat is written only when a
// request is allowed, and expires when the bucket would be full again.
//
// ARGV[1] emission interval (µs), ARGV[2] tolerance = emission × burst (µs).
// Returns {allowed (0|1), remaining, retry (µs), reset (µs)}.
var gcraScript = redis.NewScript(`
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = now
local v = redis.call('GET', KEYS[1])
if v then
  tat = tonumber(v) or now
  if tat < now then tat = now end
end
local nexttat = tat + emission
local diff = now - (nexttat - tolerance)
if diff < 0 then
  return {0, 0, -diff, tat - now}
end
local ttl = nexttat - now
redis.call('SET', KEYS[1], string.format('%.0f', nexttat), 'PX', math.ceil(ttl / 1000))
return {1, math.floor(diff / emission), 0, ttl}
`)

// errStoreDown is returned without asking Redis while it is known to be
// unreachable (between two probes).
var errStoreDown = errors.New("redis store unreachable (waiting before the next try)")

// probeEvery is how long requests skip a Redis that just failed: one
// request then tries again. Without it every request would wait out the
// dial timeout while Redis is down.
const probeEvery = time.Second

// redisStore keeps the buckets of one rate_limit filter in Redis.
type redisStore struct {
	client *redis.Client
	prefix string // cluster prefix + "ratelimit:" + policy id + ":"
	log    *slog.Logger
	// failOpen is only for the log line: the filter applies it.
	failOpen bool

	// nextTry is when (UnixNano) Redis may be tried again after a failure;
	// 0 while it works.
	nextTry atomic.Int64

	mu         sync.Mutex // guards the logging state below
	lastLog    time.Time
	suppressed int
	down       bool
}

// logEvery bounds error logging to one line per interval per store.
const logEvery = 10 * time.Second

func (s *redisStore) take(ctx context.Context, key []byte, emission, tolerance time.Duration) (decision, error) {
	if nt := s.nextTry.Load(); nt != 0 {
		now := time.Now().UnixNano()
		// One request per probe interval goes to Redis; the others do
		// not wait for it.
		if now < nt || !s.nextTry.CompareAndSwap(nt, now+int64(probeEvery)) {
			return decision{}, errStoreDown
		}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	sum := sha256.Sum256(key)
	var buf [32]byte
	hex.Encode(buf[:], sum[:16])
	k := s.prefix + string(buf[:])
	em := max(1, emission.Microseconds())
	tol := max(em, tolerance.Microseconds())
	vals, err := gcraScript.Run(ctx, s.client, []string{k}, em, tol).Int64Slice()
	if err == nil && len(vals) != 4 {
		err = fmt.Errorf("rate-limit script returned %d values, want 4", len(vals))
	}
	if err != nil {
		s.failed(err)
		return decision{}, err
	}
	s.recovered()
	return decision{
		allowed:   vals[0] == 1,
		remaining: vals[1],
		retry:     time.Duration(vals[2]) * time.Microsecond,
		reset:     time.Duration(vals[3]) * time.Microsecond,
	}, nil
}

func (s *redisStore) failed(err error) {
	s.nextTry.Store(time.Now().Add(probeEvery).UnixNano())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = true
	if time.Since(s.lastLog) < logEvery {
		s.suppressed++
		return
	}
	policy := "allowing"
	if !s.failOpen {
		policy = "refusing"
	}
	s.log.Error("rate_limit: redis store failed; "+policy+" requests until it answers (on_store_error)",
		"error", err.Error(), "similar_errors_since_last_log", s.suppressed)
	s.lastLog, s.suppressed = time.Now(), 0
}

func (s *redisStore) recovered() {
	if s.nextTry.Load() == 0 {
		return
	}
	s.nextTry.Store(0)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		s.down = false
		s.log.Info("rate_limit: redis store answers again", "errors_not_logged", s.suppressed)
		s.suppressed = 0
	}
}
