package emulator_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/fixtures"
)

// runWithOutputs is runs/get as an MLflow 3 client reads it: the run and
// its outputs, which the SDK's ml.Run does not have.
type runWithOutputs struct {
	Run struct {
		Info    ml.RunInfo `json:"info"`
		Data    ml.RunData `json:"data"`
		Outputs struct {
			ModelOutputs []ml.ModelOutput `json:"model_outputs"`
		} `json:"outputs"`
	} `json:"run"`
}

// TestMLflow3TrainLogsALoggedModel: in an MLflow 3-era workspace the
// training notebook's log_model makes a READY logged model named after the
// artifact path, with the files under the model's own location, the run as
// its source and the run linked to it as an output; the run has no model
// artifacts and no mlflow.log-model.history tag.
func TestMLflow3TrainLogsALoggedModel(t *testing.T) {
	ws, clock := start(t, emulator.Options{MLflow: emulator.MLflow3})
	cl := ws.Client(t)
	c := ctx(t)
	exps := ml.NewExperiments(cl)
	runID, _ := trainedRun(t, ws, clock)

	var got runWithOutputs
	require.NoError(t, cl.Do(c, http.MethodGet, "/api/2.0/mlflow/runs/get", nil, map[string]any{"run_id": runID}, nil, &got))
	for _, tg := range got.Run.Data.Tags {
		assert.NotEqual(t, "mlflow.log-model.history", tg.Key, "MLflow 3 writes no log-model history")
	}
	require.Len(t, got.Run.Outputs.ModelOutputs, 1)
	id := got.Run.Outputs.ModelOutputs[0].ModelId
	assert.Regexp(t, `^m-[0-9a-f]{32}$`, id)

	top, err := exps.ListArtifactsAll(c, ml.ListArtifactsRequest{RunId: runID})
	require.NoError(t, err)
	assert.Empty(t, top, "the model's files are not the run's artifacts")

	lm, err := exps.GetLoggedModel(c, ml.GetLoggedModelRequest{ModelId: id})
	require.NoError(t, err)
	info := lm.Model.Info
	assert.Equal(t, "model", info.Name)
	assert.Equal(t, runID, info.SourceRunId)
	assert.Equal(t, got.Run.Info.ExperimentId, info.ExperimentId)
	assert.Equal(t, ml.LoggedModelStatusLoggedModelReady, info.Status)
	assert.Equal(t, "dbfs:/databricks/mlflow-tracking/"+info.ExperimentId+"/logged_models/"+id, info.ArtifactUri)
	require.Len(t, lm.Model.Data.Params, 1, "the run's params")
	assert.Equal(t, "max_depth=6", lm.Model.Data.Params[0].Key+"="+lm.Model.Data.Params[0].Value)
	require.Len(t, lm.Model.Data.Metrics, 1)
	assert.Equal(t, id, lm.Model.Data.Metrics[0].ModelId)
	for filter, n := range map[string]int{"metrics.auc > 0.9 AND name = 'model'": 1, "metrics.auc > 0.95": 0} {
		found, err := exps.SearchLoggedModels(c, ml.SearchLoggedModelsRequest{ExperimentIds: []string{info.ExperimentId}, Filter: filter})
		require.NoError(t, err)
		assert.Len(t, found.Models, n, filter)
	}

	var list emulator.ListLoggedModelArtifactsResponse
	require.NoError(t, cl.Do(c, http.MethodGet, "/api/2.0/mlflow/logged-models/"+id+"/artifacts/directories", nil, nil, nil, &list))
	var names []string
	for _, f := range list.Files {
		names = append(names, f.Path)
	}
	assert.ElementsMatch(t, []string{"MLmodel", "conda.yaml", "model.xgb", "requirements.txt"}, names, "paths are relative to the logged model's root")
	assert.Equal(t, info.ArtifactUri, list.RootURI)
	var none emulator.ListLoggedModelArtifactsResponse
	require.NoError(t, cl.Do(c, http.MethodGet, "/api/2.0/mlflow/logged-models/"+id+"/artifacts/directories", nil,
		map[string]any{"artifact_directory_path": "nothing-here"}, nil, &none))
	assert.Empty(t, none.Files)
	err = cl.Do(c, http.MethodGet, "/api/2.0/mlflow/logged-models/"+id+"/artifacts/directories", nil, map[string]any{"path": "x"}, nil, &list)
	assert.ErrorIs(t, err, apierr.ErrInvalidParameterValue, "the query is MLflow's artifact_directory_path")
}

