package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/runwait"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// waitCompareFigures compares the ways of waiting for a job run on the same
// runs: runwait's predictive schedule (the job's earlier runs looked up with
// runs/list), the predictive waiter on a job without history (which falls
// back to runwait.Adaptive), Adaptive alone, and fixed polls of 2 s (the
// reference pipeline's way) and 5 s.
//
// Simulated time: the emulator and the waiter share a manual clock that
// each of the waiter's sleeps advances, and requests take no time, so a
// 10-minute run takes milliseconds and the figures do not depend on the
// machine. Run lengths are drawn from a seeded normal distribution, with
// nanosecond resolution, so the ends fall anywhere relative to any poll
// period. Each measured run of a scenario gets its own history: the
// durations of 10 earlier runs of its job, drawn from the same
// distribution.
//
// For each scenario and schedule: runs/get and runs/list requests per run
// (the mean: total requests ÷ runs) and the detection lag (run end → the
// waiter returns), p50 and p95. Ratios are predictive ÷ fixed 2 s (or 5 s)
// on the same runs.
//
// waitWallClock then checks the simulation against real time.
func waitCompareFigures(env benchEnv) (map[string]float64, error) {
	out := map[string]float64{}
	for i, sc := range waitScenarios {
		rng := rand.New(rand.NewPCG(waitSeed, uint64(i)))
		reqs := map[string][]float64{}
		lags := map[string][]float64{}
		for range waitRuns {
			c := sc.draw(rng)
			for _, s := range waitSchedules {
				m, err := measureWait(emulator.NewManualClock(benchStart), c, s)
				if err != nil {
					return nil, fmt.Errorf("%s, %s: %w", sc.name, s.name, err)
				}
				reqs[s.name] = append(reqs[s.name], float64(m.requests))
				lags[s.name] = append(lags[s.name], ms(m.lag))
			}
		}
		for _, s := range waitSchedules {
			out[fmt.Sprintf("wait_requests_%s_%s", s.name, sc.name)] = mean(reqs[s.name])
			out[fmt.Sprintf("wait_detect_p50_ms_%s_%s", s.name, sc.name)] = percentile(lags[s.name], 50)
			out[fmt.Sprintf("wait_detect_p95_ms_%s_%s", s.name, sc.name)] = percentile(lags[s.name], 95)
		}
		for _, ref := range []string{"fixed2s", "fixed5s"} {
			for _, s := range []struct{ name, suffix string }{{"predictive", ""}, {"nohistory", "_nohistory"}} {
				out[fmt.Sprintf("wait_requests_ratio_vs_%s_%s%s", ref, sc.name, s.suffix)] =
					out[fmt.Sprintf("wait_requests_%s_%s", s.name, sc.name)] / out[fmt.Sprintf("wait_requests_%s_%s", ref, sc.name)]
				out[fmt.Sprintf("wait_detect_p50_ratio_vs_%s_%s%s", ref, sc.name, s.suffix)] =
					out[fmt.Sprintf("wait_detect_p50_ms_%s_%s", s.name, sc.name)] / out[fmt.Sprintf("wait_detect_p50_ms_%s_%s", ref, sc.name)]
			}
		}
		for _, s := range waitSchedules {
			fmt.Fprintf(env.Log, "wait %s (simulated, %d runs) %-10s requests %6.1f  detection p50 %6.0f ms  p95 %6.0f ms\n", sc.name, waitRuns, s.name,
				out[fmt.Sprintf("wait_requests_%s_%s", s.name, sc.name)], out[fmt.Sprintf("wait_detect_p50_ms_%s_%s", s.name, sc.name)], out[fmt.Sprintf("wait_detect_p95_ms_%s_%s", s.name, sc.name)])
		}
	}
	// The headline figure of issue 23 by its name.
	out["wait_detect_p95_ms_10min"] = out["wait_detect_p95_ms_predictive_10min"]
	wall, err := waitWallClock(env)
	if err != nil {
		return nil, err
	}
	for k, v := range wall {
		out[k] = v
	}
	return out, nil
}

