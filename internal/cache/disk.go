package cache

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/maypok86/otter/v2"
)

// A disk store is the memory store written through to files under a
// directory, so that a restart (or a reload that changes the store) starts
// with what was cached. Hits are served from memory as in the memory store;
// the files follow the memory store's admissions and evictions, so both
// stay within max_bytes. Writes happen on a goroutine of their own: a miss
// never waits for the disk.

// diskMagic starts every entry file (and says which format it is).
const diskMagic = "gatehouse-cache-entry 1\n"

// diskMeta is an entry file's first line; the body follows it.
type diskMeta struct {
	Key, URL            string
	Status              int
	Header              [][2]string
	ResponseTime        time.Time
	CorrectedInitialAge time.Duration
	Lifetime            time.Duration
	NoCache, NoStale    bool
	AuthOK              bool
	SWR, SIE            time.Duration
	VaryNames           []string
	VaryID              uint64
}

type diskOp struct {
	e      *Entry
	delete bool
}

// persister writes and removes entry files, in order, on one goroutine.
type persister struct {
	mu     sync.RWMutex // closed and ops: no send after close
	closed bool
	dir    string
	ops    chan diskOp
	done   chan struct{}
	owner  map[string]*Entry // file name -> entry it holds (writer goroutine only)
}

// NewDisk returns a store persisted under dir, loaded with what dir holds.
func NewDisk(name, dir string, maxBytes, maxObject int64) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache directory: %w", err)
	}
	p := &persister{dir: dir, ops: make(chan diskOp, 4096), done: make(chan struct{}), owner: map[string]*Entry{}}
	s, err := newStore(name, maxBytes, maxObject, func(ev otter.DeletionEvent[string, *Entry]) {
		if ev.Cause != otter.CauseReplacement {
			p.enqueue(diskOp{e: ev.Value, delete: true})
		}
	})
	if err != nil {
		return nil, err
	}
	s.disk = p
	p.load(s)
	go p.run()
	return s, nil
}

func fileName(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// enqueue never blocks the request path: with the queue full, a write is
// dropped (the entry stays in memory only) and a removal is done at once.
func (p *persister) enqueue(op diskOp) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return
	}
	select {
	case p.ops <- op:
	default:
		if op.delete {
			os.Remove(filepath.Join(p.dir, fileName(op.e.Key)))
		}
	}
}

func (p *persister) run() {
	defer close(p.done)
	for op := range p.ops {
		name := fileName(op.e.Key)
		if op.delete {
			// Only the entry that owns the file removes it: a newer entry
			// for the same key may have been written since.
			if p.owner[name] == op.e || p.owner[name] == nil {
				delete(p.owner, name)
				os.Remove(filepath.Join(p.dir, name))
			}
			continue
		}
		if err := p.write(name, op.e); err == nil {
			p.owner[name] = op.e
		}
	}
}

func (p *persister) write(name string, e *Entry) error {
	m := diskMeta{Key: e.Key, URL: e.URL, Status: e.Status, ResponseTime: e.ResponseTime,
		CorrectedInitialAge: e.CorrectedInitialAge, Lifetime: e.Lifetime, NoCache: e.NoCache, NoStale: e.NoStale,
		AuthOK: e.AuthOK, SWR: e.SWR, SIE: e.SIE, VaryNames: e.VaryNames, VaryID: e.varyID}
	for _, f := range e.Header {
		m.Header = append(m.Header, [2]string{string(f.Name), string(f.Value)})
	}
	meta, err := json.Marshal(&m)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(p.dir, ".tmp-*")
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(tmp, 64<<10)
	w.WriteString(diskMagic)
	w.Write(meta)
	w.WriteByte('\n')
	w.Write(e.Body)
	err = errors.Join(w.Flush(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(p.dir, name))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// load reads every entry file into s; unreadable or foreign files named
// like entries are removed, leftovers of interrupted writes too.
func (p *persister) load(s *Store) {
	des, err := os.ReadDir(p.dir)
	if err != nil {
		return
	}
	for _, de := range des {
		path := filepath.Join(p.dir, de.Name())
		if strings.HasPrefix(de.Name(), ".tmp-") {
			// A leftover of an interrupted write; a recent one may be the
			// write in progress of the process still running (during
			// `gatehouse validate`, or a restart that overlaps).
			if fi, err := de.Info(); err == nil && time.Since(fi.ModTime()) > time.Minute {
				os.Remove(path)
			}
			continue
		}
		if !de.Type().IsRegular() || len(de.Name()) != 64 {
			continue
		}
		e, err := readEntry(path, s.MaxObject())
		if err != nil || fileName(e.Key) != de.Name() {
			os.Remove(path)
			continue
		}
		if e.varyID > s.varySeq.Load() {
			s.varySeq.Store(e.varyID)
		}
		p.owner[de.Name()] = e
		s.c.Set(e.Key, e)
	}
}

func readEntry(path string, maxObject int64) (*Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	magic := make([]byte, len(diskMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != diskMagic {
		return nil, errors.New("not an entry file")
	}
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	var m diskMeta
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(r, maxObject+1))
	if err != nil || int64(len(body)) > maxObject || m.Key == "" {
		return nil, errors.New("bad entry file")
	}
	e := &Entry{Key: m.Key, URL: m.URL, Status: m.Status, ResponseTime: m.ResponseTime,
		CorrectedInitialAge: m.CorrectedInitialAge, Lifetime: m.Lifetime, NoCache: m.NoCache, NoStale: m.NoStale,
		AuthOK: m.AuthOK, SWR: m.SWR, SIE: m.SIE, VaryNames: m.VaryNames, varyID: m.VaryID}
	if m.VaryNames == nil {
		e.Body = body
		h := make(exchange.Headers, 0, len(m.Header))
		for _, f := range m.Header {
			h = append(h, exchange.Header{Name: []byte(f[0]), Value: []byte(f[1])})
		}
		e.setHeader(h, nil)
	}
	e.weigh()
	return e, nil
}

// closeDisk writes what is queued and stops the writer.
func (p *persister) close() {
	p.mu.Lock()
	p.closed = true
	close(p.ops)
	p.mu.Unlock()
	<-p.done
}
