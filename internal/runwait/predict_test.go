package runwait_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/runwait"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// tenMinutes is a history of ten runs that took 9m40s to 10m20s.
func tenMinutes() runwait.History {
	var h runwait.History
	for _, s := range []int{600, 580, 612, 620, 595, 603, 588, 610, 599, 605} {
		h.Durations = append(h.Durations, time.Duration(s)*time.Second)
	}
	return h
}

func TestPredictionWindow(t *testing.T) {
	p, ok := tenMinutes().Predict()
	require.True(t, ok)
	assert.Equal(t, 10, p.Runs)
	assert.Equal(t, 580*time.Second, p.Shortest)
	assert.Equal(t, 620*time.Second, p.Longest)
	assert.Equal(t, 601500*time.Millisecond, p.Median, "mean of the two middle runs")
	// The margin is the largest of 2 s, 2 % of the median (12.03 s) and a
	// quarter of the 40 s spread (10 s).
	assert.Equal(t, 580*time.Second-12030*time.Millisecond, p.From)
	assert.Equal(t, 620*time.Second+12030*time.Millisecond, p.To)
	assert.Equal(t, time.Second, p.Dense, "a 64 s window is polled every second")

	// A wide history: 90 polls spread over the window, never sparser than
	// Adaptive's long interval.
	wide, _ := runwait.History{Durations: []time.Duration{5 * time.Minute, 8 * time.Minute}}.Predict()
	assert.Equal(t, 5*time.Minute-45*time.Second, wide.From, "margin: a quarter of the 3 min spread")
	assert.Equal(t, 3*time.Second, wide.Dense, "90 polls over 4.5 min")
	huge, _ := runwait.History{Durations: []time.Duration{time.Minute, 5 * time.Hour}}.Predict()
	assert.Equal(t, runwait.LongInterval, huge.Dense)

	_, ok = runwait.History{}.Predict()
	assert.False(t, ok, "no history, no prediction")
}

func TestPredictiveSchedule(t *testing.T) {
	for name, h := range map[string]runwait.History{
		"10 min":   tenMinutes(),
		"one run":  {Durations: []time.Duration{45 * time.Second}},
		"instant":  {Durations: []time.Duration{3 * time.Second, 4 * time.Second}},
		"wide":     {Durations: []time.Duration{5 * time.Minute, 20 * time.Minute}},
		"two hour": {Durations: []time.Duration{2 * time.Hour}},
	} {
		t.Run(name, func(t *testing.T) {
			p, ok := h.Predict()
			require.True(t, ok)
			// Plain checks: testify is too slow for 200,000 ages.
			check := func(ok bool, age time.Duration, what string) {
				if !ok {
					t.Fatalf("at %s: interval %s: %s", age, p.Interval(age), what)
				}
			}
			prevBefore := time.Duration(0)
			for age := time.Duration(0); age < 6*time.Hour; age += 100 * time.Millisecond {
				iv := p.Interval(age)
				check(iv >= 250*time.Millisecond, age, "never denser than the first interval")
				check(iv <= runwait.MaxSparse, age, "never sparser than MaxSparse")
				switch {
				case age < p.From:
					check(iv <= max(250*time.Millisecond, age/4), age, "an early failure is noticed within a quarter of the run's age")
					check(age+iv <= p.From+p.Dense, age, "no pause jumps over the window's start")
					check(iv <= max(p.Dense, (p.From-age)/4), age, "a run ending x before the window is noticed within about x/4")
					// Once past the start-up ramp, never sparser closer to
					// the window.
					if age > 2*time.Minute && age < p.From-2*time.Minute {
						check(iv <= prevBefore, age, "denser towards the window")
					}
					prevBefore = iv
				case age < p.To:
					check(iv == p.Dense, age, "dense inside the window")
				default:
					check(iv <= runwait.LongInterval, age, "after the window at most Adaptive's long interval")
					check(iv <= max(p.Dense, (age-p.To)/4), age, "after the window, denser the closer to it")
				}
			}
		})
	}
	// Denser near the expected end than long before it, and than Adaptive
	// there.
	p, _ := tenMinutes().Predict()
	assert.Equal(t, time.Second, p.Interval(600*time.Second))
	assert.Equal(t, runwait.MaxSparse, p.Interval(5*time.Minute))
	assert.Less(t, p.Interval(600*time.Second), runwait.Adaptive(600*time.Second))
}

