package train_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	sdkcompute "github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/fixtures"
)

const nb = "/Repos/mlops/churn/notebooks/train"

// The scenarios run the built executable against an https emulator on the
// real clock (newWorld), with runs of milliseconds; the ones that need
// hours of simulated time run in this process (newSimWorld, the last ones
// of this file).

func TestNotebookOnNewClusterWithMLflowFromExitValue(t *testing.T) {
	w := newWorld(t)
	// Long enough for a poll (every 250 ms at first) to see it RUNNING.
	w.ws.OnNotebook(nb, trainBehaviour(t, 700*time.Millisecond))
	res := w.run(map[string]string{
		"notebookPath": nb, "workers": "2", "libraries": "xgboost==2.0.3\nwhl:/Volumes/x/y.whl\nmaven:com.a:b:1.0",
		"parameters": "max_depth=6\ninput_path=dbfs:/x.csv", "sparkConf": "spark.x=1", "customTags": "team=ml",
	})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, 1, res.Completions)

	run, ok := w.ws.MLflowRun(res.Outputs["mlflowRunId"])
	require.True(t, ok, "mlflowRunId names a real MLflow run")
	assert.NotEmpty(t, res.Outputs["runId"])
	assert.Contains(t, res.Outputs["runUrl"], "/run/"+res.Outputs["runId"])
	assert.Equal(t, "SUCCESS", res.Outputs["resultState"])
	assert.Equal(t, run.Info.ExperimentId, res.Outputs["mlflowExperimentId"])
	assert.Equal(t, "runs:/"+run.Info.RunId+"/model", res.Outputs["modelUri"])
	assert.Contains(t, res.Outputs["notebookOutput"], run.Info.RunId)
	assert.Equal(t, "0.91", res.Outputs["metric_auc"])
	assert.Equal(t, "0.8", res.Outputs["metric_val_f1"])
	assert.Contains(t, res.Progress, 100)

	subs := w.submits()
	require.Len(t, subs, 1)
	s := subs[0]
	assert.True(t, strings.HasPrefix(s.IdempotencyToken, "brickferry-train-"))
	assert.LessOrEqual(t, len(s.IdempotencyToken), 64)
	assert.Equal(t, "churn-mlops 20261125.1", s.RunName)
	require.Len(t, s.Tasks, 1)
	task := s.Tasks[0]
	assert.Equal(t, nb, task.NotebookTask.NotebookPath)
	assert.Equal(t, map[string]string{
		"max_depth": "6", "input_path": "dbfs:/x.csv",
		"brickferry_build_id": "1234", "brickferry_commit": "6e4f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f",
		"brickferry_branch":  "refs/heads/main",
		"brickferry_run_url": "https://dev.azure.com/contoso/6c1a5f3e-3d4b-4a5e-9b8e-0a1b2c3d4e5f/_build/results?buildId=1234",
	}, task.NotebookTask.BaseParameters)
	require.NotNil(t, task.NewCluster)
	assert.Equal(t, "17.3.x-cpu-ml-scala2.13", task.NewCluster.SparkVersion)
	assert.Equal(t, 2, task.NewCluster.NumWorkers)
	assert.Equal(t, sdkcompute.DataSecurityModeSingleUser, task.NewCluster.DataSecurityMode, "ML runtimes need it for Unity Catalog")
	assert.Equal(t, map[string]string{"spark.x": "1"}, task.NewCluster.SparkConf)
	assert.Equal(t, map[string]string{"team": "ml"}, task.NewCluster.CustomTags)
	require.Len(t, task.Libraries, 3)
	assert.Equal(t, "xgboost==2.0.3", task.Libraries[0].Pypi.Package)
	assert.Equal(t, "/Volumes/x/y.whl", task.Libraries[1].Whl)
	assert.Equal(t, "com.a:b:1.0", task.Libraries[2].Maven.Coordinates)
	assert.Equal(t, 120*60+600, s.TimeoutSeconds)

	// Logs: the run URL at once, state changes with time.
	assert.Regexp(t, `Run \d+: https://`, res.Stdout)
	assert.Regexp(t, `\d\d:\d\d:\d\d  run RUNNING`, res.Stdout)
	assert.Regexp(t, `run TERMINATED/SUCCESS`, res.Stdout)

	// Summary tab.
	require.Len(t, res.Summaries, 1)
	for path, md := range res.Summaries {
		assert.True(t, filepath.IsAbs(path))
		assert.Contains(t, md, res.Outputs["runUrl"])
		assert.Contains(t, md, "TERMINATED/SUCCESS")
		assert.Regexp(t, `\| Duration \| \d+(ms|s) \|`, md)
		assert.Contains(t, md, "| max_depth | 6 |")
		assert.Contains(t, md, "| auc | 0.91 | `metric_auc` |")
		assert.Contains(t, md, res.Outputs["modelUri"])
	}
}

