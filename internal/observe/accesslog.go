// Package observe holds gatehouse's access log (and, later, metrics and traces).
package observe

import (
	"bufio"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// AccessLog writes one line per request from a goroutine of its own:
// requests only format into a pooled buffer and hand it over, never wait on
// the disk, and lines are dropped (and counted) when the queue is full.
type AccessLog struct {
	path    string // "" for stderr/stdout
	format  *Format
	out     io.Writer
	closer  io.Closer
	queue   chan *[]byte
	reopen  chan chan error
	done    chan struct{}
	dropped atomic.Int64
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// OpenAccessLog opens output: "stderr", "stdout" or a file path (appended
// to), writing lines in format f.
func OpenAccessLog(output string, f *Format) (*AccessLog, error) {
	l := &AccessLog{format: f, queue: make(chan *[]byte, 8192), reopen: make(chan chan error), done: make(chan struct{})}
	switch output {
	case "", "stderr":
		l.out = os.Stderr
	case "stdout":
		l.out = os.Stdout
	default:
		f, err := openLogFile(output)
		if err != nil {
			return nil, err
		}
		l.path, l.out, l.closer = output, f, f
	}
	go l.run()
	return l, nil
}

func openLogFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}

// Reopen closes the log file and opens it again by name, after logrotate
// has moved it away (SIGUSR1). Lines queued meanwhile wait, none is lost.
// If the file cannot be opened, the old one is kept and the error returned.
func (l *AccessLog) Reopen() error {
	if l.path == "" {
		return nil
	}
	ack := make(chan error)
	select {
	case l.reopen <- ack:
		return <-ack
	case <-l.done:
		return nil
	}
}

// Dropped is how many lines were lost to a full queue.
func (l *AccessLog) Dropped() int64 { return l.dropped.Load() }

func (l *AccessLog) run() {
	defer close(l.done)
	bw := bufio.NewWriterSize(l.out, 64<<10)
	for {
		select {
		case b, ok := <-l.queue:
			if !ok {
				bw.Flush()
				return
			}
			bw.Write(*b)
			*b = (*b)[:0]
			bufPool.Put(b)
			if len(l.queue) == 0 {
				bw.Flush()
			}
		case ack := <-l.reopen:
			bw.Flush()
			f, err := openLogFile(l.path)
			if err == nil {
				l.closer.Close()
				l.out, l.closer = f, f
				bw.Reset(f)
			}
			ack <- err
		}
	}
}

// Close writes what is queued and closes the output.
func (l *AccessLog) Close() {
	close(l.queue)
	<-l.done
	if l.closer != nil {
		l.closer.Close()
	}
}

// Log formats one entry and queues it.
func (l *AccessLog) Log(e *Entry) {
	bp := bufPool.Get().(*[]byte)
	b := l.format.Append((*bp)[:0], e)
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
