package runwait_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/runwait"
	"github.com/brickferry/brickferry/internal/testworld"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

func TestMain(m *testing.M) { testworld.Main(m) }

type fixture struct {
	ws    *emulator.Workspace
	clock *emulator.ManualClock
	jobs  *jobs.JobsAPI
}

func setup(t *testing.T, opts emulator.Options) fixture {
	t.Helper()
	clock := emulator.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	opts.Clock = clock
	ws := emulator.Start(t, opts)
	return fixture{ws: ws, clock: clock, jobs: jobs.NewJobs(ws.Client(t))}
}

func (f fixture) submit(t *testing.T, tasks ...jobs.SubmitTask) int64 {
	t.Helper()
	if len(tasks) == 0 {
		tasks = []jobs.SubmitTask{{TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: "/train"}}}
	}
	w, err := f.jobs.Submit(context.Background(), jobs.SubmitRun{RunName: "t", Tasks: tasks})
	require.NoError(t, err)
	return w.RunId
}

// endOf is when the emulator says the run reached its final state.
func endOf(t *testing.T, run *jobs.Run) time.Time {
	t.Helper()
	require.NotZero(t, run.EndTime)
	return time.UnixMilli(run.EndTime)
}

func TestAdaptiveSchedule(t *testing.T) {
	// Under a minute the lag is at most 1 s (goal: detection under 2 s).
	for e := time.Duration(0); e < time.Minute; e += 100 * time.Millisecond {
		require.LessOrEqual(t, runwait.Adaptive(e), time.Second, "at %s", e)
	}
	// The interval never shrinks as the run gets older.
	prev := time.Duration(0)
	for e := time.Duration(0); e < time.Hour; e += 250 * time.Millisecond {
		iv := runwait.Adaptive(e)
		require.GreaterOrEqual(t, iv, prev, "at %s", e)
		require.LessOrEqual(t, iv, 9*time.Second, "at %s", e) // detection within 9 s
		prev = iv
	}
	// After two minutes: 6.7 requests a minute (every 9 s).
	assert.Equal(t, 9*time.Second, runwait.Adaptive(2*time.Minute))
	assert.Equal(t, 9*time.Second, runwait.Adaptive(5*time.Hour))
}

func TestWaitDetectsEndQuickly(t *testing.T) {
	for _, tc := range []struct {
		name     string
		duration time.Duration
		maxLag   time.Duration
	}{
		{"instant", time.Millisecond, time.Second}, // pending 5 s + terminating 2 s
		{"30s", 30 * time.Second, time.Second},
		{"10min", 10 * time.Minute, runwait.LongInterval},
		{"10min+3.3s", 10*time.Minute + 3300*time.Millisecond, runwait.LongInterval},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, emulator.Options{})
			f.ws.OnNotebook("/train", emulator.Behaviour{Duration: tc.duration})
			id := f.submit(t)
			f.ws.ResetRequests()
			w := runwait.Waiter{Runs: f.jobs, Clock: f.clock}
			run, err := w.Wait(context.Background(), id)
			require.NoError(t, err)
			require.True(t, runwait.Succeeded(run))
			lag := f.clock.Now().Sub(endOf(t, run))
			assert.GreaterOrEqual(t, lag, time.Duration(0))
			assert.LessOrEqual(t, lag, tc.maxLag)
			assert.Zero(t, f.ws.Writes(), "waiting only reads")
		})
	}
}

func TestWaitLongRunCostsAtMostSevenRequestsAMinute(t *testing.T) {
	f := setup(t, emulator.Options{})
	f.ws.OnNotebook("/train", emulator.Behaviour{Duration: 30 * time.Minute})
	id := f.submit(t)
	start := f.clock.Now()
	f.ws.ResetRequests()
	_, err := runwait.Waiter{Runs: f.jobs, Clock: f.clock}.Wait(context.Background(), id)
	require.NoError(t, err)
	var late int
	for _, r := range f.ws.Requests() {
		if r.Time.Sub(start) >= 2*time.Minute && r.Time.Before(start.Add(30*time.Minute)) {
			late++
		}
	}
	perMin := float64(late) / 28
	assert.LessOrEqual(t, perMin, 6.7) // one every 9 s, both ends of the 28 minutes counted
	assert.GreaterOrEqual(t, perMin, 6.2)
}

