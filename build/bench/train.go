package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/train"
	"github.com/brickferry/brickferry/tasks"
)

// trainFigures measures DatabricksTrain's waiting against the emulator. The
// task runs in-process with its production polling schedule; simulated time
// (a manual clock shared by the emulator and the waiter, advanced by each of
// the waiter's sleeps) makes 30 s and 10 min runs take milliseconds.
//
//   - train_detect_ms_p50|p95_30s|10min: from the run's terminal state to the
//     task's completion = the simulated polling lag + the real time from the
//     last poll to task.complete; 20 runs each, their ends spread over one
//     polling interval.
//   - train_overhead_ms: wall time minus run duration for an instant run, on
//     the real clock (median of 5).
func trainFigures(env benchEnv) (map[string]float64, error) {
	auth.QuietSDKLogger()
	out := map[string]float64{}
	for _, c := range []struct {
		name string
		base time.Duration
		step time.Duration
	}{{"30s", 30 * time.Second, 53 * time.Millisecond}, {"10min", 10 * time.Minute, 517 * time.Millisecond}} {
		var lags []float64
		for k := 0; k < 20; k++ {
			lag, err := simulatedRun(c.base + time.Duration(k)*c.step)
			if err != nil {
				return nil, err
			}
			lags = append(lags, lag)
		}
		out["train_detect_ms_p50_"+c.name] = percentile(lags, 50)
		out["train_detect_ms_p95_"+c.name] = percentile(lags, 95)
		fmt.Fprintf(env.Log, "train %s: detection p50 %.0f ms, p95 %.0f ms\n", c.name, out["train_detect_ms_p50_"+c.name], out["train_detect_ms_p95_"+c.name])
	}
	var overheads []float64
	for i := 0; i < 5; i++ {
		o, err := instantRunOverhead()
		if err != nil {
			return nil, err
		}
		overheads = append(overheads, o)
	}
	out["train_overhead_ms"] = median(overheads)
	return out, nil
}

// benchClock advances the emulator's clock on each sleep and remembers when
// (in real time) the last sleep returned: the start of the final poll.
type benchClock struct {
	c        *emulator.ManualClock
	mu       sync.Mutex
	lastWake time.Time
}

func (b *benchClock) Now() time.Time { return b.c.Now() }

func (b *benchClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.c.Advance(d)
	b.mu.Lock()
	b.lastWake = time.Now()
	b.mu.Unlock()
	return nil
}

const benchNotebook = "/Repos/bench/train"

// simulatedRun runs DatabricksTrain on a run of length d, on simulated time:
// the detection lag in ms.
func simulatedRun(d time.Duration) (float64, error) {
	clock := emulator.NewManualClock(benchStart)
	ws, err := emulator.New(emulator.Options{Clock: clock})
	if err != nil {
		return 0, err
	}
	defer ws.Close()
	ws.OnNotebook(benchNotebook, emulator.Behaviour{Duration: d, Train: &emulator.Train{Experiment: "/Shared/bench", Metrics: map[string]float64{"auc": 0.9}}})
	bc := &benchClock{c: clock}
	res, err := runTrain(ws, bc)
	if err != nil {
		return 0, err
	}
	realEnd := time.Now()
	c, err := benchClient(ws)
	if err != nil {
		return 0, err
	}
	run, err := jobs.NewJobs(c).GetRun(context.Background(), jobs.GetRunRequest{RunId: res.runID})
	if err != nil {
		return 0, err
	}
	if run.EndTime == 0 {
		return 0, fmt.Errorf("the run did not end: %s", res.log)
	}
	simLag := clock.Now().Sub(time.UnixMilli(run.EndTime))
	return ms(simLag) + ms(realEnd.Sub(bc.lastWake)), nil
}

func instantRunOverhead() (float64, error) {
	ws, err := emulator.New(emulator.Options{RunPending: time.Millisecond, RunTerminating: time.Millisecond})
	if err != nil {
		return 0, err
	}
	defer ws.Close()
	ws.OnNotebook(benchNotebook, emulator.Behaviour{Duration: time.Millisecond, Train: &emulator.Train{Experiment: "/Shared/bench"}})
	t0 := time.Now()
	res, err := runTrain(ws, nil)
	if err != nil {
		return 0, err
	}
	wall := time.Since(t0)
	c, err := benchClient(ws)
	if err != nil {
		return 0, err
	}
	run, err := jobs.NewJobs(c).GetRun(context.Background(), jobs.GetRunRequest{RunId: res.runID})
	if err != nil {
		return 0, err
	}
	return float64((wall - time.Duration(run.RunDuration)*time.Millisecond).Microseconds()) / 1000, nil
}

func benchClient(ws *emulator.Workspace) (*client.DatabricksClient, error) {
	cfg := ws.SDKConfig()
	cfg.RateLimitPerSecond = 10000
	return client.New(cfg)
}

type trainResult struct {
	runID int64
	log   string
}

// runTrain runs DatabricksTrain once, as the agent would, against ws.
func runTrain(ws *emulator.Workspace, clock *benchClock) (trainResult, error) {
	def, err := tasks.Definition("DatabricksTrain")
	if err != nil {
		return trainResult{}, err
	}
	c, err := benchClient(ws)
	if err != nil {
		return trainResult{}, err
	}
	deps := train.Deps{Connect: auth.Direct(&auth.Workspace{Name: "workspace", Client: c})}
	if clock != nil {
		deps.Clock = clock
	}
	env := agent.Env{"INPUT_NOTEBOOKPATH": benchNotebook, "INPUT_WORKERS": "1", "AGENT_TEMPDIRECTORY": tempDir()}
	var buf strings.Builder
	log := agent.NewLog(&buf, agent.LogOptions{Definition: def, TempDir: env["AGENT_TEMPDIRECTORY"]})
	if result := agent.Run(context.Background(), train.Task(deps), env, log); result != agent.Succeeded && result != agent.SucceededWithIssues {
		return trainResult{log: buf.String()}, fmt.Errorf("DatabricksTrain ended %s:\n%s", result, buf.String())
	}
	var id int64
	for _, line := range strings.Split(buf.String(), "\n") {
		if cmd, ok := agent.ParseCommand(line); ok && cmd.Properties["variable"] == "runId" {
			_, _ = fmt.Sscan(cmd.Message, &id)
		}
	}
	return trainResult{runID: id, log: buf.String()}, nil
}

var (
	benchTempOnce sync.Once
	benchTemp     string
)

func tempDir() string {
	benchTempOnce.Do(func() {
		benchTemp, _ = os.MkdirTemp("", "brickferry-bench-train-")
	})
	return benchTemp
}

// percentile is the nearest-rank p-th percentile.
func percentile(samples []float64, p float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[max(0, min(len(s)-1, rank-1))]
}
