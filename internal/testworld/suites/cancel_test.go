package suites_test

import (
	"context"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// rerun is a new attempt of the job, as "Rerun failed jobs" starts it: a
// new System.JobAttempt, hence a new idempotency token.
var rerun = map[string]string{"SYSTEM_JOBATTEMPT": "2"}

// interrupter sends the agent's SIGINT at a seeded random point.
type interrupter struct{ *points }

func newInterrupter(t *testing.T) *interrupter { return &interrupter{newPoints(t, 0)} }

// delay is how long after the remote work started the signal goes: 0-400 ms.
func (i *interrupter) delay() time.Duration {
	return time.Duration(i.intn(400_000)) * time.Microsecond
}

// interrupt waits until started reports the remote work has begun, then a
// random delay, sends SIGINT and checks the step ends Canceled with exit
// code 0 within 5 s.
func (i *interrupter) interrupt(t *testing.T, p *agenttest.Process, started func() bool) *agenttest.Result {
	t.Helper()
	require.Eventually(t, started, 30*time.Second, 5*time.Millisecond, "the remote work never started:\n%s", p.Stdout())
	d := i.delay()
	t.Logf("SIGINT %s after the remote work started", d)
	time.Sleep(d)
	require.NoError(t, p.Cmd.Process.Signal(os.Interrupt))
	sent := time.Now()
	done := make(chan *agenttest.Result, 1)
	go func() { done <- p.Finish(t) }()
	var res *agenttest.Result
	select {
	case res = <-done:
	case <-time.After(5 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-done
		t.Fatalf("the step did not end within 5 s of SIGINT:\n%s", p.Stdout())
	}
	t.Logf("ended %s after SIGINT", time.Since(sent).Round(time.Millisecond))
	assert.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Equal(t, agent.Canceled, res.Result, res.Stdout)
	assert.Equal(t, 1, res.Completions)
	return res
}

// TestCancellation cancels each long-running step while it waits on remote
// work, then reruns it: the rerun succeeds and leaves exactly one
// successful run, model version or endpoint.
func TestCancellation(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT on Windows")
	}
	exe := agenttest.Executable(t)
	sig := newInterrupter(t)

	t.Run("DatabricksTrain waiting on its run", func(t *testing.T) {
		t.Parallel()
		ws := startWorkspace(t, emulator.Options{RunPending: time.Millisecond, RunTerminating: time.Millisecond, RunDuration: 20 * time.Millisecond})
		ws.OnNotebook(trainNotebook, emulator.Behaviour{Duration: time.Hour})
		s := &step{ws: ws, task: "DatabricksTrain", in: trainInputs}

		res := sig.interrupt(t, s.start(t, exe, nil), requested(ws, http.MethodGet, runsGetPath))
		cancelled := cancelledRun(t, ws, res)

		ws.OnNotebook(trainNotebook, trainChurn(t, 50*time.Millisecond))
		again := s.finish(t, s.start(t, exe, rerun))
		assert.NotEqual(t, itoa(cancelled), again.Outputs["runId"])

		tokens := map[string]bool{}
		for _, r := range ws.RequestsTo(http.MethodPost, "/api/2.2/jobs/runs/submit") {
			tokens[r.Body.(*jobs.SubmitRun).IdempotencyToken] = true
		}
		assert.Len(t, tokens, 2, "one idempotency token per try")
		assertOneSuccessfulRun(t, ws, cancelled)
	})

	t.Run("BatchScore waiting on its run", func(t *testing.T) {
		t.Parallel()
		s := scoreStep(t, 3*time.Hour)

		res := sig.interrupt(t, s.start(t, exe, nil), requested(s.ws, http.MethodGet, runsGetPath))
		cancelled := cancelledRun(t, s.ws, res)

		s.ws.OnNotebook(scoreNotebook, scoreChurn(4*time.Minute))
		s.finish(t, s.start(t, exe, rerun))
		all, err := jobs.NewJobs(s.ws.Client(t)).ListAll(context.Background(), jobs.ListJobsRequest{Name: scoreJob})
		require.NoError(t, err)
		assert.Len(t, all, 1, "the rerun reuses the job")
		assertOneSuccessfulRun(t, s.ws, cancelled)
	})

	t.Run("ModelServe waiting for an endpoint update", func(t *testing.T) {
		t.Parallel()
		s := serveStep(t)
		s.ws.ResetRequests()

		// Nothing moves on the emulator's clock: the update stays IN_PROGRESS.
		p := s.start(t, exe, nil)
		// Started: the task has seen its update IN_PROGRESS. (A SIGINT
		// between the PUT and the first read of the endpoint also ends
		// Canceled, but without the warning below: the task warns from the
		// state it last read.)
		res := sig.interrupt(t, p, func() bool {
			return requested(s.ws, http.MethodPut, serveConfigPath)() && strings.Contains(p.Stdout(), "config update IN_PROGRESS")
		})
		// Databricks has no way to cancel a config update: the step stops
		// waiting, says so, and neither cancels nor rolls back.
		assert.Len(t, s.ws.RequestsTo(http.MethodPut, serveConfigPath), 1, "no rollback is sent")
		assert.Contains(t, strings.Join(res.Warnings, "\n"), "cannot be cancelled", res.Stdout)
		ep, err := serving.NewServingEndpoints(s.ws.Client(t)).Get(context.Background(), serving.GetServingEndpointRequest{Name: serveEndpoint})
		require.NoError(t, err)
		assert.Equal(t, serving.EndpointStateConfigUpdateInProgress, ep.State.ConfigUpdate)

		s.clock.Advance(time.Hour) // the update finishes on its own
		s.finish(t, s.start(t, exe, rerun))
		assert.Empty(t, s.ws.RequestsTo(http.MethodPost, "/api/2.0/serving-endpoints"), "no second endpoint is created")
		assertServesVersion2(t, s.ws)
	})

	t.Run("MLflowPromote register waiting for READY", func(t *testing.T) {
		t.Parallel()
		s, runID := registerStep(t)
		s.ws.ResetRequests()

		// Nothing moves on the emulator's clock: the version stays PENDING_REGISTRATION.
		sig.interrupt(t, s.start(t, exe, nil), requested(s.ws, http.MethodGet, "/api/2.0/mlflow/model-versions/get"))
		deletes := s.ws.RequestsTo(http.MethodDelete, "/api/2.0/mlflow/registered-models/delete")
		require.Len(t, deletes, 1, "the model the step registered is removed")
		assert.Equal(t, http.StatusOK, deletes[0].Status)

		again := s.finish(t, s.start(t, exe, rerun))
		v := onlyVersion(t, s.ws, runID)
		assert.Equal(t, v.Version, again.Outputs["modelVersion"])
	})
}

// cancelledRun checks that the interrupted step cancelled the one
// Databricks run it reported, and returns its id.
func cancelledRun(t *testing.T, ws *emulator.Workspace, res *agenttest.Result) int64 {
	t.Helper()
	cancels := ws.RequestsTo(http.MethodPost, "/api/2.2/jobs/runs/cancel")
	require.Len(t, cancels, 1, "the Databricks run is cancelled")
	cancelled := cancels[0].Body.(*jobs.CancelRun).RunId
	assert.Equal(t, res.Outputs["runId"], itoa(cancelled))
	return cancelled
}

// assertOneSuccessfulRun checks the workspace has two runs, the cancelled
// one and one that succeeded.
func assertOneSuccessfulRun(t *testing.T, ws *emulator.Workspace, cancelled int64) {
	t.Helper()
	runs, err := jobs.NewJobs(ws.Client(t)).ListRunsAll(context.Background(), jobs.ListRunsRequest{})
	require.NoError(t, err)
	succeeded := 0
	for _, r := range runs {
		require.NotNil(t, r.State)
		if r.RunId == cancelled {
			assert.Equal(t, jobs.RunResultStateCanceled, r.State.ResultState, "the cancelled run")
			continue
		}
		if r.State.ResultState == jobs.RunResultStateSuccess {
			succeeded++
		}
	}
	assert.Len(t, runs, 2, "the cancelled run and the rerun's")
	assert.Equal(t, 1, succeeded, "exactly one successful run")
}
