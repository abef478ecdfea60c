package cache

import (
	"context"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/maypok86/otter/v2"
)

// Store keeps entries in memory, bounded by bytes. Admission and eviction
// are W-TinyLFU (otter): a one-off scan of many URLs cannot push out what
// is requested often, because a newcomer is only admitted over a victim
// that its estimated frequency beats.
type Store struct {
	Name      string
	c         *otter.Cache[string, *Entry]
	maxObject atomic.Int64
	varySeq   atomic.Uint64

	flights [flightShards]flightShard
	seed    maphash.Seed

	// ctx ends background refreshes when the store is dropped.
	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup

	disk      *persister // nil for a memory store
	closeOnce sync.Once
}

// NewMemory returns a memory store of at most maxBytes, storing objects
// of at most maxObject bytes.
func NewMemory(name string, maxBytes, maxObject int64) (*Store, error) {
	return newStore(name, maxBytes, maxObject, nil)
}

func newStore(name string, maxBytes, maxObject int64, onDelete func(otter.DeletionEvent[string, *Entry])) (*Store, error) {
	c, err := otter.New(&otter.Options[string, *Entry]{
		MaximumWeight: uint64(maxBytes),
		Weigher:       func(_ string, e *Entry) uint32 { return e.weight },
		// Maintenance (eviction) runs on the writer's goroutine: the bound
		// holds as soon as Set returns, and no goroutine outlives the store.
		Executor:   func(fn func()) { fn() },
		OnDeletion: onDelete,
	})
	if err != nil {
		return nil, err
	}
	s := &Store{Name: name, c: c, seed: maphash.MakeSeed()}
	s.maxObject.Store(maxObject)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for i := range s.flights {
		s.flights[i].m = map[string]*Flight{}
	}
	return s, nil
}

// Resize applies new limits (a reload that changed them keeps the store).
func (s *Store) Resize(maxBytes, maxObject int64) {
	s.maxObject.Store(maxObject)
	if s.c.GetMaximum() != uint64(maxBytes) {
		s.c.SetMaximum(uint64(maxBytes))
	}
}

// MaxObject is the size above which responses are not stored.
func (s *Store) MaxObject() int64 { return s.maxObject.Load() }

// Bytes is the weight of what is stored (compare with max_bytes).
func (s *Store) Bytes() uint64 { s.c.CleanUp(); return s.c.WeightedSize() }

// Weight is Bytes without first running pending maintenance (cheap).
func (s *Store) Weight() uint64 { return s.c.WeightedSize() }

// Len is the number of stored entries (variant markers included).
func (s *Store) Len() int { return s.c.EstimatedSize() }

// Close ends background refreshes that have not started; the entries stay
// readable for requests still using the store.
// A disk store writes what is queued before Close returns.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.c.StopAllGoroutines()
		if s.disk != nil {
			s.disk.close()
		}
	})
	return nil
}

// Context is done once the store is closed.
func (s *Store) Context() context.Context { return s.ctx }

// Go runs fn in the background unless the store is closed.
func (s *Store) Go(fn func(ctx context.Context)) bool {
	if s.ctx.Err() != nil {
		return false
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		fn(s.ctx)
	}()
	return true
}

// Wait waits for background refreshes (tests).
func (s *Store) Wait() { s.bg.Wait() }

// get looks key up without keeping it: key may point into a request
// buffer, and a lookup neither stores nor retains its key.
func (s *Store) get(key []byte) *Entry {
	e, _ := s.c.GetIfPresent(unsafe.String(unsafe.SliceData(key), len(key)))
	return e
}

// Lookup finds the entry for url that matches the request's fields h
// (RFC 9111 §4.1). marker is the URL's Vary marker when the response
// varies (then a nil entry is a vary miss). buf is scratch space.
func (s *Store) Lookup(url []byte, h exchange.Headers, buf *[]byte) (e, marker *Entry) {
	e = s.get(url)
	if e == nil || e.VaryNames == nil {
		return e, nil
	}
	marker = e
	*buf = appendVariantKey((*buf)[:0], url, marker, h)
	return s.get(*buf), marker
}