// pastRuns runs each duration to its end, one after the other: runs of the
// job when jobID is set, else one-time runs named name. It returns the
// start-to-end duration the emulator reports for each.
func (f fixture) pastRuns(t *testing.T, jobID int64, name string, durations ...time.Duration) []time.Duration {
	t.Helper()
	ctx := context.Background()
	var took []time.Duration
	for _, d := range durations {
		f.ws.OnNotebook("/train", emulator.Behaviour{Duration: d})
		var id int64
		if jobID != 0 {
			w, err := f.jobs.RunNow(ctx, jobs.RunNow{JobId: jobID})
			require.NoError(t, err)
			id = w.RunId
		} else {
			w, err := f.jobs.Submit(ctx, jobs.SubmitRun{RunName: name, Tasks: []jobs.SubmitTask{trainTask}})
			require.NoError(t, err)
			id = w.RunId
		}
		f.clock.Advance(d + time.Minute)
		run, err := f.jobs.GetRun(ctx, jobs.GetRunRequest{RunId: id})
		require.NoError(t, err)
		require.True(t, runwait.Succeeded(run))
		took = append(took, time.Duration(run.EndTime-run.StartTime)*time.Millisecond)
	}
	return took
}

var trainTask = jobs.SubmitTask{TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: "/train"}}

func (f fixture) job(t *testing.T) int64 {
	t.Helper()
	j, err := f.jobs.Create(context.Background(), jobs.CreateJob{Name: "train", Tasks: []jobs.Task{{TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: "/train"}}}})
	require.NoError(t, err)
	return j.JobId
}

func newest(took []time.Duration, n int) []time.Duration {
	var out []time.Duration
	for i := len(took) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, took[i])
	}
	return out
}

func TestLookUpJobRuns(t *testing.T) {
	f := setup(t, emulator.Options{})
	ctx := context.Background()
	job, other := f.job(t), f.job(t)
	var took []time.Duration
	for i := range 12 {
		took = append(took, f.pastRuns(t, job, "", time.Duration(500+10*i)*time.Second)...)
	}
	f.pastRuns(t, other, "", time.Minute)
	// A failed run, a run repaired to success (its end_time is the
	// repair's) and a run still going are not history.
	f.ws.OnNotebook("/train", emulator.Behaviour{Duration: time.Second, Outcome: emulator.Failed})
	_, err := f.jobs.RunNow(ctx, jobs.RunNow{JobId: job})
	require.NoError(t, err)
	f.clock.Advance(time.Minute)
	repaired, err := f.jobs.RunNow(ctx, jobs.RunNow{JobId: job})
	require.NoError(t, err)
	f.clock.Advance(time.Minute)
	f.ws.OnNotebook("/train", emulator.Behaviour{Duration: time.Second})
	_, err = f.jobs.RepairRun(ctx, jobs.RepairRun{RunId: repaired.RunId, RerunAllFailedTasks: true})
	require.NoError(t, err)
	f.clock.Advance(time.Minute)
	got, err := f.jobs.GetRun(ctx, jobs.GetRunRequest{RunId: repaired.RunId})
	require.NoError(t, err)
	require.True(t, runwait.Succeeded(got))
	f.ws.OnNotebook("/train", emulator.Behaviour{Duration: time.Hour})
	_, err = f.jobs.RunNow(ctx, jobs.RunNow{JobId: job})
	require.NoError(t, err)
	f.clock.Advance(time.Minute)

	f.ws.ResetRequests()
	h := runwait.LookUp(ctx, f.jobs, runwait.Like{JobID: job})
	require.NoError(t, h.Err)
	assert.Equal(t, newest(took, runwait.HistoryRuns), h.Durations, "the ten newest successful runs of the job, newest first")
	lists := f.ws.RequestsTo("GET", "/api/2.2/jobs/runs/list")
	require.Len(t, lists, 1, "a job's history is one request")
	assert.Equal(t, "true", lists[0].Query.Get("completed_only"))
	assert.Equal(t, "25", lists[0].Query.Get("limit"))
	assert.Contains(t, h.String(), "Earlier runs took 8m47s–10m17s (10 successful runs of job")

	none := runwait.LookUp(ctx, f.jobs, runwait.Like{JobID: f.job(t)})
	require.NoError(t, none.Err)
	assert.Empty(t, none.Durations)
	assert.Contains(t, none.String(), "No earlier successful run of job")
}