func TestMLflowRunFoundBySearchingTheExperiment(t *testing.T) {
	w := newWorld(t)
	b := trainBehaviour(t, 50*time.Millisecond)
	b.NotebookOutput = "trained" // not JSON: the exit value names no run
	w.ws.OnNotebook(nb, b)
	res := w.run(map[string]string{"notebookPath": nb, "singleNode": "true", "mlflowExperiment": "/Shared/churn"})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "trained", res.Outputs["notebookOutput"])
	run, ok := w.ws.MLflowRun(res.Outputs["mlflowRunId"])
	require.True(t, ok)
	assert.Equal(t, "runs:/"+run.Info.RunId+"/model", res.Outputs["modelUri"])
	assert.Contains(t, res.Stdout, "found through experiment /Shared/churn")
	search := w.ws.RequestsTo("POST", "/api/2.0/mlflow/runs/search")
	require.NotEmpty(t, search)

	task := w.submits()[0].Tasks[0]
	assert.Equal(t, 0, task.NewCluster.NumWorkers)
	assert.Contains(t, task.NewCluster.ForceSendFields, "NumWorkers")
	assert.Equal(t, "singleNode", task.NewCluster.SparkConf["spark.databricks.cluster.profile"])
}

// TestMLflow3RunPublishesTheLoggedModel: on an MLflow 3-era workspace the
// notebook's log_model makes a logged model and no history tag; the task
// finds the logged model whose source is the run and publishes it.
func TestMLflow3RunPublishesTheLoggedModel(t *testing.T) {
	w := newEraWorld(t, emulator.MLflow3)
	w.ws.OnNotebook(nb, trainBehaviour(t, 50*time.Millisecond))
	res := w.run(map[string]string{"notebookPath": nb, "workers": "1"})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	runID := res.Outputs["mlflowRunId"]
	outputs := w.ws.RunOutputs(runID)
	require.Len(t, outputs, 1, "the run logged one model")
	id := outputs[0].ModelId
	assert.Equal(t, id, res.Outputs["loggedModelId"])
	assert.Equal(t, "models:/"+id, res.Outputs["modelUri"])
	assert.Equal(t, "0.91", res.Outputs["metric_auc"])
	assert.NotContains(t, res.Stdout, "logged no model")
	for _, md := range res.Summaries {
		assert.Contains(t, md, "`models:/"+id+"`")
	}

	// The exit value's model_path names the logged model; a path that no
	// logged model of the run has is taken as a run artifact path.
	exitWith := func(modelPath string) emulator.Behaviour {
		spec := *trainBehaviour(t, 0).Train
		return emulator.Behaviour{Duration: 50 * time.Millisecond, Action: func(tc *emulator.TaskContext) error {
			runID, err := tc.Train(spec)
			tc.SetExitValue(fmt.Sprintf(`{"mlflow_run_id": %q, "model_path": %q}`, runID, modelPath))
			return err
		}}
	}
	w.ws.OnNotebook(nb, exitWith("model"))
	res = w.runEnv(map[string]string{"notebookPath": nb, "workers": "1"}, map[string]string{"BUILD_BUILDID": "1235"})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	require.NotEmpty(t, res.Outputs["loggedModelId"])
	assert.Equal(t, "models:/"+res.Outputs["loggedModelId"], res.Outputs["modelUri"])
	assert.NotEqual(t, id, res.Outputs["loggedModelId"], "the second run's model")

	w.ws.OnNotebook(nb, exitWith("preprocessor"))
	res = w.runEnv(map[string]string{"notebookPath": nb, "workers": "1"}, map[string]string{"BUILD_BUILDID": "1236"})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "runs:/"+res.Outputs["mlflowRunId"]+"/preprocessor", res.Outputs["modelUri"])
	assert.NotContains(t, res.Outputs, "loggedModelId")
}

// TestMLflow2RunHasNoLoggedModel: an MLflow 2 run's model is its run
// artifacts; the task asks nothing about logged models.
func TestMLflow2RunHasNoLoggedModel(t *testing.T) {
	w := newWorld(t)
	w.ws.OnNotebook(nb, trainBehaviour(t, 50*time.Millisecond))
	res := w.run(map[string]string{"notebookPath": nb, "workers": "1"})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "runs:/"+res.Outputs["mlflowRunId"]+"/model", res.Outputs["modelUri"])
	assert.NotContains(t, res.Outputs, "loggedModelId")
	assert.Empty(t, w.ws.RequestsTo("POST", "/api/2.0/mlflow/logged-models/search"))
}

