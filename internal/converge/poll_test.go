package converge_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

var start = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func TestDoubling(t *testing.T) {
	p := converge.Doubling(250*time.Millisecond, 10*time.Second)
	var got []time.Duration
	for n := 1; n <= 8; n++ {
		got = append(got, p(n))
	}
	assert.Equal(t, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second,
		4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}, got)
	assert.Equal(t, []time.Duration{20 * time.Second, 10 * time.Second},
		[]time.Duration{converge.Doubling(20*time.Second, 10*time.Second)(1), converge.Doubling(20*time.Second, 10*time.Second)(2)},
		"a first pause above the cap is kept once")
}

func TestPoll(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name      string
		schedule  converge.Schedule
		doneAt    int   // the check that reports done (0: never)
		failAt    int   // the check that fails (0: never)
		cancelAt  int   // the sleep during which ctx is cancelled (0: never)
		wantErr   error // nil: done
		wantCheck int
		wantTimes []time.Duration // clock time of each check, from the start
	}{
		{
			name:     "done at once: no pause",
			schedule: converge.Schedule{Pause: converge.Doubling(time.Second, 10*time.Second), Timeout: time.Hour},
			doneAt:   1, wantCheck: 1, wantTimes: []time.Duration{0},
		},
		{
			name:     "schedule honoured",
			schedule: converge.Schedule{Pause: converge.Doubling(time.Second, 4*time.Second), Timeout: time.Hour},
			doneAt:   6, wantCheck: 6,
			wantTimes: []time.Duration{0, 1 * time.Second, 3 * time.Second, 7 * time.Second, 11 * time.Second, 15 * time.Second},
		},
		{
			name:     "timeout: the last pause is cut to the deadline",
			schedule: converge.Schedule{Pause: func(int) time.Duration { return 4 * time.Second }, Timeout: 10 * time.Second},
			wantErr:  converge.ErrTimeout, wantCheck: 4,
			wantTimes: []time.Duration{0, 4 * time.Second, 8 * time.Second, 10 * time.Second},
		},
		{
			name:     "no timeout: only ctx bounds the wait (hours in no time)",
			schedule: converge.Schedule{Pause: func(int) time.Duration { return time.Hour }},
			doneAt:   25, wantCheck: 25,
		},
		{
			name:     "check fails: its error, no more checks",
			schedule: converge.Schedule{Pause: func(int) time.Duration { return time.Second }, Timeout: time.Minute},
			failAt:   3, wantErr: boom, wantCheck: 3,
		},
		{
			name:     "ctx cancelled during a pause",
			schedule: converge.Schedule{Pause: func(int) time.Duration { return time.Second }, Timeout: time.Minute},
			cancelAt: 2, wantErr: context.Canceled, wantCheck: 2,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := emulator.NewManualClock(start)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			clock.OnSleep = func(n int64) {
				if int(n) == c.cancelAt {
					cancel()
				}
			}
			checks := 0
			var times []time.Duration
			err := converge.Poll(ctx, clock, c.schedule, func(context.Context) (bool, error) {
				checks++
				times = append(times, clock.Now().Sub(start))
				if checks > 1000 {
					return false, errors.New("runaway poll")
				}
				if checks == c.failAt {
					return false, boom
				}
				return checks == c.doneAt, nil
			})
			if c.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, c.wantErr)
			}
			assert.Equal(t, c.wantCheck, checks, "checks")
			if c.wantTimes != nil {
				assert.Equal(t, c.wantTimes, times, "when the checks ran")
			}
		})
	}
}

func TestRealClockSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, converge.RealClock{}.Sleep(ctx, time.Hour), context.Canceled)
	assert.NoError(t, converge.RealClock{}.Sleep(context.Background(), time.Millisecond))
	assert.Equal(t, converge.RealClock{}, converge.Or(nil))
}