// waitScenario is a run length: this run's and its job's earlier runs' are
// drawn from a normal distribution around base.
type waitScenario struct {
	name     string
	base, sd time.Duration
}

var waitScenarios = []waitScenario{
	{"30s", 30 * time.Second, 3 * time.Second},
	// A 10-minute job whose runs vary by 3 % (18 s).
	{"10min", 10 * time.Minute, 18 * time.Second},
	// The same with runs that vary by 15 % (90 s): a wide prediction.
	{"10min_wide", 10 * time.Minute, 90 * time.Second},
}

const (
	waitSeed       = 20261126
	waitRuns       = 100 // measured runs per scenario
	waitHistory    = 10  // earlier runs of each measured run's job
	waitMinRunTime = time.Second
)

var benchStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// waitCase is one measured run: its length and its job's earlier runs'.
type waitCase struct {
	d       time.Duration
	history []time.Duration
}

func (sc waitScenario) draw(rng *rand.Rand) waitCase {
	one := func() time.Duration {
		return max(waitMinRunTime, sc.base+time.Duration(rng.NormFloat64()*float64(sc.sd)))
	}
	var c waitCase
	for range waitHistory {
		c.history = append(c.history, one())
	}
	c.d = one()
	return c
}

// waitSchedule is a way of waiting. With interval nil the waiter looks up
// the job's earlier runs (runwait.LookUp) and predicts from them.
type waitSchedule struct {
	name     string
	interval func(time.Duration) time.Duration
	history  bool // the job has its earlier runs
}

var waitSchedules = []waitSchedule{
	{name: "predictive", history: true},
	{name: "nohistory"},
	{name: "adaptive", interval: runwait.Adaptive},
	{name: "fixed2s", interval: func(time.Duration) time.Duration { return 2 * time.Second }},
	{name: "fixed5s", interval: func(time.Duration) time.Duration { return 5 * time.Second }},
}

// waitClock is the waiter's clock, shared with the emulator, that can also
// jump forward: the earlier runs of a job end without being waited for.
type waitClock interface {
	converge.Clock
	Advance(d time.Duration)
}

// waitMeasure is what one wait did.
type waitMeasure struct {
	requests int           // runs/list and runs/get
	lag      time.Duration // run end → the waiter returned
	polls    []time.Duration
	// polls are when the runs/get requests arrived, from when run-now
	// answered.
}

// measureWait runs c on a fresh emulated workspace: the job's earlier runs
// (if the schedule has history), then the measured run, waited for with
// the schedule.
func measureWait(clock waitClock, c waitCase, s waitSchedule) (waitMeasure, error) {
	var m waitMeasure
	ws, err := emulator.New(emulator.Options{Clock: clock, RunPending: time.Nanosecond, RunTerminating: time.Nanosecond})
	if err != nil {
		return m, err
	}
	defer ws.Close()
	cl, err := benchClient(ws)
	if err != nil {
		return m, err
	}
	api := jobs.NewJobs(cl)
	ctx := context.Background()
	job, err := api.Create(ctx, jobs.CreateJob{Name: "bench", Tasks: []jobs.Task{{
		TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: benchNotebook},
	}}})
	if err != nil {
		return m, err
	}
	if s.history {
		for _, d := range c.history {
			ws.OnNotebook(benchNotebook, emulator.Behaviour{Duration: d})
			if _, err := api.RunNow(ctx, jobs.RunNow{JobId: job.JobId}); err != nil {
				return m, err
			}
			clock.Advance(d + time.Minute)
		}
	}
	ws.OnNotebook(benchNotebook, emulator.Behaviour{Duration: c.d})
	started, err := api.RunNow(ctx, jobs.RunNow{JobId: job.JobId})
	if err != nil {
		return m, err
	}
	answered := clock.Now()
	ws.ResetRequests()
	w := runwait.Waiter{Runs: api, Clock: clock, Interval: s.interval}
	if s.interval == nil {
		w.History = runwait.LookUp(ctx, api, runwait.Like{JobID: job.JobId})
		if w.History.Err != nil {
			return m, w.History.Err
		}
	}
	run, err := w.Wait(ctx, started.RunId)
	if err != nil {
		return m, err
	}
	returned := clock.Now()
	if run.EndTime == 0 {
		return m, fmt.Errorf("run %d did not end", started.RunId)
	}
	m.requests = len(ws.Requests())
	m.lag = returned.Sub(time.UnixMilli(run.EndTime))
	for _, r := range ws.RequestsTo("GET", "/api/2.2/jobs/runs/get") {
		m.polls = append(m.polls, r.Time.Sub(answered))
	}
	return m, nil
}