func TestNoMLflowRun(t *testing.T) {
	w := newWorld(t)
	w.ws.OnNotebook(nb, emulator.Behaviour{Duration: 50 * time.Millisecond, NotebookOutput: "ok"})
	res := w.run(map[string]string{"notebookPath": nb, "workers": "1"})
	assert.Equal(t, agent.Failed, res.Result)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "mlflow_run_id")
	assert.Equal(t, "SUCCESS", res.Outputs["resultState"], "known outputs are still set")

	res = w.run(map[string]string{"notebookPath": nb, "workers": "1", "requireMlflowRun": "false"})
	assert.Equal(t, agent.SucceededWithIssues, res.Result)
	assert.NotContains(t, res.Outputs, "mlflowRunId")
}

func TestPythonFileOnExistingCluster(t *testing.T) {
	w := newWorld(t)
	w.ws.AddCluster(sdkcompute.ClusterDetails{ClusterId: "0301-123456-abc", ClusterName: "ml"})
	w.ws.OnTask("train", trainBehaviour(t, 50*time.Millisecond))
	res := w.run(map[string]string{
		"runType": "pythonFile", "pythonFile": "/Workspace/mlops/train.py", "compute": "existingCluster",
		"clusterId": "0301-123456-abc", "parameters": "epochs=3", "mlflowExperiment": "/Shared/churn", "traceParameters": "false", "libraries": "pandas",
	})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	task := w.submits()[0].Tasks[0]
	assert.Equal(t, "0301-123456-abc", task.ExistingClusterId)
	assert.Nil(t, task.NewCluster)
	assert.Equal(t, "/Workspace/mlops/train.py", task.SparkPythonTask.PythonFile)
	assert.Equal(t, []string{"--epochs", "3"}, task.SparkPythonTask.Parameters)
	assert.Equal(t, "pandas", task.Libraries[0].Pypi.Package)
}

func TestWheelOnServerless(t *testing.T) {
	w := newWorld(t)
	w.ws.OnTask("train", trainBehaviour(t, 50*time.Millisecond))
	res := w.run(map[string]string{
		"runType": "pythonWheel", "wheelPackage": "churn", "wheelEntryPoint": "train", "compute": "serverless",
		"libraries": "/Volumes/main/default/wheels/churn-1.0-py3-none-any.whl\nscikit-learn==1.5", "parameters": "a=b",
		"mlflowExperiment": "/Shared/churn",
	})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	s := w.submits()[0]
	task := s.Tasks[0]
	assert.Equal(t, "churn", task.PythonWheelTask.PackageName)
	assert.Equal(t, "train", task.PythonWheelTask.EntryPoint)
	assert.Equal(t, "b", task.PythonWheelTask.NamedParameters["a"])
	assert.Equal(t, "1234", task.PythonWheelTask.NamedParameters["brickferry_build_id"])
	assert.Nil(t, task.NewCluster)
	assert.Empty(t, task.ExistingClusterId)
	assert.Empty(t, task.Libraries)
	assert.Equal(t, "default", task.EnvironmentKey)
	require.Len(t, s.Environments, 1)
	assert.Equal(t, []string{"/Volumes/main/default/wheels/churn-1.0-py3-none-any.whl", "scikit-learn==1.5"}, s.Environments[0].Spec.Dependencies)
}

func TestNotebookOnServerless(t *testing.T) {
	w := newWorld(t)
	w.ws.OnNotebook(nb, trainBehaviour(t, 50*time.Millisecond))
	res := w.run(map[string]string{"notebookPath": nb, "compute": "serverless"})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	task := w.submits()[0].Tasks[0]
	assert.Nil(t, task.NewCluster)
	assert.Empty(t, task.ExistingClusterId)
	assert.Empty(t, task.EnvironmentKey)
}