func TestLookUpOneTimeRunsByNameAndCode(t *testing.T) {
	f := setup(t, emulator.Options{})
	ctx := context.Background()
	a := f.pastRuns(t, 0, "churn 20261125.1", 7*time.Minute)
	b := f.pastRuns(t, 0, "churn 20261125.2", 8*time.Minute)
	f.pastRuns(t, 0, "other 1", time.Minute)
	// Same name, other code: not like it.
	_, err := f.jobs.Submit(ctx, jobs.SubmitRun{RunName: "churn 20261125.3", Tasks: []jobs.SubmitTask{{TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: "/score"}}}})
	require.NoError(t, err)
	f.clock.Advance(time.Hour)
	// A run of a saved job with the same name is not a one-time run.
	f.pastRuns(t, f.job(t), "", 2*time.Minute)

	code := runwait.SubmitCode([]jobs.SubmitTask{trainTask})
	h := runwait.LookUp(ctx, f.jobs, runwait.Like{RunName: "churn ", NamePrefix: true, Code: code})
	require.NoError(t, h.Err)
	assert.Equal(t, []time.Duration{b[0], a[0]}, h.Durations)
	lists := f.ws.RequestsTo("GET", "/api/2.2/jobs/runs/list")
	require.NotEmpty(t, lists)
	assert.Equal(t, "SUBMIT_RUN", lists[0].Query.Get("run_type"))
	assert.Equal(t, "true", lists[0].Query.Get("expand_tasks"), "the code is compared task by task")
	assert.Contains(t, h.String(), `one-time runs named "churn "…`)

	exact := runwait.LookUp(ctx, f.jobs, runwait.Like{RunName: "churn 20261125.1"})
	assert.Equal(t, a, exact.Durations)
	other := runwait.LookUp(ctx, f.jobs, runwait.Like{RunName: "churn ", NamePrefix: true, Code: map[string]string{"train": runwait.TaskCode(nil, &jobs.SparkPythonTask{PythonFile: "/train.py"}, nil)}})
	assert.Empty(t, other.Durations)
}

func TestLookUpOneTimeRunsIsBounded(t *testing.T) {
	f := setup(t, emulator.Options{RunPending: time.Nanosecond, RunTerminating: time.Nanosecond})
	f.pastRuns(t, 0, "mine", time.Minute)
	for range 120 {
		f.pastRuns(t, 0, "someone else's", time.Second)
	}
	f.ws.ResetRequests()
	h := runwait.LookUp(context.Background(), f.jobs, runwait.Like{RunName: "mine"})
	require.NoError(t, h.Err)
	assert.Empty(t, h.Durations, "beyond the 100 newest one-time runs")
	assert.Len(t, f.ws.RequestsTo("GET", "/api/2.2/jobs/runs/list"), 4)
}

func TestLookUpFailureFallsBackToAdaptive(t *testing.T) {
	f := setup(t, emulator.Options{})
	job := f.job(t)
	f.pastRuns(t, job, "", 10*time.Minute)
	f.ws.SetFaults(emulator.FaultPlan{Seed: 1, Rules: []emulator.FaultRule{
		{Prefix: "/api/2.2/jobs/runs/list", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault400}},
	}})
	h := runwait.LookUp(context.Background(), f.jobs, runwait.Like{JobID: job})
	require.ErrorIs(t, h.Err, apierr.ErrInvalidParameterValue)
	assert.Empty(t, h.Durations)
	_, ok := h.Predict()
	assert.False(t, ok)
	assert.Contains(t, h.String(), "No prediction of the run's end (listing the earlier runs of job")
	assert.Contains(t, h.String(), "polling on the adaptive schedule")
}

// waitLogged waits for run id with w, returning the waiter's log.
func waitLogged(t *testing.T, w runwait.Waiter, id int64) (*jobs.Run, string) {
	t.Helper()
	var buf strings.Builder
	w.Log = agent.NewLog(&buf, agent.LogOptions{})
	run, err := w.Wait(context.Background(), id)
	require.NoError(t, err)
	require.True(t, runwait.Succeeded(run))
	return run, buf.String()
}

