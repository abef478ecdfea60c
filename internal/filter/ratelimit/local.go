package ratelimit

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// decision is the outcome of one request against a bucket.
type decision struct {
	allowed   bool
	remaining int64         // requests still allowed right now (after this one)
	retry     time.Duration // when refused: how long until one would pass
	reset     time.Duration // how long until the bucket is full again
}

// gcra applies one request at now to a bucket whose theoretical arrival
// time is tat (GCRA, the "virtual scheduling" form): the bucket holds
// burst requests and refills one every emission interval. A tat at or
// before now is a full bucket, which is why expired entries can be dropped.
// It returns the bucket's new tat.
func gcra(tat, now, emission, tolerance int64) (int64, decision) {
	if tat < now {
		tat = now
	}
	next := tat + emission
	diff := now - (next - tolerance)
	if diff < 0 {
		return tat, decision{retry: time.Duration(-diff), reset: time.Duration(tat - now)}
	}
	return next, decision{allowed: true, remaining: diff / emission, reset: time.Duration(next - now)}
}

// nShards splits the local store so that concurrent requests for
// different keys rarely wait on the same lock.
const nShards = 64

// localStore keeps the buckets of one rate_limit filter in memory, sharded
// by key hash. Entries are the key's 128-bit hash and its tat: a bucket is
// 24 bytes plus the map's overhead whatever the key's length, and
// collisions (two clients sharing a bucket) need ~2^64 keys.
type localStore struct {
	seed1, seed2 maphash.Seed
	base         time.Time // tats are nanoseconds since base (monotonic)
	perShard     int       // at most this many entries in a shard
	evicted      atomic.Int64
	shards       [nShards]shard
	stop         chan struct{}
	done         chan struct{}
	closeOnce    sync.Once
}

type hkey struct{ a, b uint64 }

type shard struct {
	mu    sync.Mutex
	m     map[hkey]int64
	peak  int
	swept int64    // when makeRoom last swept (store nanoseconds)
	_     [32]byte // keep shards on separate cache lines
}

// sweepEvery is how often the janitor drops full buckets; between sweeps
// the per-shard cap bounds memory.
const sweepEvery = 2 * time.Second

// sweepGap is the least time between two sweeps of a full shard on insert.
const sweepGap = 100 * time.Millisecond

func newLocalStore(maxKeys int) *localStore {
	s := &localStore{
		seed1:    maphash.MakeSeed(),
		seed2:    maphash.MakeSeed(),
		base:     time.Now(),
		perShard: max(1, (maxKeys+nShards-1)/nShards),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	for i := range s.shards {
		s.shards[i].m = make(map[hkey]int64)
	}
	go s.janitor()
	return s
}

func (s *localStore) now() int64 { return int64(time.Since(s.base)) }

// take counts one request against the bucket of key.
func (s *localStore) take(key []byte, emission, tolerance int64) decision {
	k := hkey{maphash.Bytes(s.seed1, key), maphash.Bytes(s.seed2, key)}
	sh := &s.shards[k.a%nShards]
	now := s.now()
	sh.mu.Lock()
	tat, ok := sh.m[k]
	if !ok && len(sh.m) >= s.perShard {
		s.makeRoom(sh, now)
	}
	next, d := gcra(tat, now, emission, tolerance)
	if d.allowed {
		sh.m[k] = next
	}
	if n := len(sh.m); n > sh.peak {
		sh.peak = n
	}
	sh.mu.Unlock()
	return d
}

// makeRoom frees one entry of a full shard: the expired ones if there are
// any, or else the sampled entry closest to full (the one whose loss
// forgives the least). A flood of new keys thus evicts flood keys, and
// memory stays bounded whatever the traffic.
func (s *localStore) makeRoom(sh *shard, now int64) {
	// A full sweep costs the whole shard: under a flood of new keys that
	// are not expiring it is done at most every sweepGap, so that each new
	// key costs a few samples, not a scan.
	if now-sh.swept >= int64(sweepGap) {
		sh.swept = now
		if sweep(sh, now) > 0 {
			return
		}
	}
	const samples = 8
	var victim hkey
	oldest, n := int64(0), 0
	for k, tat := range sh.m { // map iteration starts at a random place
		if n == 0 || tat < oldest {
			victim, oldest = k, tat
		}
		if n++; n == samples {
			break
		}
	}
	delete(sh.m, victim)
	s.evicted.Add(1)
}

// sweep drops the entries whose bucket is full again (equivalent to no
// entry) and returns how many it dropped. A map that shrank to a quarter
// of its peak is rebuilt, since Go maps keep their size after deletes.
func sweep(sh *shard, now int64) int {
	dropped := 0
	for k, tat := range sh.m {
		if tat <= now {
			delete(sh.m, k)
			dropped++
		}
	}
	if sh.peak > 1024 && len(sh.m) < sh.peak/4 {
		m := make(map[hkey]int64, len(sh.m))
		for k, v := range sh.m {
			m[k] = v
		}
		sh.m, sh.peak = m, len(m)
	}
	return dropped
}

func (s *localStore) janitor() {
	defer close(s.done)
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			for i := range s.shards {
				sh := &s.shards[i]
				sh.mu.Lock()
				sweep(sh, s.now())
				sh.mu.Unlock()
			}
		}
	}
}

// len is the number of buckets held (for tests and metrics).
func (s *localStore) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Close stops the janitor; the store stays usable by requests in flight.
func (s *localStore) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
	})
	return nil
}
