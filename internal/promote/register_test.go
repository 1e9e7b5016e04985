package promote_test

import (
	"maps"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/cli"
	"github.com/brickferry/brickferry/internal/promote"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/tasks"
)

func registerInputs(runID string) map[string]string {
	return map[string]string{
		"command": "register", "modelName": "churn", "modelUri": "runs:/" + runID + "/model",
		"description": "Churn model trained by the pipeline", "versionTags": "team=mlops\nowner = data-science",
	}
}

func modelVersion(t *testing.T, ws *emulator.Workspace, name, v string) ml.ModelVersion {
	t.Helper()
	resp, err := ml.NewModelRegistry(sdk(t, ws)).GetModelVersion(ctx(t), ml.GetModelVersionRequest{Name: name, Version: v})
	require.NoError(t, err)
	return *resp.ModelVersion
}

func tags(mv ml.ModelVersion) map[string]string {
	out := map[string]string{}
	for _, t := range mv.Tags {
		out[t.Key] = t.Value
	}
	return out
}

func TestRegisterCreatesModelAndReadyVersion(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{})
	runID := train(t, ws, map[string]float64{"auc": 0.91})

	res := run(t, ws, registerInputs(runID))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "churn", res.Outputs["modelName"])
	assert.Equal(t, "1", res.Outputs["modelVersion"])
	assert.Equal(t, "models:/churn/1", res.Outputs["modelUri"])
	assert.Equal(t, "None", res.Outputs["stage"])
	assert.Equal(t, "false", res.Outputs["reused"])

	mv := modelVersion(t, ws, "churn", "1")
	assert.Equal(t, ml.ModelVersionStatusReady, mv.Status)
	assert.Equal(t, runID, mv.RunId)
	run, _ := ws.MLflowRun(runID)
	assert.Equal(t, run.Info.ArtifactUri+"/model", mv.Source, "runs:/ is resolved to the run's artifact location")
	assert.Equal(t, "Churn model trained by the pipeline", mv.Description)
	tg := tags(mv)
	assert.Equal(t, "mlops", tg["team"])
	assert.Equal(t, "data-science", tg["owner"])
	assert.Equal(t, "1234", tg["brickferry_build_id"])
	assert.Equal(t, "6e4f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f", tg["brickferry_commit"])
	assert.Contains(t, tg["brickferry_run_url"], "_build/results?buildId=1234")
	assert.Equal(t, runID, tg["brickferry_model_run_id"])
	assert.Equal(t, "register", tg["brickferry_action"])

	require.Len(t, res.Summaries, 1)
	for _, md := range res.Summaries {
		assert.Contains(t, md, "| **[1]("+ws.URL()+"/ml/models/churn/versions/1)** | None | READY |")
		assert.Contains(t, md, "/ml/experiments/")
	}
}

func TestRegisterTwiceReusesTheVersion(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{})
	runID := train(t, ws, map[string]float64{"auc": 0.91})
	first := run(t, ws, registerInputs(runID))
	require.Equal(t, agent.Succeeded, first.Result, first.Stdout)

	ws.ResetRequests()
	second := run(t, ws, registerInputs(runID))
	require.Equal(t, agent.Succeeded, second.Result, second.Stdout)
	assert.Equal(t, "1", second.Outputs["modelVersion"])
	assert.Equal(t, "true", second.Outputs["reused"])
	assert.Contains(t, second.Stdout, "Version 1 of churn was already registered from runs:/"+runID+"/model")
	assert.Zero(t, ws.Writes(), "the same pipeline run registering the same model again changes nothing")

	// Another run of the pipeline: the version is reused and its lineage
	// names the new pipeline run.
	ws.ResetRequests()
	r := agentRun(t, ws, registerInputs(runID))
	r.Env["BUILD_BUILDID"] = "1300"
	rerun := r.Exec(t, agenttest.Executable(t))
	require.Equal(t, agent.Succeeded, rerun.Result, rerun.Stdout)
	assert.Equal(t, "1", rerun.Outputs["modelVersion"])
	assert.Empty(t, ws.RequestsTo(http.MethodPost, "/api/2.0/mlflow/model-versions/create"))
	assert.Equal(t, "1300", tags(modelVersion(t, ws, "churn", "1"))["brickferry_build_id"])

	// A new training run gives a new version.
	other := train(t, ws, map[string]float64{"auc": 0.93})
	third := run(t, ws, registerInputs(other))
	require.Equal(t, agent.Succeeded, third.Result, third.Stdout)
	assert.Equal(t, "2", third.Outputs["modelVersion"])
	assert.Equal(t, "false", third.Outputs["reused"])
}

