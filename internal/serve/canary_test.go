package serve_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/cli"
	"github.com/brickferry/brickferry/internal/serve"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/tasks"
)

// canaryInputs deploy version 2 as a 10 % canary watched for watch minutes.
func canaryInputs(watch string, more ...string) map[string]string {
	in := map[string]string{"modelVersion": "2", "trafficPercent": "10", "canaryMinutes": watch}
	for i := 0; i+1 < len(more); i += 2 {
		in[more[i]] = more[i+1]
	}
	return in
}

// canaryWorld is a world serving version 1 to the scripted client traffic.
func canaryWorld(t *testing.T, traffic emulator.ServingTraffic) *world {
	w := newWorld(t, emulator.Options{})
	w.serveVersion(1, nil)
	w.ws.OnServingTraffic(endpoint, traffic)
	w.ws.ResetRequests()
	return w
}

// The executable runs on the wall clock: its canary is watched for 3 s
// (0.05 minutes) with enough scripted traffic to judge it.

// TestCanaryWith5xxIsRolledBack: the new entity answers 20 % of its
// requests with 5xx, above the 1 % limit: the previous config is put back.
func TestCanaryWith5xxIsRolledBack(t *testing.T) {
	t.Parallel()
	w := canaryWorld(t, emulator.ServingTraffic{PerMinute: 60000, Entities: map[string]emulator.EntityHealth{"churn-2": {ErrorRate: 0.2}}})

	res := w.run(canaryInputs("0.05"))
	require.Equal(t, agent.Failed, res.Result, "%s", res.Stdout)
	assert.Equal(t, map[string]int{"churn-1": 100}, w.traffic(), "rolled back to the previous config")
	assert.Equal(t, "rolledBack", res.Outputs["canaryVerdict"])
	assert.Equal(t, "true", res.Outputs["rolledBack"])
	rate, err := strconv.ParseFloat(res.Outputs["canaryErrorRate"], 64)
	require.NoError(t, err)
	assert.InDelta(t, 20, rate, 0.5, "the counters are whole numbers")
	n, err := strconv.Atoi(res.Outputs["canaryRequests"])
	require.NoError(t, err)
	assert.Greater(t, n, 100)
	assert.NotEmpty(t, res.Outputs["canaryP99Ms"])
	assert.Contains(t, res.Errors[0], "the canary failed: churn-2 answered "+res.Outputs["canaryErrorRate"]+" % of "+res.Outputs["canaryRequests"]+" requests")
	assert.Contains(t, res.Errors[0], "with 5xx, above the limit of 1.00 %")
	assert.Contains(t, res.Stdout, "Canary reading 1, ")
	assert.Contains(t, res.Stdout, "Canary reading 5, ", "each reading is logged")
	assert.Contains(t, onlySummary(t, res.Summaries), "Canary: **rolledBack** after 5 reading(s)")
}

// TestCanaryWithinLimitsIsPromoted: no errors and the same latency as the
// stable entity: the new entity gets all traffic.
func TestCanaryWithinLimitsIsPromoted(t *testing.T) {
	t.Parallel()
	w := canaryWorld(t, emulator.ServingTraffic{PerMinute: 60000})

	res := w.run(canaryInputs("0.05"))
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	assert.Equal(t, map[string]int{"churn-2": 100}, w.traffic())
	assert.Equal(t, "promoted", res.Outputs["canaryVerdict"])
	assert.Equal(t, "100", res.Outputs["trafficPercent"])
	assert.Equal(t, "false", res.Outputs["rolledBack"])
	assert.Equal(t, "0.00", res.Outputs["canaryErrorRate"])
	// Every request takes 40 ms: in the (25, 50] bucket, interpolated.
	assert.Equal(t, "50", res.Outputs["canaryP99Ms"])
	assert.Contains(t, res.Stdout, "Canary passed: churn-2 answered 0.00 % with 5xx")
	assert.Contains(t, onlySummary(t, res.Summaries), "Canary: **promoted**")
}

// TestCanaryWithTooLittleTrafficRollsBack: 60 requests a minute give the
// 10 % canary about 3 in 3 s, fewer than 100: the input says roll back.
func TestCanaryWithTooLittleTrafficRollsBack(t *testing.T) {
	t.Parallel()
	w := canaryWorld(t, emulator.ServingTraffic{PerMinute: 60})

	res := w.run(canaryInputs("0.05", "canaryTooLittleTraffic", "rollback"))
	require.Equal(t, agent.Failed, res.Result, "%s", res.Stdout)
	assert.Equal(t, map[string]int{"churn-1": 100}, w.traffic())
	assert.Equal(t, "rolledBack", res.Outputs["canaryVerdict"])
	assert.Contains(t, res.Stdout, "the canary cannot be judged: churn-2 got ")
	assert.Contains(t, res.Stdout, "fewer than the 100 needed to judge it; canaryTooLittleTraffic is rollback")
}

