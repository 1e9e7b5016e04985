package loggedmodel_test

import (
	"context"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/loggedmodel"
	"github.com/brickferry/brickferry/internal/testworld"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

func TestMain(m *testing.M) { testworld.Main(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// world is an MLflow 3-era workspace with one MLflow run and a way to log
// models from it the way MLflow's log_model does (create, log_outputs at a
// step, finalize READY).
type world struct {
	ws    *emulator.Workspace
	clock *emulator.ManualClock
	exps  *ml.ExperimentsAPI
	expID string
	runID string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	clock := emulator.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	ws := emulator.Start(t, emulator.Options{Clock: clock, MLflow: emulator.MLflow3})
	exps := ml.NewExperiments(ws.Client(t))
	exp, err := exps.CreateExperiment(ctx(t), ml.CreateExperiment{Name: "/Shared/lm"})
	require.NoError(t, err)
	run, err := exps.CreateRun(ctx(t), ml.CreateRun{ExperimentId: exp.ExperimentId})
	require.NoError(t, err)
	return &world{ws: ws, clock: clock, exps: exps, expID: exp.ExperimentId, runID: run.Run.Info.RunId}
}

// logModel logs a model named name from run at step (no output when step <
// 0), a second after the previous one.
func (w *world) logModel(t *testing.T, run, name string, step int64) string {
	t.Helper()
	w.clock.Advance(time.Second)
	lm, err := w.exps.CreateLoggedModel(ctx(t), ml.CreateLoggedModelRequest{ExperimentId: w.expID, Name: name, SourceRunId: run})
	require.NoError(t, err)
	id := lm.Model.Info.ModelId
	if step >= 0 {
		require.NoError(t, w.exps.LogOutputs(ctx(t), ml.LogOutputsRequest{RunId: run, Models: []ml.ModelOutput{{ModelId: id, Step: step}}}))
	}
	_, err = w.exps.FinalizeLoggedModel(ctx(t), ml.FinalizeLoggedModelRequest{ModelId: id, Status: ml.LoggedModelStatusLoggedModelReady})
	require.NoError(t, err)
	return id
}

// TestOfRunFindsWhatMLflowWould: of a run's logged models, the one named so
// (when a name is given), logged at the largest step of the run's outputs,
// then the newest; models of other runs never.
func TestOfRunFindsWhatMLflowWould(t *testing.T) {
	w := newWorld(t)
	models := loggedmodel.New(w.ws.Client(t))
	other, err := w.exps.CreateRun(ctx(t), ml.CreateRun{ExperimentId: w.expID})
	require.NoError(t, err)

	none, _, err := models.OfRun(ctx(t), w.runID, w.expID, "")
	require.NoError(t, err)
	assert.Nil(t, none, "the run logged no model yet")

	late := w.logModel(t, w.runID, "model", 5)
	newer := w.logModel(t, w.runID, "model", 0)
	pre := w.logModel(t, w.runID, "preprocessor", -1)
	w.logModel(t, other.Run.Info.RunId, "model", 9)

	got, others, err := models.OfRun(ctx(t), w.runID, w.expID, "model")
	require.NoError(t, err)
	assert.Equal(t, late, got.ModelId, "the largest step wins over the newest")
	assert.Equal(t, []string{"model (" + newer + ")"}, others)

	got, _, err = models.OfRun(ctx(t), w.runID, w.expID, "preprocessor")
	require.NoError(t, err)
	assert.Equal(t, pre, got.ModelId)
	got, others, err = models.OfRun(ctx(t), w.runID, w.expID, "")
	require.NoError(t, err)
	assert.Equal(t, late, got.ModelId)
	assert.Len(t, others, 2)
	got, _, err = models.OfRun(ctx(t), w.runID, w.expID, "classifier")
	require.NoError(t, err)
	assert.Nil(t, got)
}

// TestOfRunPagesThroughTheExperiment: a run's model behind more than a page
// (50) of other models is found.
func TestOfRunPagesThroughTheExperiment(t *testing.T) {
	w := newWorld(t)
	want := w.logModel(t, w.runID, "model", 0)
	other, err := w.exps.CreateRun(ctx(t), ml.CreateRun{ExperimentId: w.expID})
	require.NoError(t, err)
	for range 60 {
		w.logModel(t, other.Run.Info.RunId, "model", 0)
	}
	got, _, err := loggedmodel.New(w.ws.Client(t)).OfRun(ctx(t), w.runID, w.expID, "model")
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, want, got.ModelId)
	assert.Greater(t, len(w.ws.RequestsTo("POST", "/api/2.0/mlflow/logged-models/search")), 1)
}

func TestNoteVersionListsEachVersionOnce(t *testing.T) {
	w := newWorld(t)
	id := w.logModel(t, w.runID, "model", 0)
	models := loggedmodel.New(w.ws.Client(t))
	note := func(name, version string) {
		t.Helper()
		info, err := models.Get(ctx(t), id)
		require.NoError(t, err)
		require.NoError(t, models.NoteVersion(ctx(t), info, name, version))
	}
	note("churn", "1")
	note("main.ml.churn", "3")
	w.ws.ResetRequests()
	note("churn", "1")
	assert.Zero(t, w.ws.Writes(), "listed already")
	lm, _ := w.ws.LoggedModel(id)
	require.Len(t, lm.Info.Tags, 1)
	assert.Equal(t, "mlflow.modelVersions", lm.Info.Tags[0].Key)
	assert.JSONEq(t, `[{"name":"churn","version":"1"},{"name":"main.ml.churn","version":"3"}]`, lm.Info.Tags[0].Value)
}

func TestErrorsTellAMissingAPIFromAMissingModel(t *testing.T) {
	w := newWorld(t)
	_, err := loggedmodel.New(w.ws.Client(t)).Get(ctx(t), "m-0000")
	assert.True(t, loggedmodel.NotFound(err), "%v", err)
	assert.False(t, loggedmodel.Unsupported(err))

	old := emulator.Start(t, emulator.Options{})
	_, err = loggedmodel.New(old.Client(t)).Get(ctx(t), "m-0000")
	assert.True(t, loggedmodel.Unsupported(err), "%v", err)
	assert.False(t, loggedmodel.NotFound(err))

	w.logModel(t, w.runID, "broken", -1)
	info, _, err := loggedmodel.New(w.ws.Client(t)).OfRun(ctx(t), w.runID, w.expID, "broken")
	require.NoError(t, err)
	assert.NoError(t, loggedmodel.CheckReady(info))
	info.Status = ml.LoggedModelStatusLoggedModelPending
	assert.ErrorContains(t, loggedmodel.CheckReady(info), "is LOGGED_MODEL_PENDING, not LOGGED_MODEL_READY (its files are still being uploaded")
}