func TestRegisterFailedRegistrationGivesTheServersReason(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{})
	runID := train(t, ws, nil)
	ws.FailRegistration("churn", "The model flavor is not supported by this registry")

	res := run(t, ws, registerInputs(runID))
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "version 1 of churn failed to register (FAILED_REGISTRATION): The model flavor is not supported by this registry")

	// A failed version is not reused: once the cause is fixed, a new one is made.
	ws.FailRegistration("churn", "")
	again := run(t, ws, registerInputs(runID))
	require.Equal(t, agent.Succeeded, again.Result, again.Stdout)
	assert.Equal(t, "2", again.Outputs["modelVersion"])
}

func TestRegisterTimesOut(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{RegistrationDelay: time.Hour})
	runID := train(t, ws, nil)
	in := registerInputs(runID)
	in["timeoutMinutes"] = "0.005" // 300 ms

	start := time.Now()
	res := run(t, ws, in)
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Less(t, time.Since(start), 10*time.Second)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "version 1 of churn was not READY after 300ms (timeoutMinutes); it is left to finish: running the step again reuses it")
	assert.Equal(t, "1", res.Outputs["modelVersion"], "the outputs name the version left pending")
}

func TestRegisterCanceledDuringTheWaitRemovesWhatItMade(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		modelExists bool
		wantDelete  string
		wantQuery   map[string]string
	}{
		"new model":      {false, "/api/2.0/mlflow/registered-models/delete", map[string]string{"name": "churn"}},
		"existing model": {true, "/api/2.0/mlflow/model-versions/delete", map[string]string{"name": "churn", "version": "1"}},
	} {
		t.Run(name, func(t *testing.T) {
			ws := startWorkspace(t, emulator.Options{RegistrationDelay: time.Hour})
			runID := train(t, ws, nil)
			if tc.modelExists {
				_, err := ml.NewModelRegistry(sdk(t, ws)).CreateModel(ctx(t), ml.CreateModelRequest{Name: "churn"})
				require.NoError(t, err)
			}
			p := agentRun(t, ws, registerInputs(runID)).Start(t, agenttest.Executable(t))
			// The agent's SIGINT, once the task is waiting for READY.
			require.Eventually(t, func() bool {
				return len(ws.RequestsTo(http.MethodGet, "/api/2.0/mlflow/model-versions/get")) > 0
			}, 20*time.Second, 5*time.Millisecond, p.Stdout())
			require.NoError(t, p.Cmd.Process.Signal(os.Interrupt))
			res := p.Finish(t)
			require.Equal(t, agent.Canceled, res.Result, res.Stdout)
			assert.Equal(t, 0, res.ExitCode)
			deletes := ws.RequestsTo(http.MethodDelete, tc.wantDelete)
			require.Len(t, deletes, 1, "what the step made is removed")
			for k, v := range tc.wantQuery {
				assert.Equal(t, v, deletes[0].Query.Get(k))
			}
			if deletes[0].Status == http.StatusNotFound {
				// The emulator has no delete routes for the workspace registry yet.
				t.Logf("the emulator answered %d to %s", deletes[0].Status, tc.wantDelete)
				return
			}
			_, err := ml.NewModelRegistry(sdk(t, ws)).GetModelVersion(ctx(t), ml.GetModelVersionRequest{Name: "churn", Version: "1"})
			assert.Error(t, err, "nothing is left half-registered")
			assert.Empty(t, res.Warnings[:len(res.Warnings)-1], "only the cancellation is reported")
		})
	}
}

func TestRegisterNotFound(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{})
	runID := train(t, ws, nil)
	failsWithoutWriting(t, ws, registerInputs(runID), map[string]struct{ uri, want string }{
		"run":      {"runs:/0123456789abcdef0123456789abcdef/model", "MLflow run 0123456789abcdef0123456789abcdef (from modelUri runs:/0123456789abcdef0123456789abcdef/model) not found in workspace " + ws.URL()},
		"path":     {"runs:/" + runID + "/classifier", `MLflow run ` + runID + ` in workspace ` + ws.URL() + ` has no model at artifact path "classifier" and no logged model named so (its artifacts are: model)`},
		"MLflow 2": {"models:/m-0123456789abcdef0123456789abcdef", "workspace " + ws.URL() + " has no MLflow 3 logged models (m-0123456789abcdef0123456789abcdef, from modelUri models:/m-0123456789abcdef0123456789abcdef): register from the MLflow run instead (runs:/<run id>/<artifact path>)"},
	})
}