func TestLoggedModelRoutes(t *testing.T) {
	ws, _ := start(t, emulator.Options{MLflow: emulator.MLflow3})
	cl := ws.Client(t)
	c := ctx(t)
	exps := ml.NewExperiments(cl)
	exp, err := exps.CreateExperiment(c, ml.CreateExperiment{Name: "/Shared/lm"})
	require.NoError(t, err)
	run, err := exps.CreateRun(c, ml.CreateRun{ExperimentId: exp.ExperimentId})
	require.NoError(t, err)
	runID := run.Run.Info.RunId

	_, err = exps.CreateLoggedModel(c, ml.CreateLoggedModelRequest{ExperimentId: "404"})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
	_, err = exps.CreateLoggedModel(c, ml.CreateLoggedModelRequest{ExperimentId: exp.ExperimentId, SourceRunId: "nope"})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
	err = cl.Do(c, http.MethodPost, "/api/2.0/mlflow/logged-models", nil, nil, map[string]any{"experiment_id": exp.ExperimentId, "model_uri": "x"}, nil)
	assert.ErrorIs(t, err, apierr.ErrInvalidParameterValue, "decoded strictly into the SDK's request")

	a, err := exps.CreateLoggedModel(c, ml.CreateLoggedModelRequest{ExperimentId: exp.ExperimentId, Name: "a", SourceRunId: runID,
		Params: []ml.LoggedModelParameter{{Key: "alpha", Value: "0.1"}}})
	require.NoError(t, err)
	assert.Equal(t, ml.LoggedModelStatusLoggedModelPending, a.Model.Info.Status)
	b, err := exps.CreateLoggedModel(c, ml.CreateLoggedModelRequest{ExperimentId: exp.ExperimentId, Name: "b", SourceRunId: runID})
	require.NoError(t, err)
	aID, bID := a.Model.Info.ModelId, b.Model.Info.ModelId

	_, err = exps.FinalizeLoggedModel(c, ml.FinalizeLoggedModelRequest{ModelId: aID, Status: ml.LoggedModelStatusLoggedModelPending})
	assert.ErrorIs(t, err, apierr.ErrInvalidParameterValue, "a model is finalized READY or UPLOAD_FAILED")
	fin, err := exps.FinalizeLoggedModel(c, ml.FinalizeLoggedModelRequest{ModelId: aID, Status: ml.LoggedModelStatusLoggedModelReady})
	require.NoError(t, err)
	assert.Equal(t, ml.LoggedModelStatusLoggedModelReady, fin.Model.Info.Status)

	require.NoError(t, exps.SetLoggedModelTags(c, ml.SetLoggedModelTagsRequest{ModelId: aID, Tags: []ml.LoggedModelTag{{Key: "team", Value: "ml"}}}))
	err = exps.LogLoggedModelParams(c, ml.LogLoggedModelParamsRequest{ModelId: aID, Params: []ml.LoggedModelParameter{{Key: "alpha", Value: "0.2"}}})
	assert.ErrorIs(t, err, apierr.ErrInvalidParameterValue, "params are write-once")
	require.NoError(t, exps.LogOutputs(c, ml.LogOutputsRequest{RunId: runID, Models: []ml.ModelOutput{{ModelId: bID, Step: 3}}}))
	assert.Equal(t, []ml.ModelOutput{{ModelId: bID, Step: 3}}, ws.RunOutputs(runID))
	err = exps.LogOutputs(c, ml.LogOutputsRequest{RunId: runID, Models: []ml.ModelOutput{{ModelId: "m-nope"}}})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)

	search := func(filter string) []string {
		t.Helper()
		resp, err := exps.SearchLoggedModels(c, ml.SearchLoggedModelsRequest{ExperimentIds: []string{exp.ExperimentId}, Filter: filter})
		require.NoError(t, err)
		var ids []string
		for _, m := range resp.Models {
			ids = append(ids, m.Info.ModelId)
		}
		return ids
	}
	assert.Equal(t, []string{bID, aID}, search(""), "newest first")
	assert.Equal(t, []string{aID}, search("name = 'a'"))
	assert.Equal(t, []string{aID}, search("tags.team = 'ml' AND status = 'LOGGED_MODEL_READY'"))
	assert.Equal(t, []string{aID}, search("params.alpha = '0.1'"))
	_, err = exps.SearchLoggedModels(c, ml.SearchLoggedModelsRequest{ExperimentIds: []string{exp.ExperimentId}, Filter: "source_run_id = '" + runID + "'"})
	assert.ErrorIs(t, err, apierr.ErrInvalidParameterValue, "Databricks does not filter on source_run_id (MLflow compares it itself)")
	assert.ErrorContains(t, err, "filtering logged models by source_run_id is not supported")
	_, err = exps.SearchLoggedModels(c, ml.SearchLoggedModelsRequest{})
	assert.ErrorIs(t, err, apierr.ErrInvalidParameterValue)
	page, err := exps.SearchLoggedModels(c, ml.SearchLoggedModelsRequest{ExperimentIds: []string{exp.ExperimentId}, MaxResults: 1})
	require.NoError(t, err)
	require.Len(t, page.Models, 1)
	assert.NotEmpty(t, page.NextPageToken)

	require.NoError(t, exps.DeleteLoggedModelTag(c, ml.DeleteLoggedModelTagRequest{ModelId: aID, TagKey: "team"}))
	require.NoError(t, exps.DeleteLoggedModel(c, ml.DeleteLoggedModelRequest{ModelId: bID}))
	_, err = exps.GetLoggedModel(c, ml.GetLoggedModelRequest{ModelId: bID})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
}

