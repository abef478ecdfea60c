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

// Budget caps retries so that they cannot multiply the load on a failing
// pool (the retry budget of Finagle and Linkerd): over the last 10 seconds,
// retries may be at most ratio times the requests, or minPerSecond × 10,
// whichever is larger. Counts live in one-second buckets of atomics.
type Budget struct {
	ratio     float64
	minPerSec int64
	buckets   [budgetWindow]budgetBucket
	now       func() time.Time
}

const budgetWindow = 10 // seconds

type budgetBucket struct {
	sec     atomic.Int64
	reqs    atomic.Int64
	retries atomic.Int64
}

// NewBudget allows retries of up to ratio (0.2 = 20%) of requests, and at
// least minPerSecond a second.
func NewBudget(ratio float64, minPerSecond int) *Budget {
	return &Budget{ratio: ratio, minPerSec: int64(minPerSecond), now: time.Now}
}

func (b *Budget) bucket(sec int64) *budgetBucket {
	bk := &b.buckets[sec%budgetWindow]
	if old := bk.sec.Load(); old != sec && bk.sec.CompareAndSwap(old, sec) {
		// A new second reuses the bucket of ten seconds ago. Counts added by
		// a racing request in between are lost: a budget need not be exact.
		bk.reqs.Store(0)
		bk.retries.Store(0)
	}
	return bk
}

// Deposit counts one request.
func (b *Budget) Deposit() {
	b.bucket(b.now().Unix()).reqs.Add(1)
}

// Withdraw reports whether a retry may go ahead, and counts it.
func (b *Budget) Withdraw() bool {
	sec := b.now().Unix()
	var reqs, retries int64
	for i := range b.buckets {
		bk := &b.buckets[i]
		if s := bk.sec.Load(); s > sec-budgetWindow && s <= sec {
			reqs += bk.reqs.Load()
			retries += bk.retries.Load()
		}
	}
	allowed := max(int64(b.ratio*float64(reqs)), b.minPerSec*budgetWindow)
	if retries >= allowed {
		return false
	}
	b.bucket(sec).retries.Add(1)
	return true
}