func TestWaitReportsStateChangesOfRunAndTasks(t *testing.T) {
	f := setup(t, emulator.Options{})
	f.ws.OnTask("prep", emulator.Behaviour{Duration: 20 * time.Second})
	f.ws.OnTask("train", emulator.Behaviour{Duration: 40 * time.Second, Outcome: emulator.Failed, Error: "boom"})
	id := f.submit(t,
		jobs.SubmitTask{TaskKey: "prep", NotebookTask: &jobs.NotebookTask{NotebookPath: "/prep"}},
		jobs.SubmitTask{TaskKey: "train", DependsOn: []jobs.TaskDependency{{TaskKey: "prep"}}, NotebookTask: &jobs.NotebookTask{NotebookPath: "/train"}},
	)
	var changes []string
	w := runwait.Waiter{Runs: f.jobs, Clock: f.clock, OnChange: func(c runwait.Change) {
		who := "run"
		if c.Task != nil {
			who = c.Task.TaskKey
		}
		changes = append(changes, who+" "+c.To.String())
	}}
	run, err := w.Wait(context.Background(), id)
	require.NoError(t, err)
	assert.False(t, runwait.Succeeded(run))
	assert.Equal(t, jobs.RunResultStateFailed, run.State.ResultState)
	assert.Equal(t, []string{
		"run PENDING", "prep PENDING", "train BLOCKED",
		"run RUNNING", "prep RUNNING", "prep TERMINATING",
		"prep TERMINATED/SUCCESS", "train PENDING", "train RUNNING",
		"run TERMINATING", "train TERMINATING",
		"run TERMINATED/FAILED", "train TERMINATED/FAILED",
	}, changes)
}

func TestWaitTimeoutCancelsTheRemoteRun(t *testing.T) {
	f := setup(t, emulator.Options{})
	f.ws.OnNotebook("/train", emulator.Behaviour{Duration: time.Hour})
	id := f.submit(t)
	run, err := runwait.Waiter{Runs: f.jobs, Clock: f.clock, Timeout: 5 * time.Minute}.Wait(context.Background(), id)
	var te *runwait.TimeoutError
	require.ErrorAs(t, err, &te)
	assert.True(t, te.Cancelled)
	assert.Equal(t, id, te.RunID)
	assert.NotEmpty(t, te.RunURL)
	assert.Contains(t, err.Error(), te.RunURL)
	require.NotNil(t, run)
	cancels := f.ws.RequestsTo("POST", "/api/2.2/jobs/runs/cancel")
	require.Len(t, cancels, 1)
	assert.Equal(t, id, cancels[0].Body.(*jobs.CancelRun).RunId)
	assert.WithinDuration(t, time.UnixMilli(run.StartTime), f.clock.Now().Add(-5*time.Minute), time.Second)
	// The remote run really ends CANCELED.
	f.clock.Advance(time.Minute)
	got, err := f.jobs.GetRun(context.Background(), jobs.GetRunRequest{RunId: id})
	require.NoError(t, err)
	assert.Equal(t, jobs.RunResultStateCanceled, got.State.ResultState)
}

func TestWaitContextCancelCancelsTheRemoteRun(t *testing.T) {
	f := setup(t, emulator.Options{})
	f.ws.OnNotebook("/train", emulator.Behaviour{Duration: time.Hour})
	id := f.submit(t)
	ctx, cancel := context.WithCancel(context.Background())
	polls := 0
	clock := cancelAfter{f.clock, &polls, 3, cancel}
	_, err := runwait.Waiter{Runs: f.jobs, Clock: clock}.Wait(ctx, id)
	var ce *runwait.CanceledError
	require.ErrorAs(t, err, &ce)
	assert.True(t, errors.Is(err, context.Canceled))
	require.Len(t, f.ws.RequestsTo("POST", "/api/2.2/jobs/runs/cancel"), 1, "runs/cancel sent once when the pipeline cancels the wait: the Databricks run must not keep running")
	assert.True(t, ce.Cancelled)
}

