package emulator

import (
	"sync"
	"time"
)

// Clock is the emulator's source of time. Everything that takes time in a
// workspace (job runs, model registration, serving endpoint updates, OAuth
// token expiry) is derived from it when a request arrives, so with a
// [ManualClock] a ten-minute job run can be observed instantly.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// ManualClock is a Clock that only moves when told to. It is safe for
// concurrent use. The zero value is not usable; call [NewManualClock].
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a clock stopped at start.
func NewManualClock(start time.Time) *ManualClock {
	return &ManualClock{now: start}
}

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func millis(t time.Time) int64 { return t.UnixMilli() }