func TestWaitWithHistoryPollsAroundTheExpectedEnd(t *testing.T) {
	f := setup(t, emulator.Options{})
	ctx := context.Background()
	job := f.job(t)
	f.pastRuns(t, job, "", 9*time.Minute+50*time.Second, 10*time.Minute, 10*time.Minute+10*time.Second, 9*time.Minute+55*time.Second)

	f.ws.OnNotebook("/train", emulator.Behaviour{Duration: 10*time.Minute + 3300*time.Millisecond})
	started, err := f.jobs.RunNow(ctx, jobs.RunNow{JobId: job})
	require.NoError(t, err)
	f.ws.ResetRequests()
	h := runwait.LookUp(ctx, f.jobs, runwait.Like{JobID: job})
	run, log := waitLogged(t, runwait.Waiter{Runs: f.jobs, Clock: f.clock, History: h}, started.RunId)
	lag := f.clock.Now().Sub(endOf(t, run))
	assert.LessOrEqual(t, lag, time.Second, "detected within the dense interval")
	gets := len(f.ws.RequestsTo("GET", "/api/2.2/jobs/runs/get"))
	assert.Contains(t, log, "Earlier runs took 9m57s–10m17s (4 successful runs of job")

	// The same run without history: Adaptive, and the log says why.
	f.ws.OnNotebook("/train", emulator.Behaviour{Duration: 10*time.Minute + 3300*time.Millisecond})
	again, err := f.jobs.RunNow(ctx, jobs.RunNow{JobId: job})
	require.NoError(t, err)
	f.ws.ResetRequests()
	none := runwait.LookUp(ctx, f.jobs, runwait.Like{JobID: f.job(t)})
	run, log = waitLogged(t, runwait.Waiter{Runs: f.jobs, Clock: f.clock, History: none}, again.RunId)
	adaptiveGets := len(f.ws.RequestsTo("GET", "/api/2.2/jobs/runs/get"))
	assert.Less(t, float64(gets), 0.7*float64(adaptiveGets), "sparse early: %d requests with history, %d without", gets, adaptiveGets)
	assert.LessOrEqual(t, f.clock.Now().Sub(endOf(t, run)), runwait.LongInterval)
	assert.Contains(t, log, "No earlier successful run of job")
}

func TestWaitWithoutHistoryIsAdaptive(t *testing.T) {
	gets := map[string]int{}
	for _, name := range []string{"zero History", "explicit Adaptive"} {
		f := setup(t, emulator.Options{})
		f.ws.OnNotebook("/train", emulator.Behaviour{Duration: 7*time.Minute + 123*time.Millisecond})
		id := f.submit(t)
		f.ws.ResetRequests()
		w := runwait.Waiter{Runs: f.jobs, Clock: f.clock}
		if name == "explicit Adaptive" {
			w.Interval = runwait.Adaptive
		}
		_, log := waitLogged(t, w, id)
		assert.NotContains(t, log, "polling", "no lookup, nothing to say")
		gets[name] = len(f.ws.RequestsTo("GET", "/api/2.2/jobs/runs/get"))
	}
	assert.Equal(t, gets["explicit Adaptive"], gets["zero History"])
}

func TestWaitCountsATakenOverRunsAgeFromItsStart(t *testing.T) {
	// A run an earlier try of the step started 9 minutes ago; earlier runs
	// took about 10 minutes: the end is about a minute away, not ten.
	f := setup(t, emulator.Options{})
	job := f.job(t)
	f.pastRuns(t, job, "", 10*time.Minute, 10*time.Minute+5*time.Second)
	f.ws.OnNotebook("/train", emulator.Behaviour{Duration: 10 * time.Minute})
	started, err := f.jobs.RunNow(context.Background(), jobs.RunNow{JobId: job})
	require.NoError(t, err)
	f.clock.Advance(9 * time.Minute)
	f.ws.ResetRequests()
	h := runwait.LookUp(context.Background(), f.jobs, runwait.Like{JobID: job})
	run, _ := waitLogged(t, runwait.Waiter{Runs: f.jobs, Clock: f.clock, History: h}, started.RunId)
	assert.LessOrEqual(t, f.clock.Now().Sub(endOf(t, run)), time.Second)
	assert.Less(t, len(f.ws.RequestsTo("GET", "/api/2.2/jobs/runs/get")), 40)
}

// skewed is the agent's clock, off the workspace's by skew.
type skewed struct {
	*emulator.ManualClock
	skew time.Duration
}

func (c skewed) Now() time.Time { return c.ManualClock.Now().Add(c.skew) }

func TestWaitPredictionIgnoresClockSkewForAFreshRun(t *testing.T) {
	// The agent's clock is 40 s ahead of or behind the workspace's: a run
	// that just started is still predicted from the wait's start, not from
	// its start_time read on the agent's clock.
	for _, skew := range []time.Duration{40 * time.Second, -40 * time.Second} {
		f := setup(t, emulator.Options{})
		job := f.job(t)
		f.pastRuns(t, job, "", 10*time.Minute, 10*time.Minute)
		f.ws.OnNotebook("/train", emulator.Behaviour{Duration: 10 * time.Minute})
		started, err := f.jobs.RunNow(context.Background(), jobs.RunNow{JobId: job})
		require.NoError(t, err)
		h := runwait.LookUp(context.Background(), f.jobs, runwait.Like{JobID: job})
		run, _ := waitLogged(t, runwait.Waiter{Runs: f.jobs, Clock: skewed{f.clock, skew}, History: h}, started.RunId)
		assert.LessOrEqual(t, f.clock.Now().Sub(endOf(t, run)), time.Second, "skew %s", skew)
	}
}