// cancelAfter cancels the context on the n-th sleep.
type cancelAfter struct {
	*emulator.ManualClock
	n      *int
	at     int
	cancel context.CancelFunc
}

func (c cancelAfter) Sleep(ctx context.Context, d time.Duration) error {
	*c.n++
	if *c.n == c.at {
		c.cancel()
	}
	return c.ManualClock.Sleep(ctx, d)
}

func TestWaitRidesOutTransientErrors(t *testing.T) {
	f := setup(t, emulator.Options{})
	f.ws.OnNotebook("/train", emulator.Behaviour{Duration: 10 * time.Second})
	id := f.submit(t)
	f.ws.SetFaults(emulator.FaultPlan{Seed: 1, Rules: []emulator.FaultRule{
		{Prefix: "/api/2.2/jobs/runs/get", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault500, emulator.FaultDrop}, Limit: 4},
	}})
	run, err := runwait.Waiter{Runs: f.jobs, Clock: f.clock}.Wait(context.Background(), id)
	require.NoError(t, err)
	assert.True(t, runwait.Succeeded(run))
}

func TestWaitGivesUpOnPersistentOrFinalErrors(t *testing.T) {
	f := setup(t, emulator.Options{})
	_, err := runwait.Waiter{Runs: f.jobs, Clock: f.clock}.Wait(context.Background(), 424242)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "424242")
	assert.Len(t, f.ws.RequestsTo("GET", "/api/2.2/jobs/runs/get"), 1, "a missing run is not retried")

	f.ws.OnNotebook("/train", emulator.Behaviour{Duration: time.Hour})
	id := f.submit(t)
	f.ws.SetFaults(emulator.FaultPlan{Seed: 1, Rules: []emulator.FaultRule{
		{Prefix: "/api/2.2/jobs/runs/get", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault500}},
	}})
	_, err = runwait.Waiter{Runs: f.jobs, Clock: f.clock, MaxErrors: 3}.Wait(context.Background(), id)
	require.Error(t, err)
}

func TestRealClockSleepStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		assert.ErrorIs(t, converge.RealClock{}.Sleep(ctx, time.Hour), context.Canceled)
	}()
	cancel()
	wg.Wait()
	assert.NoError(t, converge.RealClock{}.Sleep(context.Background(), time.Millisecond))
}

// slowRuns is the jobs API whose runs/get takes took of simulated time.
type slowRuns struct {
	*jobs.JobsAPI
	clock *emulator.ManualClock
	took  time.Duration
}

func (s slowRuns) GetRun(ctx context.Context, req jobs.GetRunRequest) (*jobs.Run, error) {
	s.clock.Advance(s.took)
	return s.JobsAPI.GetRun(ctx, req)
}

func TestWaitSendsRequestsOnTheSchedule(t *testing.T) {
	for _, tc := range []struct {
		took, every time.Duration
	}{
		{300 * time.Millisecond, 2 * time.Second},  // the request's time is part of the pause
		{1500 * time.Millisecond, 2 * time.Second}, // but the pause is at least half the interval
		{0, 2 * time.Second},
	} {
		f := setup(t, emulator.Options{})
		f.ws.OnNotebook("/train", emulator.Behaviour{Duration: time.Minute})
		id := f.submit(t)
		f.ws.ResetRequests()
		w := runwait.Waiter{Runs: slowRuns{f.jobs, f.clock, tc.took}, Clock: f.clock, Interval: func(time.Duration) time.Duration { return tc.every }}
		_, err := w.Wait(context.Background(), id)
		require.NoError(t, err)
		gets := f.ws.RequestsTo("GET", "/api/2.2/jobs/runs/get")
		require.Greater(t, len(gets), 10)
		want := max(tc.every, tc.took+tc.every/2)
		for i := 1; i < len(gets); i++ {
			require.Equal(t, want, gets[i].Time.Sub(gets[i-1].Time), "request %d with requests taking %s", i, tc.took)
		}
	}
}
