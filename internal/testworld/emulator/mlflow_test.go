package emulator_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/fixtures"
)

// trainedRun runs the Train behaviour through a submitted job and returns
// the MLflow run id from the notebook output and the task run's id.
func trainedRun(t *testing.T, ws *emulator.Workspace, clock *emulator.ManualClock) (mlflowRunID string, taskRunID int64) {
	t.Helper()
	ws.OnNotebook(trainNotebook, emulator.Behaviour{Duration: 10 * time.Minute, Train: &emulator.Train{
		Experiment: "/Shared/churn/experiment", ModelDir: fixtures.ChurnModel(t),
		Params: map[string]string{"max_depth": "6"}, Metrics: map[string]float64{"auc": 0.91},
	}})
	return ws.TrainedRun(t, trainNotebook, func() { clock.Advance(11 * time.Minute) })
}

func TestMLflowTrackingThroughSDK(t *testing.T) {
	ws, clock := start(t, emulator.Options{})
	c := ctx(t)
	exps := ml.NewExperiments(ws.Client(t))

	_, err := exps.CreateExperiment(c, ml.CreateExperiment{Name: "/Shared/missing-folder/exp"})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist, "the parent folder must exist")
	created, err := exps.CreateExperiment(c, ml.CreateExperiment{Name: "/Shared/manual"})
	require.NoError(t, err)
	_, err = exps.CreateExperiment(c, ml.CreateExperiment{Name: "/Shared/manual"})
	assert.ErrorIs(t, err, apierr.ErrResourceAlreadyExists)
	got, err := exps.GetExperiment(c, ml.GetExperimentRequest{ExperimentId: created.ExperimentId})
	require.NoError(t, err)
	assert.Equal(t, "/Shared/manual", got.Experiment.Name)

	run, err := exps.CreateRun(c, ml.CreateRun{ExperimentId: created.ExperimentId, RunName: "manual"})
	require.NoError(t, err)
	id := run.Run.Info.RunId
	require.NoError(t, exps.LogBatch(c, ml.LogBatch{RunId: id, Params: []ml.Param{{Key: "a", Value: "1"}}, Metrics: []ml.Metric{{Key: "m", Value: 2, Timestamp: 1}}}))
	err = exps.LogBatch(c, ml.LogBatch{RunId: id, Params: []ml.Param{{Key: "a", Value: "2"}}})
	assert.ErrorIs(t, err, apierr.ErrInvalidParameterValue, "params are write-once")
	require.NoError(t, exps.SetTag(c, ml.SetTag{RunId: id, Key: "stage", Value: "dev"}))
	upd, err := exps.UpdateRun(c, ml.UpdateRun{RunId: id, Status: ml.UpdateRunStatusFinished, EndTime: 5})
	require.NoError(t, err)
	assert.Equal(t, ml.RunInfoStatusFinished, upd.RunInfo.Status)

	trainID, taskRunID := trainedRun(t, ws, clock)
	byName, err := exps.GetByName(c, ml.GetByNameRequest{ExperimentName: "/Shared/churn/experiment"})
	require.NoError(t, err)
	found, err := exps.SearchRunsAll(c, ml.SearchRuns{ExperimentIds: []string{byName.Experiment.ExperimentId},
		Filter: "tags.`mlflow.databricks.jobRunID` = '" + itoa(taskRunID) + "' and attributes.run_id = '" + trainID + "'"})
	require.NoError(t, err)
	require.Len(t, found, 1)
	assert.Equal(t, "6", paramOf(found[0], "max_depth"))

	top, err := exps.ListArtifactsAll(c, ml.ListArtifactsRequest{RunId: trainID})
	require.NoError(t, err)
	require.Len(t, top, 1)
	assert.Equal(t, "model", top[0].Path)
	assert.True(t, top[0].IsDir, "listing is not recursive")
	files, err := exps.ListArtifactsAll(c, ml.ListArtifactsRequest{RunId: trainID, Path: "model"})
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, f.Path)
	}
	assert.Contains(t, names, "model/MLmodel")

	_, err = exps.GetRun(c, ml.GetRunRequest{RunId: "nope"})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
	_, err = exps.GetByName(c, ml.GetByNameRequest{ExperimentName: "/nope"})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
}

func paramOf(r ml.Run, key string) string {
	for _, p := range r.Data.Params {
		if p.Key == key {
			return p.Value
		}
	}
	return ""
}