// simulatedWorld runs the task in this process on a manual clock shared
// with the workspace: a canary watched for half an hour is judged at once.
func simulatedWorld(t *testing.T) (*world, *emulator.ManualClock) {
	clock := emulator.NewManualClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	w := newWorld(t, emulator.Options{Clock: clock, ServingReady: 5 * time.Minute, ServingUpdate: 3 * time.Minute})
	clock.Advance(time.Minute) // the versions register
	def, err := tasks.Definition("ModelServe")
	require.NoError(t, err)
	w.registry = cli.Registry{"ModelServe": cli.Task{Definition: def, Run: serve.Task(serve.Deps{Clock: clock})}}
	w.serveVersion(1, nil)
	w.ws.ResetRequests()
	return w, clock
}

func TestCanaryOnSimulatedTime(t *testing.T) {
	t.Parallel()
	t.Run("too little traffic, promote", func(t *testing.T) {
		t.Parallel()
		w, clock := simulatedWorld(t)
		w.ws.OnServingTraffic(endpoint, emulator.ServingTraffic{PerMinute: 10})
		start := clock.Now()
		res := w.run(canaryInputs("30", "canaryTooLittleTraffic", "promote"))
		require.Equal(t, agent.SucceededWithIssues, res.Result, "promoted with a warning that the canary was not judged")
		require.Len(t, res.Warnings, 1)
		assert.Contains(t, res.Warnings[0], "the canary cannot be judged: churn-2 got 30 request(s) in 30m0s")
		require.Equal(t, agent.SucceededWithIssues, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
		assert.Equal(t, map[string]int{"churn-2": 100}, w.traffic())
		assert.Equal(t, "promoted", res.Outputs["canaryVerdict"])
		assert.Equal(t, "30", res.Outputs["canaryRequests"], "10 % of 10 a minute for 30 minutes")
		assert.Contains(t, res.Stdout, "Canary reading 30, 30m0s in:")
		assert.GreaterOrEqual(t, clock.Now().Sub(start), 30*time.Minute)
	})
	t.Run("too little traffic, fail", func(t *testing.T) {
		t.Parallel()
		w, _ := simulatedWorld(t)
		w.ws.OnServingTraffic(endpoint, emulator.ServingTraffic{PerMinute: 10})
		res := w.run(canaryInputs("30"))
		require.Equal(t, agent.Failed, res.Result)
		assert.Equal(t, map[string]int{"churn-1": 90, "churn-2": 10}, w.traffic(), "the split is kept")
		assert.Equal(t, "failed", res.Outputs["canaryVerdict"])
		assert.Equal(t, "false", res.Outputs["rolledBack"])
		assert.Contains(t, res.Errors[0], "the canary got too little traffic: churn-2 got 30 request(s) in 30m0s, fewer than the 100 needed to judge it")
		assert.Contains(t, res.Errors[0], "(canaryTooLittleTraffic: fail)")
	})
	t.Run("slow canary", func(t *testing.T) {
		t.Parallel()
		w, _ := simulatedWorld(t)
		w.ws.OnServingTraffic(endpoint, emulator.ServingTraffic{PerMinute: 6000, Entities: map[string]emulator.EntityHealth{
			"churn-1": {LatencyMs: 90}, "churn-2": {LatencyMs: 400},
		}})
		res := w.run(canaryInputs("10", "canaryMaxLatencyRatio", "2"))
		require.Equal(t, agent.Failed, res.Result)
		assert.Equal(t, map[string]int{"churn-1": 100}, w.traffic())
		assert.Equal(t, "rolledBack", res.Outputs["canaryVerdict"])
		assert.Equal(t, "498", res.Outputs["canaryP99Ms"], "400 ms in the (300, 500] bucket")
		assert.Contains(t, res.Errors[0], "churn-2's p99 latency 498 ms is 4.99 times churn-1's 100 ms, above the limit of 2.00")
	})
	t.Run("a split found in place is judged again", func(t *testing.T) {
		t.Parallel()
		w, _ := simulatedWorld(t)
		w.ws.OnServingTraffic(endpoint, emulator.ServingTraffic{PerMinute: 6000, Entities: map[string]emulator.EntityHealth{"churn-2": {ErrorRate: 0.5}}})
		// A first run leaves the split (no watch), a second one judges it.
		res := w.run(map[string]string{"modelVersion": "2", "trafficPercent": "10"})
		require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
		res = w.run(canaryInputs("5"))
		require.Equal(t, agent.Failed, res.Result)
		assert.Contains(t, res.Stdout, "already serves exactly this config")
		assert.Equal(t, map[string]int{"churn-1": 100}, w.traffic(), "the stable entity gets all traffic")
		assert.Equal(t, "rolledBack", res.Outputs["canaryVerdict"])
		assert.True(t, strings.HasSuffix(res.Errors[0], "was rolled back to churn-1"), res.Errors[0])
	})
}
