package upstream

import (
	"testing"
	"time"
)

func TestBudgetCapsRetriesAtRatio(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBudget(0.2, 0)
	b.now = func() time.Time { return now }
	for i := 0; i < 100; i++ {
		b.Deposit()
	}
	granted := 0
	for i := 0; i < 100; i++ {
		if b.Withdraw() {
			granted++
		}
	}
	if granted != 20 {
		t.Errorf("100 requests at 20%% allowed %d retries, want 20", granted)
	}
	// Ten seconds later the window has moved on: the old requests no longer pay.
	now = now.Add(11 * time.Second)
	if b.Withdraw() {
		t.Errorf("a retry was allowed with no request in the window")
	}
}

func TestBudgetFloor(t *testing.T) {
	now := time.Unix(2000, 0)
	b := NewBudget(0.2, 3)
	b.now = func() time.Time { return now }
	granted := 0
	for i := 0; i < 100; i++ {
		if b.Withdraw() {
			granted++
		}
	}
	if granted != 30 {
		t.Errorf("floor of 3/s over a 10 s window allowed %d retries, want 30", granted)
	}
}

func TestRetryOnStatus(t *testing.T) {
	var r Retry
	r.RetryOnStatus(503)
	if !r.OnStatus(503) || r.OnStatus(502) || r.OnStatus(-1) || r.OnStatus(700) {
		t.Errorf("status set wrong")
	}
}
