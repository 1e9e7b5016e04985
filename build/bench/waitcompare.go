package main

import (
	"context"
	"fmt"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/brickferry/brickferry/internal/runwait"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// waitCompareFigures compares DatabricksTrain's waiting schedule
// (runwait.Adaptive) with the way the reference pipeline waited for runs (a
// fixed 2 s poll of runs/get) and with a fixed 5 s poll, on the same
// simulated runs in the same bench run: the emulator and the waiter share a
// manual clock advanced by each of the waiter's sleeps, so a 10 min run
// takes milliseconds and the figures are exact.
//
// For each run length (30 s and 10 min, 15 runs each, their ends spread over
// 10 s) and each schedule: the runs/get requests per run and the detection
// lag (run end → the waiter returns), as medians. The ratios are adaptive ÷
// fixed; the headline train_requests_ratio_vs_fixed_poll and
// train_detect_ratio_vs_fixed_poll are for the 10 min runs against the 2 s
// poll.
func waitCompareFigures(env benchEnv) (map[string]float64, error) {
	schedules := []struct {
		name     string
		interval func(time.Duration) time.Duration
	}{
		{"adaptive", runwait.Adaptive},
		{"fixed2s", func(time.Duration) time.Duration { return 2 * time.Second }},
		{"fixed5s", func(time.Duration) time.Duration { return 5 * time.Second }},
	}
	out := map[string]float64{}
	for _, c := range []struct {
		name string
		base time.Duration
	}{{"30s", 30 * time.Second}, {"10min", 10 * time.Minute}} {
		for _, s := range schedules {
			var reqs, lags []float64
			for k := 0; k < 15; k++ {
				d := c.base + time.Duration(k)*(10*time.Second/15) + 37*time.Millisecond
				n, lag, err := waitOnce(d, s.interval)
				if err != nil {
					return nil, err
				}
				reqs = append(reqs, float64(n))
				lags = append(lags, float64(lag.Milliseconds()))
			}
			out[fmt.Sprintf("train_wait_requests_%s_%s", s.name, c.name)] = median(reqs)
			out[fmt.Sprintf("train_wait_detect_ms_%s_%s", s.name, c.name)] = median(lags)
		}
		for _, ref := range []string{"fixed2s", "fixed5s"} {
			rr := out["train_wait_requests_adaptive_"+c.name] / out["train_wait_requests_"+ref+"_"+c.name]
			dr := out["train_wait_detect_ms_adaptive_"+c.name] / out["train_wait_detect_ms_"+ref+"_"+c.name]
			out[fmt.Sprintf("train_requests_ratio_vs_%s_%s", ref, c.name)] = rr
			out[fmt.Sprintf("train_detect_ratio_vs_%s_%s", ref, c.name)] = dr
		}
		fmt.Fprintf(env.Log, "wait %s: requests adaptive %.0f / fixed 2 s %.0f / fixed 5 s %.0f; detection ms %.0f / %.0f / %.0f\n", c.name,
			out["train_wait_requests_adaptive_"+c.name], out["train_wait_requests_fixed2s_"+c.name], out["train_wait_requests_fixed5s_"+c.name],
			out["train_wait_detect_ms_adaptive_"+c.name], out["train_wait_detect_ms_fixed2s_"+c.name], out["train_wait_detect_ms_fixed5s_"+c.name])
	}
	out["train_requests_ratio_vs_fixed_poll"] = out["train_requests_ratio_vs_fixed2s_10min"]
	out["train_detect_ratio_vs_fixed_poll"] = out["train_detect_ratio_vs_fixed2s_10min"]
	out["train_requests_ratio_vs_fixed_poll_5s"] = out["train_requests_ratio_vs_fixed5s_10min"]
	out["train_detect_ratio_vs_fixed_poll_5s"] = out["train_detect_ratio_vs_fixed5s_10min"]
	return out, nil
}

// waitOnce submits one run of length d and waits for it with the schedule:
// the runs/get requests made and the detection lag.
func waitOnce(d time.Duration, interval func(time.Duration) time.Duration) (int, time.Duration, error) {
	clock := emulator.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	ws, err := emulator.New(emulator.Options{Clock: clock, RunPending: time.Nanosecond, RunTerminating: time.Nanosecond})
	if err != nil {
		return 0, 0, err
	}
	defer ws.Close()
	ws.OnNotebook(benchNotebook, emulator.Behaviour{Duration: d})
	c, err := benchClient(ws)
	if err != nil {
		return 0, 0, err
	}
	api := jobs.NewJobs(c)
	ctx := context.Background()
	sub, err := api.Submit(ctx, jobs.SubmitRun{RunName: "bench", Tasks: []jobs.SubmitTask{{
		TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: benchNotebook},
	}}})
	if err != nil {
		return 0, 0, err
	}
	ws.ResetRequests()
	bc := &benchClock{c: clock}
	run, err := runwait.Waiter{Runs: api, Clock: bc, Interval: interval}.Wait(ctx, sub.RunId)
	if err != nil {
		return 0, 0, err
	}
	if run.EndTime == 0 {
		return 0, 0, fmt.Errorf("run %d did not end", sub.RunId)
	}
	n := len(ws.RequestsTo("GET", "/api/2.2/jobs/runs/get"))
	return n, clock.Now().Sub(time.UnixMilli(run.EndTime)), nil
}