// TestMLflow2WorkspaceHasNoLoggedModels: the routes came with MLflow 3; an
// MLflow 2-era workspace answers them as any unknown route, and its
// training run logs the model under the run's artifacts with the history tag.
func TestMLflow2WorkspaceHasNoLoggedModels(t *testing.T) {
	ws, clock := start(t, emulator.Options{})
	cl := ws.Client(t)
	c := ctx(t)
	runID, _ := trainedRun(t, ws, clock)
	run, ok := ws.MLflowRun(runID)
	require.True(t, ok)
	history := ""
	for _, tg := range run.Data.Tags {
		if tg.Key == "mlflow.log-model.history" {
			history = tg.Value
		}
	}
	assert.Contains(t, history, `"artifact_path":"model"`)
	assert.Empty(t, ws.RunOutputs(runID))

	_, err := ml.NewExperiments(cl).SearchLoggedModels(c, ml.SearchLoggedModelsRequest{ExperimentIds: []string{run.Info.ExperimentId}})
	var aerr *apierr.APIError
	require.ErrorAs(t, err, &aerr)
	assert.Equal(t, http.StatusNotFound, aerr.StatusCode)
	assert.Equal(t, "ENDPOINT_NOT_FOUND", aerr.ErrorCode)
}

// TestRegisterFromLoggedModel: a workspace registry version created from
// models:/<model id> copies the logged model's files and carries model_id.
func TestRegisterFromLoggedModel(t *testing.T) {
	ws, clock := start(t, emulator.Options{MLflow: emulator.MLflow3})
	cl := ws.Client(t)
	c := ctx(t)
	runID, _ := trainedRun(t, ws, clock)
	id := ws.RunOutputs(runID)[0].ModelId
	_, err := ml.NewModelRegistry(cl).CreateModel(c, ml.CreateModelRequest{Name: "churn"})
	require.NoError(t, err)

	err = cl.Do(c, http.MethodPost, "/api/2.0/mlflow/model-versions/create", nil, nil,
		emulator.CreateModelVersionRequest{CreateModelVersionRequest: ml.CreateModelVersionRequest{Name: "churn", Source: "models:/m-0000"}, ModelID: "m-0000"}, nil)
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist, "model_id names a logged model that must exist")

	var created map[string]map[string]any
	require.NoError(t, cl.Do(c, http.MethodPost, "/api/2.0/mlflow/model-versions/create", nil, nil,
		emulator.CreateModelVersionRequest{CreateModelVersionRequest: ml.CreateModelVersionRequest{Name: "churn", Source: "models:/" + id, RunId: runID}, ModelID: id}, &created))
	assert.Equal(t, id, created["model_version"]["model_id"])
	clock.Advance(time.Minute)

	var got map[string]json.RawMessage
	require.NoError(t, cl.Do(c, http.MethodGet, "/api/2.0/mlflow/model-versions/get", nil, map[string]any{"name": "churn", "version": "1"}, nil, &got))
	var mv struct {
		ml.ModelVersion
		ModelID string `json:"model_id"`
	}
	require.NoError(t, json.Unmarshal(got["model_version"], &mv.ModelVersion))
	require.NoError(t, json.Unmarshal(got["model_version"], &struct {
		ModelID *string `json:"model_id"`
	}{&mv.ModelID}))
	assert.Equal(t, ml.ModelVersionStatusReady, mv.Status, mv.StatusMessage)
	assert.Equal(t, "models:/"+id, mv.Source)
	assert.Equal(t, id, mv.ModelID)

	var list emulator.ListModelVersionArtifactsResponse
	require.NoError(t, cl.Do(c, http.MethodGet, "/api/2.0/mlflow/model-versions/list-artifacts", nil,
		map[string]any{"name": "churn", "version": "1"}, nil, &list))
	var names []string
	for _, f := range list.Files {
		names = append(names, f.Path)
	}
	assert.Contains(t, names, "MLmodel", "the version holds a copy of the logged model's files")
}