func TestWorkspaceRegistryThroughSDK(t *testing.T) {
	ws, clock := start(t, emulator.Options{})
	c := ctx(t)
	cl := ws.Client(t)
	reg := ml.NewModelRegistry(cl)
	runID, _ := trainedRun(t, ws, clock)

	_, err := reg.CreateModel(c, ml.CreateModelRequest{Name: "churn"})
	require.NoError(t, err)
	_, err = reg.CreateModel(c, ml.CreateModelRequest{Name: "churn"})
	assert.ErrorIs(t, err, apierr.ErrResourceAlreadyExists)

	v1, err := reg.CreateModelVersion(c, ml.CreateModelVersionRequest{Name: "churn", Source: "runs:/" + runID + "/model", RunId: runID})
	require.NoError(t, err)
	assert.Equal(t, ml.ModelVersionStatusPendingRegistration, v1.ModelVersion.Status)
	_, err = reg.TransitionStage(c, ml.TransitionModelVersionStageDatabricks{Name: "churn", Version: "1", Stage: "Staging"})
	assert.ErrorIs(t, err, apierr.ErrInvalidState, "a pending version cannot change stage")
	clock.Advance(5 * time.Second)
	got, err := reg.GetModelVersion(c, ml.GetModelVersionRequest{Name: "churn", Version: "1"})
	require.NoError(t, err)
	assert.Equal(t, ml.ModelVersionStatusReady, got.ModelVersion.Status)

	var arts emulator.ListModelVersionArtifactsResponse
	require.NoError(t, cl.Do(c, http.MethodGet, "/api/2.0/mlflow/model-versions/list-artifacts", nil, map[string]any{"name": "churn", "version": "1"}, nil, &arts))
	var names []string
	for _, f := range arts.Files {
		names = append(names, f.Path)
	}
	assert.Contains(t, names, "MLmodel", "registration copied the run's model folder")
	// A path that is a file answers that one file (which MLflow's client
	// reads as "no children"); a page token it did not give is refused.
	var one emulator.ListModelVersionArtifactsResponse
	require.NoError(t, cl.Do(c, http.MethodGet, "/api/2.0/mlflow/model-versions/list-artifacts", nil, map[string]any{"name": "churn", "version": "1", "path": "MLmodel"}, nil, &one))
	require.Len(t, one.Files, 1)
	assert.Equal(t, "MLmodel", one.Files[0].Path)
	assert.False(t, one.Files[0].IsDir)
	err = cl.Do(c, http.MethodGet, "/api/2.0/mlflow/model-versions/list-artifacts", nil, map[string]any{"name": "churn", "version": "1", "page_token": "x"}, nil, &one)
	assert.ErrorIs(t, err, apierr.ErrInvalidParameterValue)

	_, err = reg.TransitionStage(c, ml.TransitionModelVersionStageDatabricks{Name: "churn", Version: "1", Stage: "staging"})
	assert.ErrorIs(t, err, apierr.ErrInvalidParameterValue, "stages are case-sensitive")
	_, err = reg.TransitionStage(c, ml.TransitionModelVersionStageDatabricks{Name: "churn", Version: "1", Stage: "Production"})
	require.NoError(t, err)
	_, err = reg.CreateModelVersion(c, ml.CreateModelVersionRequest{Name: "churn", Source: "dbfs:/databricks/mlflow-tracking/x/" + runID + "/artifacts/model"})
	require.NoError(t, err)
	clock.Advance(5 * time.Second)
	v2, err := reg.GetModelVersion(c, ml.GetModelVersionRequest{Name: "churn", Version: "2"})
	require.NoError(t, err)
	assert.Equal(t, ml.ModelVersionStatusFailedRegistration, v2.ModelVersion.Status, "a source without files fails")
	_, err = reg.CreateModelVersion(c, ml.CreateModelVersionRequest{Name: "churn", Source: "runs:/" + runID + "/model", RunId: runID})
	require.NoError(t, err)
	clock.Advance(5 * time.Second)
	tr, err := reg.TransitionStage(c, ml.TransitionModelVersionStageDatabricks{Name: "churn", Version: "3", Stage: "Production", ArchiveExistingVersions: true})
	require.NoError(t, err)
	assert.Equal(t, "Production", tr.ModelVersionDatabricks.CurrentStage)
	latest, err := reg.GetLatestVersionsAll(c, ml.GetLatestVersionsRequest{Name: "churn", Stages: []string{"Production", "Archived"}})
	require.NoError(t, err)
	require.Len(t, latest, 2)
	assert.Equal(t, "3", latest[0].Version)
	assert.Equal(t, "1", latest[1].Version)

	require.NoError(t, reg.SetModelVersionTag(c, ml.SetModelVersionTagRequest{Name: "churn", Version: "3", Key: "build", Value: "42"}))
	found, err := reg.SearchModelVersionsAll(c, ml.SearchModelVersionsRequest{Filter: "name='churn' and run_id='" + runID + "'"})
	require.NoError(t, err)
	assert.Len(t, found, 2)
	uri, err := reg.GetModelVersionDownloadUri(c, ml.GetModelVersionDownloadUriRequest{Name: "churn", Version: "3"})
	require.NoError(t, err)
	assert.Contains(t, uri.ArtifactUri, "dbfs:/databricks/mlflow-registry/")
	dbx, err := reg.GetModel(c, ml.GetModelRequest{Name: "churn"})
	require.NoError(t, err)
	assert.NotEmpty(t, dbx.RegisteredModelDatabricks.Id)
	var plain emulator.GetRegisteredModelResponse
	require.NoError(t, cl.Do(c, http.MethodGet, "/api/2.0/mlflow/registered-models/get", nil, map[string]any{"name": "churn"}, nil, &plain))
	assert.Equal(t, "churn", plain.RegisteredModel.Name)

	ws.FailRegistration("churn", "scripted failure")
	_, err = reg.CreateModelVersion(c, ml.CreateModelVersionRequest{Name: "churn", Source: "runs:/" + runID + "/model"})
	require.NoError(t, err)
	clock.Advance(5 * time.Second)
	v4, err := reg.GetModelVersion(c, ml.GetModelVersionRequest{Name: "churn", Version: "4"})
	require.NoError(t, err)
	assert.Equal(t, ml.ModelVersionStatusFailedRegistration, v4.ModelVersion.Status)
	assert.Equal(t, "scripted failure", v4.ModelVersion.StatusMessage)
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// log-batch takes at most 1000 metrics, 100 params, 100 tags and 1000 items
// in all per request (databricks-sdk-go v0.81.0 ml.LogBatch doc comments).
func TestLogBatchLimits(t *testing.T) {
	ws, _ := start(t, emulator.Options{})
	c := ctx(t)
	exps := ml.NewExperiments(ws.Client(t))
	exp, err := exps.CreateExperiment(c, ml.CreateExperiment{Name: "/Shared/limits"})
	require.NoError(t, err)
	run, err := exps.CreateRun(c, ml.CreateRun{ExperimentId: exp.ExperimentId})
	require.NoError(t, err)
	id := run.Run.Info.RunId
	params := func(n int) (out []ml.Param) {
		for i := range n {
			out = append(out, ml.Param{Key: "p" + strconv.Itoa(i), Value: "v"})
		}
		return out
	}
	tags := func(n int) (out []ml.RunTag) {
		for i := range n {
			out = append(out, ml.RunTag{Key: "t" + strconv.Itoa(i), Value: "v"})
		}
		return out
	}
	metrics := func(n int) (out []ml.Metric) {
		for i := range n {
			out = append(out, ml.Metric{Key: "m" + strconv.Itoa(i), Value: 1, Timestamp: 1})
		}
		return out
	}
	cases := []struct {
		name  string
		batch ml.LogBatch
		err   string
	}{
		{"at every limit", ml.LogBatch{Params: params(100), Tags: tags(100), Metrics: metrics(800)}, ""},
		{"101 params", ml.LogBatch{Params: params(101)}, "at most 100 params. Got 101 params."},
		{"101 tags", ml.LogBatch{Tags: tags(101)}, "at most 100 tags. Got 101 tags."},
		{"1001 metrics", ml.LogBatch{Metrics: metrics(1001)}, "at most 1000 metrics. Got 1001 metrics."},
		{"1001 in all", ml.LogBatch{Params: params(100), Tags: tags(100), Metrics: metrics(801)}, "at most 1000 metrics, params, and tags. Got 1001"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.batch.RunId = id
			err := exps.LogBatch(c, tc.batch)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, apierr.ErrInvalidParameterValue)
			assert.Contains(t, err.Error(), tc.err)
		})
	}
}
