package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/cache"
	"github.com/gatehouse-proxy/gatehouse/internal/cluster"
	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/redis/go-redis/v9"
)

// Fanout sends this instance's purges to the other instances of the fleet
// over Redis pub/sub (cluster.redis) and applies theirs to the stores of
// this instance. It exists when cluster.redis is configured and a cache
// middleware is, and is kept across reloads that keep both.
type Fanout struct {
	rdb     *redis.Client
	channel string
	id      string // this instance: its own messages come back and are skipped
	log     *slog.Logger

	mu     sync.Mutex
	stores []*cache.Store

	cancel context.CancelFunc
	done   chan struct{}
}

type fanoutMsg struct {
	From string `json:"from"`
	cache.Purge
}

// fanoutFor returns the fleet's purge fan-out, or nil without cluster.redis.
func fanoutFor(b *filter.Build) (*Fanout, error) {
	rc := b.Config.Cluster.Redis
	if rc == nil {
		return nil, nil
	}
	rdb, err := cluster.Redis(b.State, rc)
	if err != nil {
		return nil, err
	}
	return filter.Keep(b.State, "cache.fanout|"+rc.Addr+"|"+rc.Prefix, func() (*Fanout, error) {
		return newFanout(rdb, rc, b.Log), nil
	})
}

func newFanout(rdb *redis.Client, rc *config.Redis, log *slog.Logger) *Fanout {
	var id [8]byte
	rand.Read(id[:])
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fanout{rdb: rdb, channel: rc.Prefix + "cache:purge", id: hex.EncodeToString(id[:]), log: log, cancel: cancel, done: make(chan struct{})}
	go f.run(ctx)
	return f
}

// register adds a store purges from the fleet apply to.
func (f *Fanout) register(s *cache.Store) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.stores, s) {
		f.stores = append(f.stores, s)
	}
}

// live are the registered stores still in use (a closed one was dropped by
// a reload).
func (f *Fanout) live() []*cache.Store {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stores = slices.DeleteFunc(f.stores, func(s *cache.Store) bool { return s.Context().Err() != nil })
	return slices.Clone(f.stores)
}

// Publish sends p to the other instances.
func (f *Fanout) Publish(ctx context.Context, p *cache.Purge) error {
	b, err := json.Marshal(fanoutMsg{From: f.id, Purge: *p})
	if err != nil {
		return err
	}
	return f.rdb.Publish(ctx, f.channel, b).Err()
}

// run applies the fleet's purges until Close, subscribing again after a
// lost connection.
func (f *Fanout) run(ctx context.Context) {
	defer close(f.done)
	for ctx.Err() == nil {
		ps := f.rdb.Subscribe(ctx, f.channel)
		if _, err := ps.Receive(ctx); err != nil {
			ps.Close()
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		ch := ps.Channel()
	recv:
		for {
			select {
			case <-ctx.Done():
				break recv
			case m, ok := <-ch:
				if !ok {
					break recv
				}
				var msg fanoutMsg
				if json.Unmarshal([]byte(m.Payload), &msg) != nil || msg.From == f.id {
					continue
				}
				n := msg.Purge.Apply(f.live())
				f.log.Debug("cache purge from the fleet", "from", msg.From, "purged", n)
			}
		}
		ps.Close()
	}
}

// Close stops applying the fleet's purges.
func (f *Fanout) Close() error {
	f.cancel()
	<-f.done
	return nil
}