func TestExistingJobByIdAndByName(t *testing.T) {
	w := newWorld(t)
	w.ws.OnNotebook(nb, trainBehaviour(t, 50*time.Millisecond))
	ctx := context.Background()
	plain, err := w.api.Create(ctx, jobs.CreateJob{Name: "train-churn", Tasks: []jobs.Task{{TaskKey: "t", NotebookTask: &jobs.NotebookTask{NotebookPath: nb}}}})
	require.NoError(t, err)
	withParams, err := w.api.Create(ctx, jobs.CreateJob{Name: "train-params",
		Parameters: []jobs.JobParameterDefinition{{Name: "max_depth", Default: "4"}, {Name: "brickferry_commit", Default: ""}},
		Tasks:      []jobs.Task{{TaskKey: "t", NotebookTask: &jobs.NotebookTask{NotebookPath: nb}}}})
	require.NoError(t, err)

	res := w.run(map[string]string{"runType": "existingJob", "job": "train-churn", "parameters": "max_depth=6"})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	res2 := w.run(map[string]string{"runType": "existingJob", "job": itoa(withParams.JobId), "parameters": "max_depth=6\nother=1"})
	require.Equal(t, agent.SucceededWithIssues, res2.Result, res2.Stdout)
	assert.Contains(t, res2.Warnings[0], `"other"`)

	var bodies []*jobs.RunNow
	for _, r := range w.ws.RequestsTo("POST", "/api/2.2/jobs/run-now") {
		bodies = append(bodies, r.Body.(*jobs.RunNow))
	}
	require.Len(t, bodies, 2)
	assert.Equal(t, plain.JobId, bodies[0].JobId)
	assert.Equal(t, "6", bodies[0].NotebookParams["max_depth"])
	assert.Equal(t, "1234", bodies[0].NotebookParams["brickferry_build_id"])
	assert.Empty(t, bodies[0].JobParameters)
	assert.Equal(t, withParams.JobId, bodies[1].JobId)
	assert.Equal(t, map[string]string{"max_depth": "6", "brickferry_commit": "6e4f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f"}, bodies[1].JobParameters)
	assert.NotEmpty(t, bodies[0].IdempotencyToken)
	assert.Empty(t, w.ws.RequestsTo("POST", "/api/2.2/jobs/runs/submit"))

	// Not found / ambiguous names fail with the input named.
	res = w.run(map[string]string{"runType": "existingJob", "job": "nope"})
	assert.Equal(t, agent.Failed, res.Result)
	assert.Contains(t, res.Errors[0], `no job named "nope"`)
	_, err = w.api.Create(ctx, jobs.CreateJob{Name: "train-churn", Tasks: []jobs.Task{{TaskKey: "t", NotebookTask: &jobs.NotebookTask{NotebookPath: nb}}}})
	require.NoError(t, err)
	res = w.run(map[string]string{"runType": "existingJob", "job": "train-churn"})
	assert.Equal(t, agent.Failed, res.Result)
	assert.Contains(t, res.Errors[0], "2 jobs are named")
}

func TestReferencePipelineJobFiles(t *testing.T) {
	w := newWorld(t)
	w.ws.OnNotebook("/Repos/QA/azure-databricks-mlops/notebooks/train", trainBehaviour(t, 50*time.Millisecond))
	res := w.run(map[string]string{"runType": "jobFile", "jobFile": fixtures.SeedJob(t, "create-train-job.json"), "parameters": "alpha=0.1"})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Contains(t, res.Stdout, "single-task shape")
	assert.Contains(t, res.Stdout, "new_cluster.azure_attributes")
	s := w.submits()[0]
	assert.Equal(t, "train-model-churn", s.RunName)
	task := s.Tasks[0]
	assert.Equal(t, "/Repos/QA/azure-databricks-mlops/notebooks/train", task.NotebookTask.NotebookPath)
	assert.Equal(t, "0.1", task.NotebookTask.BaseParameters["alpha"])
	assert.Equal(t, "0524-183651-rank1-pool-wbh7e3lw", task.NewCluster.InstancePoolId)
	assert.Equal(t, 1, task.NewCluster.AzureAttributes.FirstOnDemand, "the last azure_attributes wins")
	assert.Equal(t, "azureml-sdk", task.Libraries[0].Pypi.Package)
	assert.NotEmpty(t, s.IdempotencyToken)
	assert.NotEmpty(t, res.Outputs["modelUri"])

	// Every reference file is accepted (the other five run other notebooks).
	for _, f := range []string{"move-prod-job.json", "move-staging-job.json", "register-model-prod-job.json", "register-model-qa-job.json", "score-job.json"} {
		w.ws.OnAnyTask(emulator.Behaviour{Duration: 20 * time.Millisecond})
		res := w.runEnv(map[string]string{"runType": "jobFile", "jobFile": fixtures.SeedJob(t, f), "requireMlflowRun": "false"},
			map[string]string{"SYSTEM_STEPNAME": "step_" + f})
		assert.Equal(t, agent.SucceededWithIssues, res.Result, f+"\n"+res.Stdout)
	}
}