// waitWallClock measures a few short runs with the predictive schedule on
// the real clock (the waiter really sleeps, requests take real time) and the
// same runs on the simulated clock, and reports how far apart they are:
//
//   - wait_wallclock_requests_diff_max: requests, real − simulated;
//   - wait_wallclock_first_poll_ms_max: when the first runs/get arrived
//     after run-now answered (the history lookup; 0 when simulated);
//   - wait_wallclock_schedule_drift_ms_max: how far the later runs/get
//     requests drifted from the simulated ones, counted from the first;
//   - wait_wallclock_detect_diff_ms_max: detection lag, real − simulated
//     (the first poll's offset moves the grid of polls against the run's
//     end, and the last request's own time adds to the real lag).
func waitWallClock(env benchEnv) (map[string]float64, error) {
	rng := rand.New(rand.NewPCG(waitSeed, 99))
	sc := waitScenario{name: "wallclock", base: 8 * time.Second, sd: time.Second}
	out := map[string]float64{"wait_wallclock_runs": waitWallRuns}
	worst := func(name string, v float64) { out[name] = max(out[name], v) }
	s := waitSchedules[0]
	for k := range waitWallRuns {
		c := sc.draw(rng)
		t0 := time.Now()
		wall, err := measureWait(&skipClock{}, c, s)
		if err != nil {
			return nil, fmt.Errorf("wall-clock run %d: %w", k+1, err)
		}
		took := time.Since(t0)
		sim, err := measureWait(emulator.NewManualClock(benchStart), c, s)
		if err != nil {
			return nil, err
		}
		if len(wall.polls) != len(sim.polls) || len(wall.polls) == 0 {
			return nil, fmt.Errorf("wall-clock run %d: %d polls on real time, %d simulated", k+1, len(wall.polls), len(sim.polls))
		}
		var drift float64
		for i := range wall.polls {
			drift = max(drift, math.Abs(ms(wall.polls[i]-wall.polls[0])-ms(sim.polls[i]-sim.polls[0])))
		}
		fmt.Fprintf(env.Log, "wait wall clock run %d (%s run, %s real): requests %d real / %d simulated; first poll %.0f ms; drift %.1f ms; detection %.0f ms real / %.0f ms simulated\n",
			k+1, c.d.Round(time.Millisecond), took.Round(time.Millisecond), wall.requests, sim.requests, ms(wall.polls[0]), drift, ms(wall.lag), ms(sim.lag))
		worst("wait_wallclock_requests_diff_max", math.Abs(float64(wall.requests-sim.requests)))
		worst("wait_wallclock_first_poll_ms_max", ms(wall.polls[0]))
		worst("wait_wallclock_schedule_drift_ms_max", drift)
		worst("wait_wallclock_detect_diff_ms_max", math.Abs(ms(wall.lag)-ms(sim.lag)))
	}
	return out, nil
}

const waitWallRuns = 3

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// skipClock is the wall clock, moved forward by Advance: the earlier runs
// of a job are over at once, the measured run takes real time.
type skipClock struct{ skipped atomic.Int64 }

func (c *skipClock) Now() time.Time { return time.Now().Add(time.Duration(c.skipped.Load())) }

func (c *skipClock) Sleep(ctx context.Context, d time.Duration) error {
	return converge.RealClock{}.Sleep(ctx, d)
}

func (c *skipClock) Advance(d time.Duration) { c.skipped.Add(int64(d)) }
