package emulator

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/files"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/ml"
)

// The helpers below are the test's side of the wire: they drive a workspace
// through databricks-sdk-go, as the tests of several packages do to set up
// and check state. A failure ends the test.

// Client is a databricks-sdk-go client of ws (SDKConfig: PAT auth, nothing
// read from the environment) for setting up and checking state. The SDK's
// default limit of 15 requests a second is lifted, since tests poll faster
// and on a simulated clock the limit would dominate; retries stop after 30 s.
func (ws *Workspace) Client(t testing.TB) *client.DatabricksClient {
	t.Helper()
	cfg := ws.SDKConfig()
	cfg.RateLimitPerSecond = 100000
	cfg.RetryTimeoutSeconds = 30
	c, err := client.New(cfg)
	if err != nil {
		t.Fatalf("emulator: SDK client: %v", err)
	}
	return c
}

// TrainedRun submits a one-task run of notebook, a training notebook whose
// Behaviour (with Train) the test has registered with OnNotebook, and waits
// for it to end, calling tick before each look (a ManualClock's Advance for
// a workspace on simulated time, a no-op on the real clock). It returns the
// MLflow run id the notebook passed to dbutils.notebook.exit, as
// DatabricksTrain hands it over, and the id of the task run. A run that does
// not succeed within 30 s of real time ends the test.
func (ws *Workspace) TrainedRun(t testing.TB, notebook string, tick func()) (mlflowRunID string, taskRunID int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api := jobs.NewJobs(ws.Client(t))
	sub, err := api.Submit(ctx, jobs.SubmitRun{RunName: "train", Tasks: []jobs.SubmitTask{{TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: notebook}}}})
	if err != nil {
		t.Fatalf("emulator: submitting %s: %v", notebook, err)
	}
	var run *jobs.Run
	for {
		tick()
		run, err = api.GetRun(ctx, jobs.GetRunRequest{RunId: sub.RunId})
		if err != nil {
			t.Fatalf("emulator: training run %d: %v", sub.RunId, err)
		}
		if l := run.State.LifeCycleState; l == jobs.RunLifeCycleStateTerminated || l == jobs.RunLifeCycleStateInternalError || l == jobs.RunLifeCycleStateSkipped {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("emulator: training run %d still %s", sub.RunId, run.State.LifeCycleState)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if run.State.ResultState != jobs.RunResultStateSuccess {
		t.Fatalf("emulator: training run %d ended %s %s: %s", sub.RunId, run.State.LifeCycleState, run.State.ResultState, run.State.StateMessage)
	}
	out, err := api.GetRunOutput(ctx, jobs.GetRunOutputRequest{RunId: run.Tasks[0].RunId})
	if err != nil {
		t.Fatalf("emulator: output of training run %d: %v", sub.RunId, err)
	}
	var exit struct {
		MLflowRunID string `json:"mlflow_run_id"`
	}
	if err := json.Unmarshal([]byte(out.NotebookOutput.Result), &exit); err != nil || exit.MLflowRunID == "" {
		t.Fatalf("emulator: training run %d exited without an MLflow run id: %q", sub.RunId, out.NotebookOutput.Result)
	}
	return exit.MLflowRunID, run.Tasks[0].RunId
}

// RegisterModel registers a new version of the workspace registry model
// name (creating the model if needed) from a minimal MLflow model put in
// DBFS at dbfs:/models/<name>, through the API as a client would. The
// version is READY once Options.RegistrationDelay has passed on the
// workspace's clock (a ManualClock's Advance). It returns the version.
func (ws *Workspace) RegisterModel(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := ws.Client(t)
	mlmodel := base64.StdEncoding.EncodeToString([]byte("artifact_path: model\nflavors:\n  python_function: {}\n"))
	if err := files.NewDbfs(c).Put(ctx, files.Put{Path: "dbfs:/models/" + name + "/MLmodel", Overwrite: true, Contents: mlmodel}); err != nil {
		t.Fatalf("emulator: putting the MLmodel of %s: %v", name, err)
	}
	reg := ml.NewModelRegistry(c)
	if _, err := reg.CreateModel(ctx, ml.CreateModelRequest{Name: name}); err != nil && !errors.Is(err, apierr.ErrResourceAlreadyExists) {
		t.Fatalf("emulator: creating model %s: %v", name, err)
	}
	mv, err := reg.CreateModelVersion(ctx, ml.CreateModelVersionRequest{Name: name, Source: "dbfs:/models/" + name})
	if err != nil {
		t.Fatalf("emulator: registering a version of %s: %v", name, err)
	}
	return mv.ModelVersion.Version
}