// trainLoggedModel trains in ws, an MLflow 3-era workspace, and returns the
// MLflow run, the logged model it logged, and register inputs for
// models:/<that model> into modelName.
func trainLoggedModel(t *testing.T, ws *emulator.Workspace, modelName string) (runID, id string, in map[string]string) {
	t.Helper()
	runID = train(t, ws, map[string]float64{"auc": 0.91})
	outs := ws.RunOutputs(runID)
	require.Len(t, outs, 1, "the run logged one model")
	id = outs[0].ModelId
	in = registerInputs(runID)
	in["modelName"], in["modelUri"] = modelName, "models:/"+id
	return runID, id, in
}

// failsWithoutWriting runs register with each modelUri and checks that it
// fails with exactly that error before any write.
func failsWithoutWriting(t *testing.T, ws *emulator.Workspace, in map[string]string, cases map[string]struct{ uri, want string }) {
	t.Helper()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ws.ResetRequests()
			in := maps.Clone(in)
			in["modelUri"] = tc.uri
			res := run(t, ws, in)
			require.Equal(t, agent.Failed, res.Result, res.Stdout)
			require.Len(t, res.Errors, 1)
			assert.Equal(t, tc.want, res.Errors[0])
			assert.Zero(t, ws.Writes())
		})
	}
}

// registeredFrom reads what MLflow 3 records on a workspace registry
// version beyond the SDK's ml.ModelVersion: the logged model it was
// registered from.
func registeredFrom(t *testing.T, ws *emulator.Workspace, name, version string) string {
	t.Helper()
	var got struct {
		ModelVersion struct {
			ModelID string `json:"model_id"`
		} `json:"model_version"`
	}
	require.NoError(t, sdk(t, ws).Do(ctx(t), http.MethodGet, "/api/2.0/mlflow/model-versions/get", nil,
		map[string]any{"name": name, "version": version}, nil, &got))
	return got.ModelVersion.ModelID
}

// modelVersionsTag is the logged model's mlflow.modelVersions tag, where
// MLflow lists the versions registered from it.
func modelVersionsTag(t *testing.T, ws *emulator.Workspace, id string) string {
	t.Helper()
	lm, ok := ws.LoggedModel(id)
	require.True(t, ok)
	for _, tg := range lm.Info.Tags {
		if tg.Key == "mlflow.modelVersions" {
			return tg.Value
		}
	}
	return ""
}

// TestRegisterFromLoggedModel registers the models:/m-<id> DatabricksTrain
// publishes for an MLflow 3 run into the workspace registry: the version's
// source is that URI, it carries the model_id and the run, holds the logged
// model's files, and is listed on the logged model; a rerun changes
// nothing. runs:/<run>/model of the same run registers the same model, as
// MLflow does.
func TestRegisterFromLoggedModel(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{MLflow: emulator.MLflow3})
	runID, id, in := trainLoggedModel(t, ws, "churn")

	res := run(t, ws, in)
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "1", res.Outputs["modelVersion"])
	mv := modelVersion(t, ws, "churn", "1")
	assert.Equal(t, ml.ModelVersionStatusReady, mv.Status, mv.StatusMessage)
	assert.Equal(t, "models:/"+id, mv.Source)
	assert.Equal(t, runID, mv.RunId, "the logged model's source run")
	assert.Equal(t, id, registeredFrom(t, ws, "churn", "1"))
	assert.Equal(t, runID, tags(mv)["brickferry_model_run_id"])
	var files emulator.ListModelVersionArtifactsResponse
	require.NoError(t, sdk(t, ws).Do(ctx(t), http.MethodGet, "/api/2.0/mlflow/model-versions/list-artifacts", nil,
		map[string]any{"name": "churn", "version": "1"}, nil, &files))
	var names []string
	for _, f := range files.Files {
		names = append(names, f.Path)
	}
	assert.ElementsMatch(t, []string{"MLmodel", "conda.yaml", "model.xgb", "requirements.txt"}, names)
	assert.JSONEq(t, `[{"name":"churn","version":"1"}]`, modelVersionsTag(t, ws, id))

	ws.ResetRequests()
	res = run(t, ws, in)
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "true", res.Outputs["reused"])
	assert.Zero(t, ws.Writes(), "a rerun registers, tags and lists nothing again")

	// The run's runs:/ URI: no artifacts at model, the logged model named so.
	in["modelUri"] = "runs:/" + runID + "/model"
	res = run(t, ws, in)
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "1", res.Outputs["modelVersion"], "the same model, already registered")
	assert.Contains(t, res.Stdout, "it logged the MLflow 3 model "+id+" there: registering models:/"+id)

	failsWithoutWriting(t, ws, in, map[string]struct{ uri, want string }{
		"unknown":     {"models:/m-0123456789abcdef0123456789abcdef", "logged model m-0123456789abcdef0123456789abcdef (from modelUri models:/m-0123456789abcdef0123456789abcdef) not found in workspace " + ws.URL()},
		"not a model": {"runs:/" + runID + "/classifier", `MLflow run ` + runID + ` in workspace ` + ws.URL() + ` has no model at artifact path "classifier" and no logged model named so (it has no artifacts)`},
	})
}

