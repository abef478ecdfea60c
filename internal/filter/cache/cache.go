// Package cache is the `cache` middleware: it answers from an HTTP cache
// (internal/cache) with the rules of a shared cache (RFC 9111), and stores
// what the rest of the chain answers. Settings:
//
//	cache: {store: memory, max_bytes: 256MiB, max_object_bytes: 8MiB, default_ttl: 0}
//	cache: {use: NAME, default_ttl: 0}   # a store of the top-level caches: section
package cache

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/cache"
	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
)

type settings struct {
	Use            string        `yaml:"use"`
	Store          string        `yaml:"store"`
	MaxBytes       config.Size   `yaml:"max_bytes"`
	MaxObjectBytes config.Size   `yaml:"max_object_bytes"`
	Path           string        `yaml:"path"`
	DefaultTTL     time.Duration `yaml:"default_ttl"`
}

// Filter is one cache middleware entry.
type Filter struct {
	store  *cache.Store
	params cache.Params
	m      counters
	fan    *Fanout
}

// New is the middleware's factory.
func New(b *filter.Build) (filter.Filter, error) {
	var s settings
	pos, err := b.Decode(&s)
	if err != nil {
		return nil, err
	}
	if s.DefaultTTL < 0 {
		return nil, b.Errorf(pos, "default_ttl", "must be 0 or more")
	}
	var sc config.CacheStore
	name := b.Entry.Path
	if s.Use != "" {
		for _, f := range []string{"store", "max_bytes", "max_object_bytes", "path"} {
			if pos.Has(b.Entry.Path + "." + f) {
				return nil, b.Errorf(pos, f, "not with use: the store's settings are those of caches.%s", s.Use)
			}
		}
		c, ok := b.Config.Caches[s.Use]
		if !ok {
			known := slices.Sorted(maps.Keys(b.Config.Caches))
			return nil, b.Errorf(pos, "use", "no cache %q in the caches: section%s", s.Use, config.Suggest(s.Use, known))
		}
		sc, name = *c, s.Use
	} else {
		sc = config.CacheStore{Store: s.Store, MaxBytes: s.MaxBytes, MaxObjectBytes: s.MaxObjectBytes, Path: s.Path}
		config.CacheStoreDefaults(&sc, pos, b.Entry.Path)
		fields, msgs := config.CheckCacheStore(&sc)
		if len(fields) > 0 {
			return nil, b.Errorf(pos, fields[0], "%s", msgs[0])
		}
	}
	key := fmt.Sprintf("cache.store|%s|%s|%s", sc.Store, name, sc.Path)
	st, err := filter.Keep(b.State, key, func() (*cache.Store, error) {
		if sc.Store == config.CacheStoreDisk {
			return cache.NewDisk(name, sc.Path, int64(sc.MaxBytes), int64(sc.MaxObjectBytes))
		}
		return cache.NewMemory(name, int64(sc.MaxBytes), int64(sc.MaxObjectBytes))
	})
	if err != nil {
		field := "use"
		if s.Use == "" {
			field = "path"
		}
		return nil, b.Errorf(pos, field, "%v", err)
	}
	st.Resize(int64(sc.MaxBytes), int64(sc.MaxObjectBytes))
	f := &Filter{store: st, params: cache.Params{DefaultTTL: s.DefaultTTL}}
	if err := f.m.init(b, name); err != nil {
		return nil, err
	}
	if f.fan, err = fanoutFor(b); err != nil {
		return nil, err
	}
	if f.fan != nil {
		f.fan.register(st)
	}
	return f, nil
}
