// Package basicauth is the basic_auth middleware: HTTP Basic authentication
// (RFC 7617) against bcrypt or argon2id hashes written in the configuration
// or in a users file that is re-read when it changes.
//
// Password hashes are slow on purpose, which makes every login attempt a
// CPU (and, for argon2id, memory) cost an attacker can impose. Three things
// keep that bounded: credentials that verified are remembered for a while
// under a keyed hash (so a client sending the same good Authorization on
// every request pays for one verification, as in Caddy); no more
// verifications run at once than there are CPUs (the rest wait their turn,
// so a flood costs latency, not memory); and an unknown user costs one
// verification like a known one, so timing does not tell which names exist.
// Put a rate_limit in front to bound guessing itself.
package basicauth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/authmetrics"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/filewatch"
	"github.com/gatehouse-proxy/gatehouse/internal/passhash"
)

type settings struct {
	Realm     string            `yaml:"realm"`
	Users     map[string]string `yaml:"users"`
	UsersFile string            `yaml:"users_file"`
}

// Cache bounds: a verified (user, password) is trusted again without a
// hash for cacheTTL, and at most cacheMax of them are remembered.
const (
	cacheTTL = 5 * time.Minute
	cacheMax = 4096
)

// userSet is one source of users. ref is the hash an unknown name is
// checked against, so that it costs what a known one costs.
type userSet struct {
	byName map[string]user
	ref    passhash.Hash
}

type user struct {
	name string // the key again: the access log takes it without a copy
	hash passhash.Hash
}

func newUserSet(m map[string]passhash.Hash) userSet {
	s := userSet{byName: make(map[string]user, len(m))}
	for n, h := range m {
		s.byName[n] = user{n, h}
	}
	if len(m) > 0 {
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		slices.Sort(names)
		s.ref = m[names[0]]
	}
	return s
}

// Filter is one basic_auth entry.
type Filter struct {
	challenge string // WWW-Authenticate value
	inline    userSet
	file      *filewatch.File[userSet] // nil without users_file

	secret [32]byte // key of the verified-credentials cache
	cache  sync.Map // [32]byte -> int64 (expiry, unix ns)
	cached atomic.Int64
	slots  chan struct{} // one per verification allowed at once
	m      *authmetrics.Counter
}

// New builds a basic_auth filter from its settings.
func New(b *filter.Build) (filter.Filter, error) {
	var s settings
	pos, err := b.Decode(&s)
	if err != nil {
		return nil, err
	}
	if s.Realm == "" {
		s.Realm = "restricted"
	}
	for _, c := range []byte(s.Realm) {
		if c < 0x20 || c == 0x7f || c == '"' || c == '\\' {
			return nil, b.Errorf(pos, "realm", "realm %q may not contain quotes, backslashes or control characters", s.Realm)
		}
	}
	f := &Filter{
		challenge: `Basic realm="` + s.Realm + `", charset="UTF-8"`,
		slots:     make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
	}
	if _, err := rand.Read(f.secret[:]); err != nil {
		return nil, err
	}
	inline := map[string]passhash.Hash{}
	var errs config.Errors
	names := make([]string, 0, len(s.Users))
	for name := range s.Users {
		names = append(names, name)
	}
	slices.Sort(names) // errors in a stable order
	for _, name := range names {
		hash := s.Users[name]
		field := config.KeyPath("users", name)
		if err := checkName(name); err != nil {
			errs = append(errs, b.Errorf(pos, field, "%v", err).(config.Errors)...)
			continue
		}
		h, err := passhash.Parse(hash)
		if err != nil {
			errs = append(errs, b.Errorf(pos, field, "user %q: %v", name, err).(config.Errors)...)
			continue
		}
		inline[name] = h
	}
	if len(errs) > 0 {
		return nil, errs
	}
	f.inline = newUserSet(inline)
	if pos.Has(b.Entry.Path+".users_file") || s.UsersFile != "" {
		if s.UsersFile == "" {
			return nil, b.Errorf(pos, "users_file", "users_file is empty: write the path of a file of NAME:HASH lines")
		}
		data, err := filewatch.ReadFile(s.UsersFile)
		if err != nil {
			return nil, b.Errorf(pos, "users_file", "%v", err)
		}
		parse := func(data []byte) (userSet, error) {
			m, err := parseUsersFile(data)
			return newUserSet(m), err
		}
		set, err := parse(data)
		if err != nil {
			return nil, b.Errorf(pos, "users_file", "%s: %v", s.UsersFile, err)
		}
		for name := range set.byName {
			if _, dup := inline[name]; dup {
				return nil, b.Errorf(pos, "users_file", "%s: user %q is also in users", s.UsersFile, name)
			}
		}
		w, err := filter.Keep(b.State, "basic_auth.users_file:"+s.UsersFile, func() (*filewatch.File[userSet], error) {
			return filewatch.Watch(s.UsersFile, filewatch.Interval, parse, b.Log), nil
		})
		if err != nil {
			return nil, err
		}
		w.Store(set, data)
		f.file = w
	}
	if len(f.inline.byName) == 0 && f.file == nil {
		return nil, b.Errorf(pos, "", "basic_auth needs users or a users_file")
	}
	if f.m, err = authmetrics.For(b, "basic_auth"); err != nil {
		return nil, err
	}
	return f, nil
}

