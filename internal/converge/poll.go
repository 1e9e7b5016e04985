package converge

import (
	"context"
	"errors"
	"time"
)

// ErrTimeout is what Poll returns when its Schedule's Timeout ran out before
// check reported done.
var ErrTimeout = errors.New("timed out")

// Schedule says when Poll checks again and for how long.
type Schedule struct {
	// Pause is the wait after check number n (1 for the first) before
	// the next one.
	Pause func(n int) time.Duration
	// Timeout bounds the wait on the clock (0: only ctx bounds it). The last
	// pause is shortened so that the last check falls on the deadline.
	Timeout time.Duration
}

// Doubling is a Pause that is first after the first check and then
// doubles, up to most: the schedule of a model version registering (seconds
// to minutes).
func Doubling(first, most time.Duration) func(n int) time.Duration {
	return func(n int) time.Duration {
		d := first
		for i := 1; i < n; i++ {
			if d = 2 * d; d >= most {
				return most
			}
		}
		return d
	}
}

// Poll calls check until it reports done or fails, pausing on clock as
// schedule says in between. It returns nil when check reported done,
// check's error as it is, ErrTimeout when the schedule's Timeout ran out
// (after a check that was not done), or ctx's error when ctx was done during
// a pause. check sees ctx; a check that wants to tell a cancelled pipeline
// from a failed request looks at ctx.Err() itself.
func Poll(ctx context.Context, clock Clock, schedule Schedule, check func(context.Context) (done bool, err error)) error {
	start := clock.Now()
	for n := 1; ; n++ {
		done, err := check(ctx)
		if err != nil || done {
			return err
		}
		pause := schedule.Pause(n)
		if schedule.Timeout > 0 {
			left := schedule.Timeout - clock.Now().Sub(start)
			if left <= 0 {
				return ErrTimeout
			}
			pause = min(pause, left)
		}
		if err := clock.Sleep(ctx, pause); err != nil {
			return err
		}
	}
}