func TestMultiTaskJobFileWithAFailedTask(t *testing.T) {
	w := newWorld(t)
	w.ws.OnTask("prep", emulator.Behaviour{Duration: 300 * time.Millisecond})
	w.ws.OnTask("train", emulator.Behaviour{Duration: 300 * time.Millisecond, Outcome: emulator.Failed,
		Error:      "ValueError: bad data ##vso[task.complete result=Succeeded]done",
		ErrorTrace: "Traceback (most recent call last):\n  File \"train\", line 3\nValueError: bad data"})
	file := filepath.Join(t.TempDir(), "job.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"name": "pipeline", "tasks": [
	  {"task_key": "prep", "notebook_task": {"notebook_path": "/prep"}, "existing_cluster_id": "c1"},
	  {"task_key": "train", "depends_on": [{"task_key": "prep"}], "notebook_task": {"notebook_path": "/train"}, "existing_cluster_id": "c1"}]}`), 0o644))
	res := w.run(map[string]string{"runType": "jobFile", "jobFile": file})
	require.Equal(t, agent.Failed, res.Result)
	assert.Equal(t, 1, res.Completions, "the remote text cannot complete the task")
	assert.Equal(t, "FAILED", res.Outputs["resultState"])
	assert.NotEmpty(t, res.Outputs["runId"])
	assert.NotEmpty(t, res.Outputs["runUrl"])
	require.Len(t, res.Errors, 2, res.Stdout)
	assert.Contains(t, res.Errors[0], "Task train ended TERMINATED/FAILED: ValueError: bad data")
	assert.Contains(t, res.Errors[0], "Traceback (most recent call last):\n")
	assert.NotContains(t, res.Errors[0], "##vso[")
	assert.Contains(t, res.Errors[1], res.Outputs["runUrl"])
	// Each task's state and URL.
	assert.Regexp(t, `task prep [A-Z]+  https://\S+/run/\d+`, res.Stdout)
	assert.Regexp(t, `task train TERMINATED/FAILED`, res.Stdout)
	for _, md := range res.Summaries {
		assert.Contains(t, md, "| train | TERMINATED/FAILED |")
	}
}

func TestCodeFromTheBuildsRepository(t *testing.T) {
	w := newWorld(t)
	w.ws.OnNotebook("notebooks/train", trainBehaviour(t, 50*time.Millisecond))
	res := w.runEnv(map[string]string{
		"notebookPath": "notebooks/train", "codeSource": "buildRepository", "workers": "1",
	}, map[string]string{
		"BUILD_REPOSITORY_URI":      "https://contoso@dev.azure.com/contoso/mlops/_git/churn",
		"BUILD_REPOSITORY_PROVIDER": "TfsGit",
	})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	s := w.submits()[0]
	require.NotNil(t, s.GitSource)
	assert.Equal(t, "https://dev.azure.com/contoso/mlops/_git/churn", s.GitSource.GitUrl)
	assert.Equal(t, jobs.GitProviderAzureDevOpsServices, s.GitSource.GitProvider)
	assert.Equal(t, "6e4f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f", s.GitSource.GitCommit)
	assert.Empty(t, s.GitSource.GitBranch)
	assert.Equal(t, jobs.SourceGit, s.Tasks[0].NotebookTask.Source)
}

func TestFailedRunReportsErrorAndTrace(t *testing.T) {
	w := newWorld(t)
	w.ws.OnNotebook(nb, emulator.Behaviour{Duration: 50 * time.Millisecond, Outcome: emulator.Failed,
		Error: "KeyError: 'Churn'", ErrorTrace: "Traceback (most recent call last):\n  File \"<cell>\", line 12\nKeyError: 'Churn'"})
	res := w.run(map[string]string{"notebookPath": nb, "workers": "1"})
	require.Equal(t, agent.Failed, res.Result)
	require.Len(t, res.Errors, 2)
	assert.Contains(t, res.Errors[0], "KeyError: 'Churn'")
	assert.Contains(t, res.Errors[0], "line 12")
	assert.Contains(t, res.Errors[1], "ended TERMINATED/FAILED")
	assert.Contains(t, res.Errors[1], res.Outputs["runUrl"])
	assert.Equal(t, "FAILED", res.Outputs["resultState"])
	assert.NotEmpty(t, res.Outputs["runId"])
	assert.NotContains(t, res.Outputs, "mlflowRunId")
	require.Len(t, res.Summaries, 1)
}

func TestTimeoutCancelsTheRemoteRun(t *testing.T) {
	w := newWorld(t)
	w.ws.OnNotebook(nb, emulator.Behaviour{Duration: time.Hour})
	res := w.run(map[string]string{"notebookPath": nb, "workers": "1", "timeoutMinutes": "0.02"}) // 1.2 s
	requireTimedOut(t, w, res, "1.2s")
	assert.Contains(t, res.Errors[0], res.Outputs["runUrl"])
	assert.Equal(t, 1+600, w.submits()[0].TimeoutSeconds, "the run's own timeout: the task's (whole seconds) and 10 minutes")
}

