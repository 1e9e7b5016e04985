package batchscore_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// newExeWorld is a world whose task runs are the built brickferry executable,
// started as the agent starts it, connecting with the variable-group method
// (databricks-host, secret databricks-token) over https: the emulator serves
// it with a certificate of its own CA, given to the task as the agent's
// Agent.CAInfo.
func newExeWorld(t *testing.T) *world {
	t.Helper()
	ca, caFile := emulator.TestCA(t)
	w := startWorld(t, ca)
	w.caFile = caFile
	w.exe = agenttest.Executable(t)
	w.host = w.ws.URL()
	return w
}

// agentRun is the task run as the agent would start it for this world.
func (w *world) agentRun(in map[string]string) agenttest.Run {
	env := w.nextPipelineRun()
	env["AGENT_CAINFO"] = w.caFile
	return agenttest.Run{
		Task: "BatchScore", Inputs: in, Env: env,
		Variables: map[string]string{"databricks-host": w.host},
		Secrets:   map[string]string{"databricks-token": w.ws.Token},
	}
}

// tick moves the emulator's clock while a process runs on the wall clock:
// 5 simulated seconds every 5 ms, so a four-minute scoring run takes about
// a quarter of a second. The returned function stops it.
func (w *world) tick() func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				w.clock.Advance(5 * time.Second)
			}
		}
	}()
	return func() { close(stop); <-done }
}

// eachMode runs a scenario through the built executable (as the agent runs
// it, with auth wired) and in-process (fast, under the race detector).
func eachMode(t *testing.T, scenario func(t *testing.T, newW func(*testing.T) *world)) {
	t.Run("executable", func(t *testing.T) { scenario(t, newExeWorld) })
	t.Run("in-process", func(t *testing.T) { scenario(t, newWorld) })
}

// TestSIGINTCancelsTheRun: the agent cancels a step with SIGINT; the task
// cancels the Databricks run and ends Canceled.
func TestSIGINTCancelsTheRun(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT on Windows")
	}
	w := newExeWorld(t)
	w.ws.OnNotebook(shippedPath, emulator.Behaviour{Duration: 3 * time.Hour})
	p := w.agentRun(inputs()).Start(t, w.exe)
	require.Eventually(t, func() bool { return len(w.ws.RequestsTo("GET", "/api/2.2/jobs/runs/get")) >= 2 }, 20*time.Second, 10*time.Millisecond, p.Stdout())
	require.NoError(t, p.Cmd.Process.Signal(os.Interrupt))
	res := p.Finish(t)
	assert.Equal(t, 0, res.ExitCode)
	assert.Equal(t, agent.Canceled, res.Result, res.Stdout)
	assert.Equal(t, 1, res.Completions)
	cancels := w.ws.RequestsTo("POST", "/api/2.2/jobs/runs/cancel")
	require.Len(t, cancels, 1)
	assert.Contains(t, string(cancels[0].Raw), res.Outputs["runId"])
	assert.Contains(t, strings.Join(res.Warnings, "\n"), "was cancelled")
	run, err := jobs.NewJobs(w.sdk(t)).GetRun(context.Background(), jobs.GetRunRequest{RunId: mustInt(t, res.Outputs["runId"])})
	require.NoError(t, err)
	assert.NotEqual(t, jobs.RunLifeCycleStateRunning, run.State.LifeCycleState)
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err, s)
	return n
}
