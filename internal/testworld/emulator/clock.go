package emulator

import (
	"context"
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

// RealClock is the wall clock, the Clock of a workspace (and of the Azure
// stand-ins) when none is given.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// ManualClock is a Clock that only moves when told to. It is also the
// simulated clock of the product's waits (runwait and converge take a clock
// with Now and Sleep): sleeping advances it at once, so a wait of hours runs in
// milliseconds and every poll is counted. It is safe for concurrent use. The
// zero value is not usable; call [NewManualClock].
type ManualClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps int64
	// OnSleep, if set before the clock is shared, runs before each Sleep
	// with the number of that sleep (1 for the first).
	OnSleep func(n int64)
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

// Sleep advances the clock by d instead of waiting, unless ctx is done
// (then it returns ctx.Err() and the clock stays).
func (c *ManualClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps++
	n := c.sleeps
	c.mu.Unlock()
	if c.OnSleep != nil {
		c.OnSleep(n)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

// Sleeps is how many times Sleep was called.
func (c *ManualClock) Sleeps() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sleeps
}

func millis(t time.Time) int64 { return t.UnixMilli() }
