// Package observe holds gatehouse's access log (and, later, metrics and traces).
package observe

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Entry is what one request leaves in the access log.
type Entry struct {
	Start    time.Time
	Client   []byte
	Method   []byte
	Host     []byte
	Path     []byte
	Status   int
	Bytes    int64
	Duration time.Duration
	Upstream string
	Route    string
	Cache    string // filter.LogFields: cache outcome, identity, refusal
	User     string
	Blocked  string
}

// AccessLog writes one JSON line per request from a goroutine of its own:
// requests only format into a pooled buffer and hand it over, never wait on
// the disk, and lines are dropped (and counted) when the queue is full.
type AccessLog struct {
	out     io.Writer
	closer  io.Closer
	queue   chan *[]byte
	done    chan struct{}
	dropped atomic.Int64
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// OpenAccessLog opens output: "stderr", "stdout" or a file path (appended to).
func OpenAccessLog(output string) (*AccessLog, error) {
	var w io.Writer
	var c io.Closer
	switch output {
	case "", "stderr":
		w = os.Stderr
	case "stdout":
		w = os.Stdout
	default:
		f, err := os.OpenFile(output, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		w, c = f, f
	}
	l := &AccessLog{out: w, closer: c, queue: make(chan *[]byte, 8192), done: make(chan struct{})}
	go l.run()
	return l, nil
}

// Dropped is how many lines were lost to a full queue.
func (l *AccessLog) Dropped() int64 { return l.dropped.Load() }

func (l *AccessLog) run() {
	defer close(l.done)
	bw := bufio.NewWriterSize(l.out, 64<<10)
	for b := range l.queue {
		bw.Write(*b)
		*b = (*b)[:0]
		bufPool.Put(b)
		if len(l.queue) == 0 {
			bw.Flush()
		}
	}
	bw.Flush()
}

// Close writes what is queued and closes the output.
func (l *AccessLog) Close() {
	close(l.queue)
	<-l.done
	if l.closer != nil {
		l.closer.Close()
	}
}

// Log queues one entry.
func (l *AccessLog) Log(e *Entry) {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"time":"`...)
	b = e.Start.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"access","client":`...)
	b = appendJSONString(b, e.Client)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, e.Method)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, e.Host)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, e.Path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(e.Duration.Microseconds())/1000, 'f', 3, 64)
	b = append(b, `,"upstream":`...)
	b = appendJSONString(b, e.Upstream)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, e.Route)
	for _, f := range [...]struct{ name, v string }{{"cache", e.Cache}, {"user", e.User}, {"blocked", e.Blocked}} {
		if f.v != "" {
			b = append(b, `,"`...)
			b = append(b, f.name...)
			b = append(b, `":`...)
			b = appendJSONString(b, f.v)
		}
	}
	b = append(b, "}\n"...)
	*bp = b
	select {
	case l.queue <- bp:
	default:
		l.dropped.Add(1)
		*bp = b[:0]
		bufPool.Put(bp)
	}
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s for JSON; invalid UTF-8 becomes U+FFFD, so a
// hostile path cannot break the line.
func appendJSONString[T string | []byte](b []byte, s T) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