// Serve lets the request through when it carries the credentials of a user.
func (f *Filter) Serve(x *filter.Exchange, next filter.Handler) {
	v, n := authorization(x.Req.Header)
	var buf [maxCredentials * 3 / 4]byte
	user, password, ok := ParseBasic(v, buf[:])
	switch {
	case n == 0:
		x.Log.Blocked = "basic_auth:no_credentials"
	case n > 1 || !ok:
		x.Log.Blocked = "basic_auth:malformed"
	case !f.check(user, password, x.Start, &x.Log.User):
		x.Log.Blocked = "basic_auth:bad_credentials"
	default:
		f.m.Allowed()
		next.Serve(x)
		return
	}
	f.m.Refused(x.Log.Blocked)
	filter.Reply(x, 401, filter.StatusText(401), "WWW-Authenticate", f.challenge)
}

// authorization returns the first Authorization field and how many there are.
func authorization(h exchange.Headers) (v []byte, n int) {
	for i := range h {
		if exchange.EqualFold(h[i].Name, "Authorization") {
			if n == 0 {
				v = h[i].Value
			}
			n++
		}
	}
	return v, n
}

// check verifies user and password, from the cache when they verified
// lately; it sets *name to the user's name when they do.
func (f *Filter) check(user, password []byte, now time.Time, name *string) bool {
	u, known := f.inline.byName[string(user)]
	ref := f.inline.ref
	if !known && f.file != nil {
		set := f.file.Load()
		u, known = set.byName[string(user)]
		if ref == nil {
			ref = set.ref
		}
	}
	if !known {
		// Spend what a known user costs, then refuse.
		if ref != nil {
			f.verify(ref, bytes.Clone(password))
		}
		return false
	}
	key := f.cacheKey(user, password, u.hash)
	if exp, ok := f.cache.Load(key); ok && now.UnixNano() < exp.(int64) {
		*name = u.name
		return true
	}
	// A copy: the hash is an interface, so what it is given escapes, and
	// password lives on Serve's stack.
	if !f.verify(u.hash, bytes.Clone(password)) {
		return false
	}
	f.remember(key, now)
	*name = u.name
	return true
}

func (f *Filter) verify(h passhash.Hash, password []byte) bool {
	f.slots <- struct{}{}
	defer func() { <-f.slots }()
	return h.Verify(password)
}

// cacheKey is a keyed hash of the credentials and the hash they verified
// against: it reveals nothing of the password, and a changed hash (a new
// users file) no longer matches.
func (f *Filter) cacheKey(user, password []byte, h passhash.Hash) [32]byte {
	var buf [32 + maxCredentials + 2 + 256]byte
	b := append(buf[:0], f.secret[:]...)
	b = append(b, user...)
	b = append(b, 0)
	b = append(b, password...)
	b = append(b, 0)
	b = append(b, h.String()...)
	return sha256.Sum256(b)
}

func (f *Filter) remember(key [32]byte, now time.Time) {
	if _, loaded := f.cache.Swap(key, now.Add(cacheTTL).UnixNano()); loaded {
		return
	}
	if f.cached.Add(1) <= cacheMax {
		return
	}
	// Full: drop expired entries, and arbitrary ones until a quarter is free.
	f.cache.Range(func(k, exp any) bool {
		if exp.(int64) <= now.UnixNano() || f.cached.Load() > cacheMax*3/4 {
			f.cache.Delete(k)
			f.cached.Add(-1)
		}
		return true
	})
}
