package upstream

import (
	"sync/atomic"
	"time"
)

// Retry says which failed attempts are tried again on another target.
type Retry struct {
	// Attempts is how many times a request may be retried after its first try.
	Attempts  int
	OnConnect bool // the connection could not be made (always safe)
	OnTimeout bool // no response head within the timeout
	OnReset   bool // the connection broke before a response head
	statuses  [10]uint64
	Budget    *Budget
}

// RetryOnStatus adds a response status that is retried.
func (r *Retry) RetryOnStatus(code int) {
	if code >= 0 && code < 640 {
		r.statuses[code/64] |= 1 << (code % 64)
	}
}

// OnStatus reports whether a response with this status is retried.
func (r *Retry) OnStatus(code int) bool {
	return code >= 0 && code < 640 && r.statuses[code/64]&(1<<(code%64)) != 0
}

// Budget caps retries at a share of the requests (plus a small floor per
// second), so that retries cannot multiply the load on a failing pool — the
// retry budget of Finagle and Linkerd. Each request deposits ratio tokens;
// each retry withdraws one.
type Budget struct {
	ratioMilli int64 // tokens per request, in thousandths
	floor      int64 // retries per second always allowed
	maxMilli   int64

	tokens    atomic.Int64 // thousandths of a token
	floorSec  atomic.Int64
	floorUsed atomic.Int64
}

// NewBudget allows retries of up to ratio (0.2 = 20%) of requests, plus
// floor retries per second.
func NewBudget(ratio float64, floor int) *Budget {
	b := &Budget{ratioMilli: int64(ratio * 1000), floor: int64(floor)}
	// Tokens saved in quiet times may not pay for a burst bigger than this.
	b.maxMilli = max(100*1000, b.ratioMilli*1000)
	return b
}

// Deposit is called once per request.
func (b *Budget) Deposit() {
	if b.tokens.Add(b.ratioMilli) > b.maxMilli {
		b.tokens.Store(b.maxMilli)
	}
}

// Withdraw reports whether a retry may go ahead, and pays for it.
func (b *Budget) Withdraw() bool {
	for {
		t := b.tokens.Load()
		if t < 1000 {
			break
		}
		if b.tokens.CompareAndSwap(t, t-1000) {
			return true
		}
	}
	sec := time.Now().Unix()
	if b.floorSec.Load() != sec {
		b.floorSec.Store(sec)
		b.floorUsed.Store(0)
	}
	return b.floorUsed.Add(1) <= b.floor
}