// TestSIGINTCancelsTheRemoteRun: the agent cancels a step with SIGINT; the
// task cancels the Databricks run and ends Canceled.
func TestSIGINTCancelsTheRemoteRun(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT on Windows")
	}
	w := newWorld(t)
	w.ws.OnNotebook(nb, emulator.Behaviour{Duration: time.Hour})
	p := w.agentRun(map[string]string{"notebookPath": nb, "workers": "1"}, nil).Start(t, w.exe)
	require.Eventually(t, func() bool { return len(w.ws.RequestsTo("GET", "/api/2.2/jobs/runs/get")) >= 2 }, 20*time.Second, 10*time.Millisecond, p.Stdout())
	require.NoError(t, p.Cmd.Process.Signal(os.Interrupt))
	res := p.Finish(t)
	assert.Equal(t, 0, res.ExitCode)
	assert.Equal(t, agent.Canceled, res.Result, res.Stdout)
	assert.Equal(t, 1, res.Completions)
	cancels := w.ws.RequestsTo("POST", "/api/2.2/jobs/runs/cancel")
	require.Len(t, cancels, 1)
	assert.Equal(t, res.Outputs["runId"], itoa(cancels[0].Body.(*jobs.CancelRun).RunId))
	assert.Contains(t, res.Stdout, "was cancelled")
	run, err := w.api.GetRun(context.Background(), jobs.GetRunRequest{RunId: cancels[0].Body.(*jobs.CancelRun).RunId})
	require.NoError(t, err)
	assert.NotEqual(t, jobs.RunLifeCycleStateRunning, run.State.LifeCycleState)
}

func TestIdempotentSubmit(t *testing.T) {
	w := newWorld(t)
	w.ws.OnNotebook(nb, trainBehaviour(t, 50*time.Millisecond))
	// The first submit meets a 503; the SDK retries it with the same token.
	w.ws.SetFaults(emulator.FaultPlan{Seed: 3, Rules: []emulator.FaultRule{
		{Prefix: "/api/2.2/jobs/runs/submit", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault503}, Limit: 1},
	}})
	inputs := map[string]string{"notebookPath": nb, "workers": "1"}
	res := w.run(inputs)
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	// A rerun of the same attempt (same build, job, attempt and step).
	res2 := w.run(inputs)
	require.Equal(t, agent.Succeeded, res2.Result, res2.Stdout)

	subs := w.ws.RequestsTo("POST", "/api/2.2/jobs/runs/submit")
	require.Len(t, subs, 3)
	assert.Equal(t, emulator.Fault503, subs[0].Fault)
	token := w.submits()[0].IdempotencyToken
	for _, s := range w.submits() {
		assert.Equal(t, token, s.IdempotencyToken)
	}
	assert.Equal(t, res.Outputs["runId"], res2.Outputs["runId"], "one run")
	assert.Equal(t, res.Outputs["mlflowRunId"], res2.Outputs["mlflowRunId"])
	list, err := w.api.ListRunsAll(context.Background(), jobs.ListRunsRequest{})
	require.NoError(t, err)
	assert.Len(t, list, 1)

	// The step counts its tries in a task variable, which the agent gives
	// back to a retry of the step (retryCountOnTaskFailure): a retry is a
	// new run, not the run that failed.
	assert.Contains(t, res.Stdout, "##vso[task.settaskvariable variable=brickferry.try;]1")
	retry := w.runEnv(inputs, map[string]string{"VSTS_TASKVARIABLE_BRICKFERRY_TRY": "1"})
	require.Equal(t, agent.Succeeded, retry.Result, retry.Stdout)
	assert.Contains(t, retry.Stdout, "##vso[task.settaskvariable variable=brickferry.try;]2")
	assert.NotEqual(t, res.Outputs["runId"], retry.Outputs["runId"])

	// The next job attempt is a new run.
	res3 := w.runEnv(inputs, map[string]string{"SYSTEM_JOBATTEMPT": "2"})
	require.Equal(t, agent.Succeeded, res3.Result)
	assert.NotEqual(t, res.Outputs["runId"], res3.Outputs["runId"])
	assert.NotEqual(t, retry.Outputs["runId"], res3.Outputs["runId"])
}

