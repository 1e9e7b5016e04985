package promote_test

import (
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
	ws := startWorkspace(t, emulator.Options{})
	runID := train(t, ws, nil)
	for name, tc := range map[string]struct{ uri, want string }{
		"run":  {"runs:/0123456789abcdef0123456789abcdef/model", "MLflow run 0123456789abcdef0123456789abcdef (from modelUri runs:/0123456789abcdef0123456789abcdef/model) not found in workspace " + ws.URL()},
		"path": {"runs:/" + runID + "/classifier", `MLflow run ` + runID + ` in workspace ` + ws.URL() + ` has no model at artifact path "classifier" (its artifacts are: model)`},
	} {
		t.Run(name, func(t *testing.T) {
			ws.ResetRequests()
			in := registerInputs(runID)
			in["modelUri"] = tc.uri
			res := run(t, ws, in)
			require.Equal(t, agent.Failed, res.Result, res.Stdout)
			require.Len(t, res.Errors, 1)
			assert.Equal(t, tc.want, res.Errors[0])
			assert.Zero(t, ws.Writes())
		})
	}
}

// TestInProcessRegisterTransitionGate runs the dev flow in this process, with
// the production registry and connection, so that go test -race sees the
// task's code (the other tests run the built executable).
func TestInProcessRegisterTransitionGate(t *testing.T) {
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
