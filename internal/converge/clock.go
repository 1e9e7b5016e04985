package converge

import (
	"context"
	"time"
)

// Clock is the time source of every wait (Poll, runwait). Tests and
// benchmarks use a simulated clock whose Sleep advances it at once (the
// emulator's ManualClock), so a wait of hours runs in milliseconds.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done (then it returns ctx.Err()).
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock.
type RealClock struct{}

// Now implements Clock.
func (RealClock) Now() time.Time { return time.Now() }

// Sleep implements Clock.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Or returns c, or the wall clock when c is nil (a Deps field left unset).
func Or(c Clock) Clock {
	if c == nil {
		return RealClock{}
	}
	return c
}
