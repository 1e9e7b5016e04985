package suites_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/files"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/fixtures"
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
		const nb = "/Repos/mlops/churn/notebooks/train"
		ws.OnNotebook(nb, emulator.Behaviour{Duration: time.Hour})
		in := map[string]string{"notebookPath": nb, "workers": "1"}

		p := agentRun(t, ws, "DatabricksTrain", in, nil).Start(t, exe)
		res := sig.interrupt(t, p, func() bool { return len(ws.RequestsTo(http.MethodGet, "/api/2.2/jobs/runs/get")) > 0 })
		cancels := ws.RequestsTo(http.MethodPost, "/api/2.2/jobs/runs/cancel")
		require.Len(t, cancels, 1, "the Databricks run is cancelled")
		cancelled := cancels[0].Body.(*jobs.CancelRun).RunId
		assert.Equal(t, res.Outputs["runId"], itoa(cancelled))

		ws.OnNotebook(nb, emulator.Behaviour{Duration: 50 * time.Millisecond, Train: &emulator.Train{
			Experiment: "/Shared/churn", ModelDir: fixtures.ChurnModel(t), Metrics: map[string]float64{"auc": 0.91},
		}})
		again := agentRun(t, ws, "DatabricksTrain", in, rerun).Exec(t, exe)
		require.Equal(t, agent.Succeeded, again.Result, again.Stdout)
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
		clock := emulator.NewManualClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
		ws := startWorkspace(t, emulator.Options{Clock: clock})
		const shipped = "/Shared/brickferry/batch_score"
		ws.OnNotebook(shipped, emulator.Behaviour{Duration: 3 * time.Hour})
		in := map[string]string{"modelUri": "models:/churn/Production", "inputTable": "main.ml.customers", "idColumns": "CodigoCliente", "outputTable": "main.ml.churn_predictions", "jobName": "churn-batch-score"}

		p := agentRun(t, ws, "BatchScore", in, nil).Start(t, exe)
		res := sig.interrupt(t, p, func() bool { return len(ws.RequestsTo(http.MethodGet, "/api/2.2/jobs/runs/get")) > 0 })
		cancels := ws.RequestsTo(http.MethodPost, "/api/2.2/jobs/runs/cancel")
		require.Len(t, cancels, 1, "the Databricks run is cancelled")
		cancelled := cancels[0].Body.(*jobs.CancelRun).RunId
		assert.Equal(t, res.Outputs["runId"], itoa(cancelled))

		ws.OnNotebook(shipped, emulator.Behaviour{Duration: 4 * time.Minute, Action: func(tc *emulator.TaskContext) error {
			table := tc.Params["output_table"]
			tc.WriteTable(table, 9960)
			out, _ := json.Marshal(map[string]any{"rows_written": 9960, "output_table": table, "table_version": tc.TableVersion(table),
				"model_name": "churn", "model_version": "3"})
			tc.SetExitValue(string(out))
			return nil
		}})
		stop := tick(clock, 5*time.Second)
		again := agentRun(t, ws, "BatchScore", in, rerun).Exec(t, exe)
		stop()
		require.Equal(t, agent.Succeeded, again.Result, "%v\n%s", again.Errors, again.Stdout)

		all, err := jobs.NewJobs(sdk(t, ws)).ListAll(context.Background(), jobs.ListJobsRequest{Name: "churn-batch-score"})
		require.NoError(t, err)
		assert.Len(t, all, 1, "the rerun reuses the job")
		assertOneSuccessfulRun(t, ws, cancelled)
	})

	t.Run("ModelServe waiting for an endpoint update", func(t *testing.T) {
		t.Parallel()
		clock := emulator.NewManualClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
		ws := startWorkspace(t, emulator.Options{Clock: clock})
		c := sdk(t, ws)
		registerChurn(t, c, clock, 2)
		api := serving.NewServingEndpoints(c)
		const endpoint = "churn-serving"
		_, err := api.Create(context.Background(), serving.CreateServingEndpoint{Name: endpoint, Config: &serving.EndpointCoreConfigInput{
			ServedEntities: []serving.ServedEntityInput{{Name: "churn-1", EntityName: "churn", EntityVersion: "1", WorkloadSize: "Small", ScaleToZeroEnabled: true}},
		}})
		require.NoError(t, err)
		clock.Advance(time.Hour) // the endpoint is READY with version 1
		ws.ResetRequests()
		in := map[string]string{"endpointName": endpoint, "modelName": "churn", "modelVersion": "2",
			"smokeTestPayload": `{"dataframe_split": {"columns": ["tenure", "charges"], "data": [[12, 70.5], [3, 20.1]]}}`}
		configPath := "/api/2.0/serving-endpoints/" + endpoint + "/config"

		// Nothing moves on the emulator's clock: the update stays IN_PROGRESS.
		p := agentRun(t, ws, "ModelServe", in, nil).Start(t, exe)
		// Started: the task has seen its update IN_PROGRESS. (A SIGINT
		// between the PUT and the first read of the endpoint also ends
		// Canceled, but without the warning below: the task warns from the
		// state it last read.)
		res := sig.interrupt(t, p, func() bool {
			return len(ws.RequestsTo(http.MethodPut, configPath)) > 0 && strings.Contains(p.Stdout(), "config update IN_PROGRESS")
		})
		// Databricks has no way to cancel a config update: the step stops
		// waiting, says so, and neither cancels nor rolls back.
		assert.Len(t, ws.RequestsTo(http.MethodPut, configPath), 1, "no rollback is sent")
		assert.Contains(t, strings.Join(res.Warnings, "\n"), "cannot be cancelled", res.Stdout)
		ep, err := api.Get(context.Background(), serving.GetServingEndpointRequest{Name: endpoint})
		require.NoError(t, err)
		assert.Equal(t, serving.EndpointStateConfigUpdateInProgress, ep.State.ConfigUpdate)

		clock.Advance(time.Hour) // the update finishes on its own
		stop := tick(clock, time.Second)
		again := agentRun(t, ws, "ModelServe", in, rerun).Exec(t, exe)
		stop()
		require.Equal(t, agent.Succeeded, again.Result, "%v\n%s", again.Errors, again.Stdout)

		list, err := api.ListAll(context.Background())
		require.NoError(t, err)
		require.Len(t, list, 1, "one endpoint")
		assert.Empty(t, ws.RequestsTo(http.MethodPost, "/api/2.0/serving-endpoints"), "no second endpoint is created")
		ep, err = api.Get(context.Background(), serving.GetServingEndpointRequest{Name: endpoint})
		require.NoError(t, err)
		assert.Equal(t, serving.EndpointStateReadyReady, ep.State.Ready)
		require.NotNil(t, ep.Config)
		var served []string
		for _, e := range ep.Config.ServedEntities {
			served = append(served, e.Name)
		}
		assert.Equal(t, []string{"churn-2"}, served, "version 2 is served once")
	})

	t.Run("MLflowPromote register waiting for READY", func(t *testing.T) {
		t.Parallel()
		clock := emulator.NewManualClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
		ws := startWorkspace(t, emulator.Options{Clock: clock})
		runID := trainedRun(t, ws, clock)
		ws.ResetRequests()
		in := map[string]string{"command": "register", "modelName": "churn", "modelUri": "runs:/" + runID + "/model"}

		// Nothing moves on the emulator's clock: the version stays PENDING_REGISTRATION.
		p := agentRun(t, ws, "MLflowPromote", in, nil).Start(t, exe)
		sig.interrupt(t, p, func() bool { return len(ws.RequestsTo(http.MethodGet, "/api/2.0/mlflow/model-versions/get")) > 0 })
		deletes := ws.RequestsTo(http.MethodDelete, "/api/2.0/mlflow/registered-models/delete")
		require.Len(t, deletes, 1, "the model the step registered is removed")
		assert.Equal(t, http.StatusOK, deletes[0].Status)

		stop := tick(clock, time.Second)
		again := agentRun(t, ws, "MLflowPromote", in, rerun).Exec(t, exe)
		stop()
		require.Equal(t, agent.Succeeded, again.Result, "%v\n%s", again.Errors, again.Stdout)

		versions, err := ml.NewModelRegistry(sdk(t, ws)).SearchModelVersionsAll(context.Background(), ml.SearchModelVersionsRequest{Filter: "name='churn'"})
		require.NoError(t, err)
		require.Len(t, versions, 1, "one model version")
		assert.Equal(t, ml.ModelVersionStatusReady, versions[0].Status)
		assert.Equal(t, versions[0].Version, again.Outputs["modelVersion"])
		assert.Equal(t, runID, versions[0].RunId)
	})
}