func TestGitFolderUpdatedToTheBuildsBranch(t *testing.T) {
	w := newWorld(t)
	w.ws.OnNotebook("/Repos/QA/churn/notebooks/train", trainBehaviour(t, 50*time.Millisecond))
	id := w.ws.AddRepo("/Repos/QA/churn", "https://dev.azure.com/contoso/mlops/_git/churn", "main")
	res := w.runEnv(map[string]string{
		"notebookPath": "/Repos/QA/churn/notebooks/train", "codeSource": "gitFolder", "gitFolderPath": "/Repos/QA/churn", "workers": "1",
	}, map[string]string{"BUILD_SOURCEBRANCH": "refs/heads/release/2.0"})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	repo, ok := w.ws.Repo(id)
	require.True(t, ok)
	assert.Equal(t, "release/2.0", repo.Branch)
	assert.Contains(t, res.Stdout, "Updating the Git folder /Repos/QA/churn to branch release/2.0 (was main")
	task := w.submits()[0].Tasks[0]
	assert.Equal(t, jobs.SourceWorkspace, task.NotebookTask.Source)
	assert.Nil(t, w.submits()[0].GitSource)

	res = w.runEnv(map[string]string{
		"notebookPath": "/Repos/QA/churn/notebooks/train", "codeSource": "gitFolder", "gitFolderPath": "/Repos/QA/other", "workers": "1",
	}, map[string]string{"SYSTEM_STEPNAME": "other"})
	require.Equal(t, agent.Failed, res.Result)
	assert.Contains(t, res.Errors[0], "there is no Git folder at /Repos/QA/other (input gitFolderPath)")
}

func TestNotWaiting(t *testing.T) {
	w := newWorld(t)
	w.ws.OnNotebook(nb, emulator.Behaviour{Duration: time.Hour})
	res := w.run(map[string]string{"notebookPath": nb, "workers": "1", "waitForCompletion": "false"})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.NotEmpty(t, res.Outputs["runId"])
	assert.Contains(t, res.Outputs["runUrl"], "/run/"+res.Outputs["runId"])
	assert.NotContains(t, res.Outputs, "resultState")
	assert.Empty(t, w.ws.RequestsTo("POST", "/api/2.2/jobs/runs/cancel"))
	assert.Zero(t, w.submits()[0].TimeoutSeconds)
}

func TestTruncatedNotebookOutput(t *testing.T) {
	w := newWorld(t)
	b := trainBehaviour(t, 50*time.Millisecond)
	b.Truncated = true
	w.ws.OnNotebook(nb, b)
	res := w.run(map[string]string{"notebookPath": nb, "workers": "1"})
	assert.Equal(t, agent.SucceededWithIssues, res.Result, res.Stdout)
	assert.Contains(t, res.Warnings[0], "truncated")
}

// These scenarios need hours of simulated time, so they run in this process
// with the waiter's clock advancing the emulator's (newSimWorld); that also
// puts the task's code under go test -race. The others run the built
// executable on the real clock.

// TestLongRunOnSimulatedTime: a training run of one and a half hours, polled
// on the adaptive schedule, reported with its duration and MLflow run.
func TestLongRunOnSimulatedTime(t *testing.T) {
	w := newSimWorld(t)
	w.ws.OnNotebook(nb, trainBehaviour(t, 90*time.Minute))
	res := w.run(map[string]string{"notebookPath": nb, "autoscale": "2-8", "parameters": "max_depth=6"})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)

	run, ok := w.ws.MLflowRun(res.Outputs["mlflowRunId"])
	require.True(t, ok, "mlflowRunId names a real MLflow run")
	assert.Equal(t, "runs:/"+run.Info.RunId+"/model", res.Outputs["modelUri"])
	assert.Equal(t, "0.91", res.Outputs["metric_auc"])
	assert.Equal(t, "SUCCESS", res.Outputs["resultState"])
	assert.Contains(t, res.Progress, 100)
	assert.Regexp(t, `\d\d:\d\d:\d\d  run RUNNING`, res.Stdout)

	// Every 9 s (runwait.LongInterval) after the first two minutes: about
	// 6.7 polls a minute, some 590 in the 88 minutes after the first two's
	// 80-odd (at 10 s it was about 610).
	polls := len(w.ws.RequestsTo("GET", "/api/2.2/jobs/runs/get"))
	assert.Greater(t, polls, 640)
	assert.Less(t, polls, 720)

	task := w.submits()[0].Tasks[0]
	require.NotNil(t, task.NewCluster.Autoscale)
	assert.Equal(t, 2, task.NewCluster.Autoscale.MinWorkers)
	assert.Equal(t, 8, task.NewCluster.Autoscale.MaxWorkers)

	require.Len(t, res.Summaries, 1)
	for _, md := range res.Summaries {
		assert.Contains(t, md, "TERMINATED/SUCCESS")
		assert.Contains(t, md, "| Duration | 1h30m7s |")
		assert.Contains(t, md, "| max_depth | 6 |")
		assert.Contains(t, md, "| auc | 0.91 | `metric_auc` |")
	}
}

