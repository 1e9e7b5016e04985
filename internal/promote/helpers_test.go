package promote_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/registry"
	"github.com/brickferry/brickferry/internal/testworld"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/fixtures"
)

func TestMain(m *testing.M) { testworld.Main(m) }

// startWorkspace starts an emulated https workspace on the real clock with
// short timings, so job runs and registrations finish within a test.
func startWorkspace(t *testing.T, opts emulator.Options) *emulator.Workspace {
	t.Helper()
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&opts.RunPending, time.Millisecond)
	def(&opts.RunDuration, time.Millisecond)
	def(&opts.RunTerminating, time.Millisecond)
	def(&opts.RegistrationDelay, 150*time.Millisecond)
	ws, _ := emulator.StartHTTPS(t, opts)
	return ws
}

func sdk(t *testing.T, ws *emulator.Workspace) *client.DatabricksClient {
	t.Helper()
	cfg := ws.SDKConfig()
	cfg.RetryTimeoutSeconds = 20
	cfg.RateLimitPerSecond = 1000 // tests poll faster than the default 15 requests a second
	c, err := client.New(cfg)
	require.NoError(t, err)
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// agentRun is MLflowPromote as the agent starts it, connected to ws with the
// token method (agenttest.Run.WithToken).
func agentRun(t *testing.T, ws *emulator.Workspace, inputs map[string]string) agenttest.Run {
	t.Helper()
	return agenttest.Run{Task: "MLflowPromote", Inputs: inputs, Env: map[string]string{"AGENT_CAINFO": caFile(t)}}.WithToken(ws.URL(), ws.Token)
}

// run runs MLflowPromote with the built executable, as the agent would.
func run(t *testing.T, ws *emulator.Workspace, inputs map[string]string) *agenttest.Result {
	t.Helper()
	res := agentRun(t, ws, inputs).Exec(t, agenttest.Executable(t))
	require.Equal(t, 1, res.Completions, res.Stdout)
	require.Equal(t, 0, res.ExitCode, "under the agent the executable exits 0")
	return res
}

// train runs a training job in ws that logs a model and metrics, and returns
// the MLflow run id, as the DatabricksTrain step would hand it over.
func train(t *testing.T, ws *emulator.Workspace, metrics map[string]float64) string {
	t.Helper()
	return trainTicking(t, ws, metrics, func() {})
}

// trainTicking is train for a workspace whose time moves only when told:
// tick runs before each look at the training run.
func trainTicking(t *testing.T, ws *emulator.Workspace, metrics map[string]float64, tick func()) string {
	t.Helper()
	nb := "/Repos/mlops/train-" + time.Now().Format("150405.000000000")
	ws.OnNotebook(nb, emulator.Behaviour{Train: &emulator.Train{
		Experiment: "/Shared/churn/experiment", ModelDir: fixtures.ChurnModel(t), Metrics: metrics,
	}})
	api := jobs.NewJobs(sdk(t, ws))
	c := ctx(t)
	sub, err := api.Submit(c, jobs.SubmitRun{RunName: "train", Tasks: []jobs.SubmitTask{{TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: nb}}}})
	require.NoError(t, err)
	var run *jobs.Run
	require.Eventually(t, func() bool {
		tick()
		run, err = api.GetRun(c, jobs.GetRunRequest{RunId: sub.RunId})
		require.NoError(t, err)
		return run.State.LifeCycleState == jobs.RunLifeCycleStateTerminated
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, jobs.RunResultStateSuccess, run.State.ResultState, run.State.StateMessage)
	out, err := api.GetRunOutput(c, jobs.GetRunOutputRequest{RunId: run.Tasks[0].RunId})
	require.NoError(t, err)
	var exit struct {
		MLflowRunID string `json:"mlflow_run_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(out.NotebookOutput.Result), &exit))
	return exit.MLflowRunID
}

// ucVersion creates a READY Unity Catalog model version from runID the way
// the MLflow client does (create, then finalize; the files do not matter to
// the task) and returns its number.
func ucVersion(t *testing.T, ws *emulator.Workspace, fullName, runID string) int {
	t.Helper()
	c := sdk(t, ws)
	models := catalog.NewRegisteredModels(c)
	if _, err := models.Get(ctx(t), catalog.GetRegisteredModelRequest{FullName: fullName}); err != nil {
		parts := strings.Split(fullName, ".")
		_, err := models.Create(ctx(t), catalog.CreateRegisteredModelRequest{CatalogName: parts[0], SchemaName: parts[1], Name: parts[2]})
		require.NoError(t, err)
	}
	var created emulator.UCModelVersionResponse
	require.NoError(t, c.Do(ctx(t), "POST", registry.UCRoute+"create", nil, nil,
		emulator.CreateUCModelVersionRequest{Name: fullName, Source: "dbfs:/databricks/mlflow-tracking/x/" + runID + "/artifacts/model", RunID: runID}, &created))
	var final emulator.UCModelVersionResponse
	require.NoError(t, c.Do(ctx(t), "POST", registry.UCRoute+"finalize", nil, nil,
		emulator.FinalizeUCModelVersionRequest{Name: fullName, Version: created.ModelVersion.Version}, &final))
	n, err := strconv.Atoi(final.ModelVersion.Version)
	require.NoError(t, err)
	return n
}

func itoa(n int) string { return strconv.Itoa(n) }

// caFile is the file of the CA that signs every emulated workspace, which the
// task trusts as Agent.CAInfo (as an agent behind a TLS-inspecting proxy would).
func caFile(t *testing.T) string {
	_, file := emulator.TestCA(t)
	return file
}