// assertOneSuccessfulRun checks the workspace has two runs, the cancelled
// one and one that succeeded.
func assertOneSuccessfulRun(t *testing.T, ws *emulator.Workspace, cancelled int64) {
	t.Helper()
	runs, err := jobs.NewJobs(sdk(t, ws)).ListRunsAll(context.Background(), jobs.ListRunsRequest{})
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

// registerChurn registers versions 1..n of the workspace registry model
// churn from files on DBFS and lets them become READY.
func registerChurn(t *testing.T, c *client.DatabricksClient, clock *emulator.ManualClock, n int) {
	t.Helper()
	ctx := context.Background()
	dbfs := files.NewDbfs(c)
	for f, content := range map[string]string{"MLmodel": "artifact_path: model\nflavors:\n  python_function: {}\n", "requirements.txt": "mlflow\n"} {
		require.NoError(t, dbfs.Put(ctx, files.Put{Path: "dbfs:/models/churn/" + f, Contents: base64.StdEncoding.EncodeToString([]byte(content)), Overwrite: true}))
	}
	reg := ml.NewModelRegistry(c)
	_, err := reg.CreateModel(ctx, ml.CreateModelRequest{Name: "churn"})
	require.NoError(t, err)
	for range n {
		_, err := reg.CreateModelVersion(ctx, ml.CreateModelVersionRequest{Name: "churn", Source: "dbfs:/models/churn"})
		require.NoError(t, err)
	}
	clock.Advance(time.Minute)
}

// trainedRun runs a training job that logs the churn model and returns its
// MLflow run id, as DatabricksTrain hands it over.
func trainedRun(t *testing.T, ws *emulator.Workspace, clock *emulator.ManualClock) string {
	t.Helper()
	const nb = "/Repos/mlops/churn/notebooks/train"
	ws.OnNotebook(nb, emulator.Behaviour{Duration: time.Minute, Train: &emulator.Train{
		Experiment: "/Shared/churn", ModelDir: fixtures.ChurnModel(t), Metrics: map[string]float64{"auc": 0.91},
	}})
	api := jobs.NewJobs(sdk(t, ws))
	ctx := context.Background()
	sub, err := api.Submit(ctx, jobs.SubmitRun{RunName: "train", Tasks: []jobs.SubmitTask{{TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: nb}}}})
	require.NoError(t, err)
	clock.Advance(time.Hour)
	run, err := api.GetRun(ctx, jobs.GetRunRequest{RunId: sub.RunId})
	require.NoError(t, err)
	require.Equal(t, jobs.RunResultStateSuccess, run.State.ResultState, run.State.StateMessage)
	out, err := api.GetRunOutput(ctx, jobs.GetRunOutputRequest{RunId: run.Tasks[0].RunId})
	require.NoError(t, err)
	var exit struct {
		MLflowRunID string `json:"mlflow_run_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(out.NotebookOutput.Result), &exit))
	return exit.MLflowRunID
}