// TestRegisterRefusesALoggedModelThatIsNotReady: a logged model whose
// upload failed (or never finished) is not registered.
func TestRegisterRefusesALoggedModelThatIsNotReady(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{MLflow: emulator.MLflow3})
	runID, _, in := trainLoggedModel(t, ws, "churn")
	run0, _ := ws.MLflowRun(runID)
	exps := ml.NewExperiments(sdk(t, ws))
	lm, err := exps.CreateLoggedModel(ctx(t), ml.CreateLoggedModelRequest{ExperimentId: run0.Info.ExperimentId, Name: "broken", SourceRunId: runID})
	require.NoError(t, err)
	id := lm.Model.Info.ModelId
	_, err = exps.FinalizeLoggedModel(ctx(t), ml.FinalizeLoggedModelRequest{ModelId: id, Status: ml.LoggedModelStatusLoggedModelUploadFailed})
	require.NoError(t, err)

	failsWithoutWriting(t, ws, in, map[string]struct{ uri, want string }{
		"upload failed": {"models:/" + id, "logged model " + id + " (broken) is LOGGED_MODEL_UPLOAD_FAILED, not LOGGED_MODEL_READY"},
	})
}

// TestInProcessRegisterTransitionGate runs the dev flow in this process, with
// the production registry and connection, so that go test -race sees the
// task's code (the other tests run the built executable).
func TestInProcessRegisterTransitionGate(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{})
	runID := train(t, ws, map[string]float64{"auc": 0.91})

	res := agentRun(t, ws, registerInputs(runID)).InProcess(t, cli.Tasks())
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "models:/churn/1", res.Outputs["modelUri"])

	res = agentRun(t, ws, gateInputs("1", map[string]string{"stage": "Staging"})).InProcess(t, cli.Tasks())
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "true", res.Outputs["promote"])

	res = agentRun(t, ws, transition("1", "Staging")).InProcess(t, cli.Tasks())
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "Staging", res.Outputs["stage"])
}

// TestRegisterWaitsOnTheInjectedClock registers a version that takes 90
// minutes to become READY. The task's wait runs on the emulator's manual
// clock (Deps.Clock): every pause advances it instead of sleeping, so the
// wait takes milliseconds, and a wait on the wall clock would fail the test
// by its own deadline. With a 60-minute timeout the same version times out,
// also at once.
func TestRegisterWaitsOnTheInjectedClock(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		timeout string
		want    agent.Result
	}{
		{"ready after 90 simulated minutes", "120", agent.Succeeded},
		{"timeout after 60 simulated minutes", "60", agent.Failed},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := emulator.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
			ws := startWorkspace(t, emulator.Options{Clock: clock, RegistrationDelay: 90 * time.Minute})
			runID := trainTicking(t, ws, map[string]float64{"auc": 0.9}, func() { clock.Advance(time.Second) })

			def, err := tasks.Definition("MLflowPromote")
			require.NoError(t, err)
			registry := cli.Registry{"MLflowPromote": cli.Task{Definition: def, Run: promote.Task(promote.Deps{
				Connect: auth.Direct(&auth.Workspace{Name: "workspace", Host: ws.URL(), Client: sdk(t, ws)}),
				Clock:   clock,
			})}}
			in := registerInputs(runID)
			in["timeoutMinutes"] = c.timeout
			start, began := clock.Now(), time.Now()
			res := agentRun(t, ws, in).InProcess(t, registry)
			require.Equal(t, c.want, res.Result, res.Stdout)
			assert.Less(t, time.Since(began), 30*time.Second, "the wait ran on the wall clock")
			waited := clock.Now().Sub(start)
			if c.want == agent.Succeeded {
				assert.Equal(t, "models:/churn/1", res.Outputs["modelUri"])
				assert.GreaterOrEqual(t, waited, 90*time.Minute, "READY before its registration delay")
			} else {
				assert.Contains(t, res.Stdout, "was not READY after 1h0m0s")
				assert.Less(t, waited, 90*time.Minute)
			}
			assert.Greater(t, clock.Sleeps(), int64(3), "the wait polled on the injected clock")
		})
	}
}