// Put stores e, a response to a request with fields h that varies by
// vary. It reports false when the object is too large.
func (s *Store) Put(e *Entry, vary []string, h exchange.Headers) bool {
	if int64(len(e.Body)) > s.MaxObject() {
		return false
	}
	if len(vary) == 0 {
		e.Key = e.URL
		e.weigh()
		s.set(e)
		return true
	}
	marker, _ := s.c.GetIfPresent(e.URL)
	if marker == nil || !sameNames(marker.VaryNames, vary) {
		marker = &Entry{Key: e.URL, URL: e.URL, VaryNames: vary, varyID: s.varySeq.Add(1)}
		marker.weigh()
		s.set(marker)
	}
	e.Key = string(appendVariantKey(nil, []byte(e.URL), marker, h))
	e.weigh()
	s.set(e)
	return true
}

func (s *Store) set(e *Entry) {
	if s.disk != nil {
		// Queued before the set: an admission refused or an eviction during
		// Set queues the removal after the write.
		s.disk.enqueue(diskOp{e: e})
	}
	s.c.Set(e.Key, e)
}

// appendVariantKey is url NUL varyID NUL then each selecting field's
// values (all its lines, comma-joined, trimmed), NUL-separated.
func appendVariantKey(dst, url []byte, marker *Entry, h exchange.Headers) []byte {
	dst = append(dst, url...)
	dst = append(dst, 0)
	dst = strconv.AppendUint(dst, marker.varyID, 10)
	for _, name := range marker.VaryNames {
		dst = append(dst, 0)
		first := true
		for i := range h {
			if !exchange.EqualFold(h[i].Name, name) {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, exchange.TrimOWS(h[i].Value)...)
		}
	}
	return dst
}

func sameNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Invalidate removes url and, through its marker, every variant of it
// (§4.4). It reports whether something was stored.
func (s *Store) Invalidate(url string) bool {
	_, ok := s.c.Invalidate(url)
	return ok
}

// PurgeURL removes url and its variants; it returns how many entries went.
func (s *Store) PurgeURL(url string) int {
	return s.purge(func(e *Entry) bool { return e.URL == url })
}

// PurgePrefix removes every URL starting with prefix.
func (s *Store) PurgePrefix(prefix string) int {
	return s.purge(func(e *Entry) bool { return strings.HasPrefix(e.URL, prefix) })
}

// PurgeTag removes every entry carrying the surrogate key tag.
func (s *Store) PurgeTag(tag string) int {
	return s.purge(func(e *Entry) bool {
		for _, t := range e.Tags {
			if t == tag {
				return true
			}
		}
		return false
	})
}

// purge walks the store: purges are rare, operator-driven, and a walk
// needs no index to keep up to date on every store.
func (s *Store) purge(match func(*Entry) bool) int {
	var keys []string
	for k, e := range s.c.All() {
		if match(e) {
			keys = append(keys, k)
		}
	}
	n := 0
	for _, k := range keys {
		if e, ok := s.c.Invalidate(k); ok && e.VaryNames == nil {
			n++
		}
	}
	return n
}

// Flight is one request for a URL that others wait on (request
// coalescing): Done is closed when its response head showed whether it
// will be stored, or when it is stored.
type Flight struct {
	Done chan struct{}
	// Stored is set before Done closes: true when waiters should look
	// the URL up again, false when they should go to the backend.
	Stored  bool
	once    sync.Once
	waiters atomic.Int32
}

const flightShards = 64

type flightShard struct {
	mu sync.Mutex
	m  map[string]*Flight
}

// Join returns the flight for key, and whether the caller leads it (it
// makes the request and must call Land).
func (s *Store) Join(key []byte) (*Flight, bool) {
	sh := &s.flights[maphash.Bytes(s.seed, key)%flightShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if f, ok := sh.m[string(key)]; ok {
		f.waiters.Add(1)
		return f, false
	}
	f := &Flight{Done: make(chan struct{})}
	sh.m[string(key)] = f
	return f, true
}

// Waiting is how many requests wait on the flight for url (0 without one).
func (s *Store) Waiting(url string) int {
	sh := &s.flights[maphash.String(s.seed, url)%flightShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if f, ok := sh.m[url]; ok {
		return int(f.waiters.Load())
	}
	return 0
}

// Land ends a flight: waiters look the URL up again when stored, or go
// on their own. Only the first call counts.
func (s *Store) Land(key []byte, f *Flight, stored bool) {
	f.once.Do(func() {
		sh := &s.flights[maphash.Bytes(s.seed, key)%flightShards]
		sh.mu.Lock()
		if sh.m[string(key)] == f {
			delete(sh.m, string(key))
		}
		sh.mu.Unlock()
		f.Stored = stored
		close(f.Done)
	})
}