// TestLoggedModelArtifactsThroughAzurite moves bytes through the logged
// model's upload and download credentials, as MLflow's
// DatabricksArtifactRepository does for a logged model.
func TestLoggedModelArtifactsThroughAzurite(t *testing.T) {
	az := azurite.Start(t)
	blob := &emulator.BlobAccount{Endpoint: az.BlobEndpoint, AccountName: az.AccountName, AccountKey: az.AccountKey}
	ws, clock := start(t, emulator.Options{Blob: blob, MLflow: emulator.MLflow3, CredentialPageSize: 1})
	cl := ws.Client(t)
	c := ctx(t)
	runID, _ := trainedRun(t, ws, clock)
	id := ws.RunOutputs(runID)[0].ModelId

	var read emulator.GetCredentialsForLoggedModelResponse
	require.NoError(t, cl.Do(c, http.MethodPost, "/api/2.0/mlflow/logged-models/"+id+"/artifacts/credentials-for-download", nil, nil,
		emulator.GetCredentialsForLoggedModel{Paths: []string{"MLmodel", "conda.yaml"}}, &read))
	require.Len(t, read.Credentials, 1, "pages of one")
	assert.NotEmpty(t, read.NextPageToken)
	assert.Equal(t, id, read.Credentials[0].ModelID)
	assert.Equal(t, "AZURE_SAS_URI", read.Credentials[0].CredentialInfo.Type)
	want, err := os.ReadFile(filepath.Join(fixtures.ChurnModel(t), "MLmodel"))
	require.NoError(t, err)
	assert.Equal(t, want, download(t, read.Credentials[0].CredentialInfo.SignedURI))

	err = cl.Do(c, http.MethodPost, "/api/2.0/mlflow/logged-models/"+id+"/artifacts/credentials-for-upload", nil, nil,
		emulator.GetCredentialsForLoggedModel{ModelID: "m-other", Paths: []string{"x"}}, nil)
	assert.ErrorIs(t, err, apierr.ErrInvalidParameterValue)
	err = cl.Do(c, http.MethodPost, "/api/2.0/mlflow/logged-models/"+id+"/artifacts/credentials-for-upload", nil, nil,
		emulator.GetCredentialsForLoggedModel{Paths: []string{"../escape"}}, nil)
	assert.ErrorIs(t, err, apierr.ErrInvalidParameterValue)
}

// TestFaultPathPattern: a fault rule's Path may name an id it cannot know
// as {name}: it matches that one segment, not a longer path.
func TestFaultPathPattern(t *testing.T) {
	ws, _ := start(t, emulator.Options{MLflow: emulator.MLflow3})
	c := ctx(t)
	exps := ml.NewExperiments(ws.Client(t))
	exp, err := exps.CreateExperiment(c, ml.CreateExperiment{Name: "/Shared/faults"})
	require.NoError(t, err)
	lm, err := exps.CreateLoggedModel(c, ml.CreateLoggedModelRequest{ExperimentId: exp.ExperimentId})
	require.NoError(t, err)
	id := lm.Model.Info.ModelId
	ws.SetFaults(emulator.FaultPlan{Seed: 1, Rules: []emulator.FaultRule{
		{Path: "/api/2.0/mlflow/logged-models/{model_id}", Method: http.MethodPatch, Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault400}},
	}})
	require.NoError(t, exps.SetLoggedModelTags(c, ml.SetLoggedModelTagsRequest{ModelId: id, Tags: []ml.LoggedModelTag{{Key: "k", Value: "v"}}}), "…/{model_id}/tags is another route")
	_, err = exps.FinalizeLoggedModel(c, ml.FinalizeLoggedModelRequest{ModelId: id, Status: ml.LoggedModelStatusLoggedModelReady})
	require.Error(t, err)
	assert.Len(t, ws.RequestsTo(http.MethodPatch, "/api/2.0/mlflow/logged-models/"+id), 1)
	assert.Equal(t, emulator.Fault400, ws.RequestsTo(http.MethodPatch, "/api/2.0/mlflow/logged-models/"+id)[0].Fault)
}
