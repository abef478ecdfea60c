package h1

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

func TestPaceWindow(t *testing.T) {
	var p pace
	p.start(1000, time.Second) // 1000 bytes per 1 s of waiting
	began := time.Now().Add(-600 * time.Millisecond)
	if err := p.account(began, 500, nil); err != nil {
		t.Fatalf("half the quota in 0.6 s: %v", err)
	}
	// Buffered bytes count without waiting: the quota is met, a new window starts.
	if err := p.account(time.Time{}, 500, nil); err != nil || p.waited != 0 || p.got != 0 {
		t.Fatalf("quota met: %v, window %v/%d", err, p.waited, p.got)
	}
	if err := p.account(time.Now().Add(-1100*time.Millisecond), 10, nil); !errors.Is(err, ErrBodyTooSlow) {
		t.Fatalf("10 bytes in 1.1 s: %v, want ErrBodyTooSlow", err)
	}
	p.start(1000, time.Second)
	if err := p.account(time.Now().Add(-2*time.Second), 10, io.EOF); err != io.EOF {
		t.Fatalf("the body's end: %v, want io.EOF", err)
	}
	p.start(1000, time.Second)
	p.waited = time.Second - time.Microsecond
	if err := p.account(time.Now(), 0, os.ErrDeadlineExceeded); !errors.Is(err, ErrBodyTooSlow) {
		t.Fatalf("the window's deadline: %v, want ErrBodyTooSlow", err)
	}
}