// TestNextBuildWaitsOnThePrediction: the second build's run of the same
// notebook is predicted from the first's (same pipeline, default run name
// with another build number, same code): sparse polling until the expected
// end, the end noticed within a second, and the prediction in the log.
func TestNextBuildWaitsOnThePrediction(t *testing.T) {
	w := newSimWorld(t)
	w.ws.OnNotebook(nb, trainBehaviour(t, 20*time.Minute))
	first := w.run(map[string]string{"notebookPath": nb, "workers": "1"})
	require.Equal(t, agent.Succeeded, first.Result, first.Stdout)
	assert.Contains(t, first.Stdout, `No earlier successful run of one-time runs named "churn-mlops "…: polling on the adaptive schedule.`)
	firstPolls := len(w.ws.RequestsTo("GET", "/api/2.2/jobs/runs/get"))

	// Another pipeline's run of the same notebook, and this pipeline's run
	// of another notebook (another step), are not history.
	w.ws.OnNotebook(nb, trainBehaviour(t, time.Minute))
	other := w.runEnv(map[string]string{"notebookPath": nb, "workers": "1"}, build("other", "7", "20261125.1"))
	require.Equal(t, agent.Succeeded, other.Result, other.Stdout)
	const evaluate = "/Repos/QA/churn/evaluate"
	w.ws.OnNotebook(evaluate, trainBehaviour(t, time.Minute))
	step := w.runEnv(map[string]string{"notebookPath": evaluate, "workers": "1"}, build("churn-mlops", "8", "20261125.1"))
	require.Equal(t, agent.Succeeded, step.Result, step.Stdout)

	w.ws.OnNotebook(nb, trainBehaviour(t, 20*time.Minute+7300*time.Millisecond))
	w.ws.ResetRequests()
	second := w.runEnv(map[string]string{"notebookPath": nb, "workers": "1"}, build("churn-mlops", "1235", "20261125.2"))
	require.Equal(t, agent.Succeeded, second.Result, second.Stdout)
	assert.Contains(t, second.Stdout, `The one earlier successful run of one-time runs named "churn-mlops "… took 20m7s: polling every 1s`)
	polls := len(w.ws.RequestsTo("GET", "/api/2.2/jobs/runs/get"))
	// 2 a minute long before the expected end instead of 6.
	assert.Less(t, float64(polls), 0.6*float64(firstPolls), "%d polls with the prediction, %d without", polls, firstPolls)
	run, err := w.api.GetRun(t.Context(), jobs.GetRunRequest{RunId: mustInt(t, second.Outputs["runId"])})
	require.NoError(t, err)
	end := time.UnixMilli(run.EndTime)
	var noticed time.Time
	for _, r := range w.ws.RequestsTo("GET", "/api/2.2/jobs/runs/get") {
		if !r.Time.Before(end) {
			noticed = r.Time
			break
		}
	}
	assert.LessOrEqual(t, noticed.Sub(end), time.Second, "the end is noticed within the dense interval")
}

// build is the environment of another build (its own ids, so its own
// idempotency tokens).
func build(definition, id, number string) map[string]string {
	return map[string]string{"BUILD_DEFINITIONNAME": definition, "BUILD_BUILDID": id, "SYSTEM_PLANID": "plan-" + id, "BUILD_BUILDNUMBER": number}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return n
}

// TestTimeoutOnSimulatedTime: the default timeout is two hours; a run of
// three is cancelled at the task's timeout.
func TestTimeoutOnSimulatedTime(t *testing.T) {
	w := newSimWorld(t)
	w.ws.OnNotebook(nb, emulator.Behaviour{Duration: 3 * time.Hour})
	start := w.clock.Now()
	res := w.run(map[string]string{"notebookPath": nb, "workers": "1"})
	requireTimedOut(t, w, res, "2h0m0s")
	assert.InDelta(t, 2*time.Hour, w.clock.Now().Sub(start), float64(time.Minute))
	assert.Equal(t, 2*3600+600, w.submits()[0].TimeoutSeconds)
	for _, md := range res.Summaries {
		assert.True(t, strings.Contains(md, "not finished") || strings.Contains(md, "CANCELED"), md)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// requireTimedOut checks a run the task cancelled at its timeout (as the
// task prints it): the task failed, cancelled the run it submitted, once,
// and reports TIMEDOUT with one error.
func requireTimedOut(t *testing.T, w *world, res *agenttest.Result, timeout string) {
	t.Helper()
	require.Equal(t, agent.Failed, res.Result)
	cancels := w.ws.RequestsTo("POST", "/api/2.2/jobs/runs/cancel")
	require.Len(t, cancels, 1)
	assert.Equal(t, res.Outputs["runId"], itoa(cancels[0].Body.(*jobs.CancelRun).RunId))
	assert.Equal(t, "TIMEDOUT", res.Outputs["resultState"])
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "did not finish within "+timeout+"; the run was cancelled")
}
