package emulator_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/files"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/databricks/databricks-sdk-go/service/sql"
	"github.com/databricks/databricks-sdk-go/service/workspace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

func TestServingThroughSDK(t *testing.T) {
	ws, clock, api, c := servingChurn(t)
	var err error

	_, err = api.Create(c, serving.CreateServingEndpoint{Name: "bad", Config: &serving.EndpointCoreConfigInput{
		ServedEntities: []serving.ServedEntityInput{{EntityName: "churn", EntityVersion: "9"}}}})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist, "the served model version must exist")

	_, err = api.Create(c, serving.CreateServingEndpoint{Name: "churn-ep", Config: &serving.EndpointCoreConfigInput{
		ServedEntities: []serving.ServedEntityInput{{EntityName: "churn", EntityVersion: "1", WorkloadSize: "Small", ScaleToZeroEnabled: true}}}})
	require.NoError(t, err)
	ep, err := api.Get(c, serving.GetServingEndpointRequest{Name: "churn-ep"})
	require.NoError(t, err)
	assert.Equal(t, serving.EndpointStateReadyNotReady, ep.State.Ready)
	assert.Equal(t, serving.EndpointStateConfigUpdateInProgress, ep.State.ConfigUpdate)
	_, err = api.Query(c, serving.QueryEndpointInput{Name: "churn-ep", DataframeRecords: []any{map[string]any{"x": 1}}})
	assert.ErrorIs(t, err, apierr.ErrInvalidState)

	clock.Advance(2 * time.Minute)
	ep, err = api.Get(c, serving.GetServingEndpointRequest{Name: "churn-ep"})
	require.NoError(t, err)
	assert.Equal(t, serving.EndpointStateReadyReady, ep.State.Ready)
	assert.Equal(t, serving.EndpointStateConfigUpdateNotUpdating, ep.State.ConfigUpdate)
	served := ep.Config.ServedEntities[0].Name
	assert.Equal(t, "churn-1", served)

	resp, err := api.Query(c, serving.QueryEndpointInput{Name: "churn-ep", DataframeSplit: &serving.DataframeSplitInput{
		Columns: []any{"tenure", "charges"}, Data: []any{[]any{1, 20.5}, []any{30, 99.0}, []any{7, 50.0}}}})
	require.NoError(t, err)
	assert.Len(t, resp.Predictions, 3)
	again, err := api.Query(c, serving.QueryEndpointInput{Name: "churn-ep", DataframeSplit: &serving.DataframeSplitInput{
		Columns: []any{"tenure", "charges"}, Data: []any{[]any{1, 20.5}, []any{30, 99.0}, []any{7, 50.0}}}})
	require.NoError(t, err)
	assert.Equal(t, resp.Predictions, again.Predictions, "the predictor is deterministic")
	inputs, err := api.Query(c, serving.QueryEndpointInput{Name: "churn-ep", Inputs: map[string]any{"tenure": []any{1, 2}}})
	require.NoError(t, err)
	assert.Len(t, inputs.Predictions, 2)

	_, err = api.UpdateConfig(c, serving.EndpointCoreConfigInput{Name: "churn-ep", ServedEntities: []serving.ServedEntityInput{{EntityName: "churn", EntityVersion: "2", WorkloadSize: "Small"}}})
	require.NoError(t, err)
	_, err = api.UpdateConfig(c, serving.EndpointCoreConfigInput{Name: "churn-ep", ServedEntities: []serving.ServedEntityInput{{EntityName: "churn", EntityVersion: "2", WorkloadSize: "Small"}}})
	assert.ErrorIs(t, err, apierr.ErrResourceConflict, "one update at a time")
	clock.Advance(time.Minute)
	ep, err = api.Get(c, serving.GetServingEndpointRequest{Name: "churn-ep"})
	require.NoError(t, err)
	assert.Equal(t, serving.EndpointStateConfigUpdateNotUpdating, ep.State.ConfigUpdate)
	assert.Equal(t, "2", ep.Config.ServedEntities[0].EntityVersion)

	ws.OnServingEndpoint("churn-ep", emulator.ServingBehaviour{FailUpdates: true})
	_, err = api.UpdateConfig(c, serving.EndpointCoreConfigInput{Name: "churn-ep", ServedEntities: []serving.ServedEntityInput{{EntityName: "churn", EntityVersion: "1", WorkloadSize: "Small"}}})
	require.NoError(t, err)
	clock.Advance(time.Minute)
	ep, err = api.Get(c, serving.GetServingEndpointRequest{Name: "churn-ep"})
	require.NoError(t, err)
	assert.Equal(t, serving.EndpointStateConfigUpdateUpdateFailed, ep.State.ConfigUpdate)
	assert.Equal(t, "2", ep.Config.ServedEntities[0].EntityVersion, "a failed update keeps the old config")

	logs, err := api.BuildLogs(c, serving.BuildLogsRequest{Name: "churn-ep", ServedModelName: "churn-2"})
	require.NoError(t, err)
	assert.Contains(t, logs.Logs, "Build succeeded.")
	failedLogs, err := api.BuildLogs(c, serving.BuildLogsRequest{Name: "churn-ep", ServedModelName: "churn-1"})
	require.NoError(t, err, "the entity of the failed update keeps its logs")
	assert.Contains(t, failedLogs.Logs, "ERROR: Served entity deployment failed")

	tags, err := api.Patch(c, serving.PatchServingEndpointTags{Name: "churn-ep", AddTags: []serving.EndpointTag{{Key: "team", Value: "ml"}, {Key: "env", Value: "prod"}}})
	require.NoError(t, err)
	assert.Len(t, tags.Tags, 2)
	tags, err = api.Patch(c, serving.PatchServingEndpointTags{Name: "churn-ep", AddTags: []serving.EndpointTag{{Key: "env", Value: "staging"}}, DeleteTags: []string{"team"}})
	require.NoError(t, err)
	require.Len(t, tags.Tags, 1)
	assert.Equal(t, [2]string{"env", "staging"}, [2]string{tags.Tags[0].Key, tags.Tags[0].Value})
	srv, err := api.Logs(c, serving.LogsRequest{Name: "churn-ep", ServedModelName: "churn-2"})
	require.NoError(t, err)
	assert.NotEmpty(t, srv.Logs)
	require.NoError(t, api.Delete(c, serving.DeleteServingEndpointRequest{Name: "churn-ep"}))
	_, err = api.Get(c, serving.GetServingEndpointRequest{Name: "churn-ep"})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
}

// servingChurn is a workspace with versions 1 and 2 of the workspace
// registry model churn, on a manual clock, and its serving endpoints API.
func servingChurn(t *testing.T) (*emulator.Workspace, *emulator.ManualClock, *serving.ServingEndpointsAPI, context.Context) {
	t.Helper()
	ws, clock := start(t, emulator.Options{})
	cl := ws.Client(t)
	c := ctx(t)
	runID, _ := trainedRun(t, ws, clock)
	reg := ml.NewModelRegistry(cl)
	_, err := reg.CreateModel(c, ml.CreateModelRequest{Name: "churn"})
	require.NoError(t, err)
	for range 2 {
		_, err = reg.CreateModelVersion(c, ml.CreateModelVersionRequest{Name: "churn", Source: "runs:/" + runID + "/model"})
		require.NoError(t, err)
	}
	return ws, clock, serving.NewServingEndpoints(cl), c
}

// TestServingListsBothWaysAndRefusesBoth: GET answers served_entities and
// served_models for the same entities, whichever list a config was written
// with; a config that carries both lists is refused (databricks/cli PR 3880).
func TestServingListsBothWaysAndRefusesBoth(t *testing.T) {
	_, clock, api, c := servingChurn(t)
	var err error
	entity := serving.ServedEntityInput{EntityName: "churn", EntityVersion: "1", WorkloadSize: "Small", ScaleToZeroEnabled: true}
	model := serving.ServedModelInput{ModelName: "churn", ModelVersion: "1", WorkloadSize: "Small", ScaleToZeroEnabled: true}

	_, err = api.Create(c, serving.CreateServingEndpoint{Name: "both", Config: &serving.EndpointCoreConfigInput{
		ServedEntities: []serving.ServedEntityInput{entity}, ServedModels: []serving.ServedModelInput{model}}})
	var aerr *apierr.APIError
	require.ErrorAs(t, err, &aerr)
	assert.Equal(t, http.StatusBadRequest, aerr.StatusCode)
	assert.Contains(t, aerr.Message, "Both served_models and served_entities cannot be provided")

	for name, cfg := range map[string]*serving.EndpointCoreConfigInput{
		"by-entity": {ServedEntities: []serving.ServedEntityInput{entity}},
		"by-model":  {ServedModels: []serving.ServedModelInput{model}},
	} {
		_, err = api.Create(c, serving.CreateServingEndpoint{Name: name, Config: cfg})
		require.NoError(t, err, name)
		ep, err := api.Get(c, serving.GetServingEndpointRequest{Name: name})
		require.NoError(t, err)
		require.Len(t, ep.PendingConfig.ServedEntities, 1, name)
		require.Len(t, ep.PendingConfig.ServedModels, 1, name)
		clock.Advance(2 * time.Minute)
		ep, err = api.Get(c, serving.GetServingEndpointRequest{Name: name})
		require.NoError(t, err)
		require.Len(t, ep.Config.ServedEntities, 1, name)
		require.Len(t, ep.Config.ServedModels, 1, name)
		assert.Equal(t, "churn-1", ep.Config.ServedEntities[0].Name, name)
		assert.Equal(t, "churn-1", ep.Config.ServedModels[0].Name, name)
		assert.Equal(t, "1", ep.Config.ServedEntities[0].EntityVersion, name)
		assert.Equal(t, "1", ep.Config.ServedModels[0].ModelVersion, name)
	}

	_, err = api.UpdateConfig(c, serving.EndpointCoreConfigInput{Name: "by-entity",
		ServedEntities: []serving.ServedEntityInput{entity}, ServedModels: []serving.ServedModelInput{model}})
	require.ErrorAs(t, err, &aerr)
	assert.Equal(t, http.StatusBadRequest, aerr.StatusCode)
	assert.Contains(t, aerr.Message, "Both served_models and served_entities cannot be provided")
}

// ucChurn is a workspace with the Unity Catalog model main.ml.churn, an
// SDK client of it and the catalog APIs the tests use.
type ucChurn struct {
	ws       *emulator.Workspace
	cl       *client.DatabricksClient
	c        context.Context
	models   *catalog.RegisteredModelsAPI
	versions *catalog.ModelVersionsAPI
}

func newUCChurn(t *testing.T) ucChurn {
	ws, _ := start(t, emulator.Options{})
	cl := ws.Client(t)
	u := ucChurn{ws: ws, cl: cl, c: ctx(t), models: catalog.NewRegisteredModels(cl), versions: catalog.NewModelVersions(cl)}
	_, err := u.models.Create(u.c, catalog.CreateRegisteredModelRequest{CatalogName: "main", SchemaName: "ml", Name: "churn"})
	require.NoError(t, err)
	return u
}

// createVersion creates a version of main.ml.churn as the MLflow client
// does (it stays PENDING_REGISTRATION until finalized).
func (u ucChurn) createVersion(t *testing.T) *emulator.UCModelVersion {
	var created emulator.UCModelVersionResponse
	require.NoError(t, u.cl.Do(u.c, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/create", nil, nil,
		emulator.CreateUCModelVersionRequest{Name: "main.ml.churn", Source: "dbfs:/somewhere"}, &created))
	return created.ModelVersion
}

func TestUnityCatalogThroughSDK(t *testing.T) {
	u := newUCChurn(t)
	cl, c, models, versions := u.cl, u.c, u.models, u.versions
	_, err := models.Create(c, catalog.CreateRegisteredModelRequest{CatalogName: "main", SchemaName: "ml", Name: "churn"})
	assert.ErrorIs(t, err, apierr.ErrAlreadyExists, "Unity Catalog: 409 ALREADY_EXISTS")

	assert.Equal(t, "PENDING_REGISTRATION", u.createVersion(t).Status)
	err = cl.Do(c, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/generate-temporary-credentials", nil, nil,
		emulator.GenerateTemporaryUCCredentialsRequest{Name: "main.ml.churn", Version: "1", Operation: "MODEL_VERSION_OPERATION_READ_WRITE"}, nil)
	assert.ErrorIs(t, err, apierr.ErrNotImplemented, "no blob storage configured: explicit 501")
	require.NoError(t, cl.Do(c, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/finalize", nil, nil,
		emulator.FinalizeUCModelVersionRequest{Name: "main.ml.churn", Version: "1"}, nil))

	v, err := versions.Get(c, catalog.GetModelVersionRequest{FullName: "main.ml.churn", Version: 1})
	require.NoError(t, err)
	assert.Equal(t, catalog.ModelVersionInfoStatusReady, v.Status)

	for _, value := range []string{"41", "42"} {
		require.NoError(t, cl.Do(c, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/set-tag", nil, nil,
			emulator.SetUCModelVersionTagRequest{Name: "main.ml.churn", Version: "1", Key: "brickferry_build_id", Value: value}, nil))
	}
	var got emulator.UCModelVersionResponse
	require.NoError(t, cl.Do(c, http.MethodGet, "/api/2.0/mlflow/unity-catalog/model-versions/get", nil,
		map[string]any{"name": "main.ml.churn", "version": "1"}, nil, &got))
	assert.Equal(t, []emulator.UCModelVersionTag{{Key: "brickferry_build_id", Value: "42"}}, got.ModelVersion.Tags)
	_, err = models.SetAlias(c, catalog.SetRegisteredModelAliasRequest{FullName: "main.ml.churn", Alias: "champion", VersionNum: 1})
	require.NoError(t, err)
	byAlias, err := versions.GetByAlias(c, catalog.GetByAliasRequest{FullName: "main.ml.churn", Alias: "champion"})
	require.NoError(t, err)
	assert.Equal(t, 1, byAlias.Version)
	all, err := versions.ListAll(c, catalog.ListModelVersionsRequest{FullName: "main.ml.churn"})
	require.NoError(t, err)
	assert.Len(t, all, 1)
	m, err := models.Get(c, catalog.GetRegisteredModelRequest{FullName: "main.ml.churn", IncludeAliases: true})
	require.NoError(t, err)
	require.Len(t, m.Aliases, 1)
	require.NoError(t, models.DeleteAlias(c, catalog.DeleteAliasRequest{FullName: "main.ml.churn", Alias: "champion"}))
	_, err = versions.GetByAlias(c, catalog.GetByAliasRequest{FullName: "main.ml.churn", Alias: "champion"})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
}

// TestUnityCatalogVersionDelete: DELETE /api/2.1/unity-catalog/models/{name}/versions/{n}
// removes the version and its aliases; numbers are not reused.
func TestUnityCatalogVersionDelete(t *testing.T) {
	u := newUCChurn(t)
	c, models, versions := u.c, u.models, u.versions
	u.createVersion(t)
	u.createVersion(t)
	_, err := models.SetAlias(c, catalog.SetRegisteredModelAliasRequest{FullName: "main.ml.churn", Alias: "champion", VersionNum: 1})
	require.NoError(t, err)

	require.NoError(t, versions.Delete(c, catalog.DeleteModelVersionRequest{FullName: "main.ml.churn", Version: 1}))
	_, err = versions.Get(c, catalog.GetModelVersionRequest{FullName: "main.ml.churn", Version: 1})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
	_, err = versions.GetByAlias(c, catalog.GetByAliasRequest{FullName: "main.ml.churn", Alias: "champion"})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist, "the alias went with the version")
	_, err = models.SetAlias(c, catalog.SetRegisteredModelAliasRequest{FullName: "main.ml.churn", Alias: "champion", VersionNum: 1})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
	err = versions.Delete(c, catalog.DeleteModelVersionRequest{FullName: "main.ml.churn", Version: 1})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
	all, err := versions.ListAll(c, catalog.ListModelVersionsRequest{FullName: "main.ml.churn"})
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, 2, all[0].Version)
	assert.Len(t, u.ws.UCModelVersions("main.ml.churn"), 1)
	assert.Equal(t, "3", u.createVersion(t).Version, "version numbers are not reused")
}

// TestUnityCatalogModelDelete: DELETE /api/2.1/unity-catalog/models/{name}
// deletes the model with its versions and aliases (the product's cleanup of a
// cancelled registration deletes the model it created).
func TestUnityCatalogModelDelete(t *testing.T) {
	u := newUCChurn(t)
	c, models, versions := u.c, u.models, u.versions
	u.createVersion(t)
	_, err := models.SetAlias(c, catalog.SetRegisteredModelAliasRequest{FullName: "main.ml.churn", Alias: "champion", VersionNum: 1})
	require.NoError(t, err)

	require.NoError(t, models.Delete(c, catalog.DeleteRegisteredModelRequest{FullName: "main.ml.churn"}))
	_, err = models.Get(c, catalog.GetRegisteredModelRequest{FullName: "main.ml.churn"})
	require.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
	_, err = versions.GetByAlias(c, catalog.GetByAliasRequest{FullName: "main.ml.churn", Alias: "champion"})
	require.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
	assert.Empty(t, u.ws.UCModelVersions("main.ml.churn"), "the versions went with the model")
	err = models.Delete(c, catalog.DeleteRegisteredModelRequest{FullName: "main.ml.churn"})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist, "deleting a missing model")
}

func TestDBFSFilesAndWorkspaceThroughSDK(t *testing.T) {
	ws, _ := start(t, emulator.Options{})
	cl := ws.Client(t)
	c := ctx(t)

	dbfs := files.NewDbfs(cl)
	require.NoError(t, dbfs.Put(c, files.Put{Path: "dbfs:/tmp/a.txt", Contents: base64.StdEncoding.EncodeToString([]byte("hello"))}))
	err := dbfs.Put(c, files.Put{Path: "dbfs:/tmp/a.txt", Contents: ""})
	assert.ErrorIs(t, err, apierr.ErrResourceAlreadyExists)
	h, err := dbfs.Create(c, files.Create{Path: "/tmp/big.bin", Overwrite: true})
	require.NoError(t, err)
	big := bytes.Repeat([]byte("x"), 1<<20)
	require.NoError(t, dbfs.AddBlock(c, files.AddBlock{Handle: h.Handle, Data: base64.StdEncoding.EncodeToString(big)}))
	require.NoError(t, dbfs.AddBlock(c, files.AddBlock{Handle: h.Handle, Data: base64.StdEncoding.EncodeToString([]byte("tail"))}))
	err = dbfs.AddBlock(c, files.AddBlock{Handle: h.Handle, Data: base64.StdEncoding.EncodeToString(append(big, 'y'))})
	assert.ErrorIs(t, err, apierr.ErrBadRequest, "blocks are limited to 1 MB")
	require.NoError(t, dbfs.Close(c, files.Close{Handle: h.Handle}))
	st, err := dbfs.GetStatus(c, files.GetStatusRequest{Path: "/tmp/big.bin"})
	require.NoError(t, err)
	assert.Equal(t, int64(1<<20+4), st.FileSize)
	rd, err := dbfs.Read(c, files.ReadDbfsRequest{Path: "/tmp/big.bin", Offset: 1 << 20, Length: 100})
	require.NoError(t, err)
	got, _ := base64.StdEncoding.DecodeString(rd.Data)
	assert.Equal(t, "tail", string(got))
	var apiErr *apierr.APIError
	_, err = dbfs.Read(c, files.ReadDbfsRequest{Path: "/tmp/big.bin", Length: 1<<20 + 1})
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "MAX_READ_SIZE_EXCEEDED", apiErr.ErrorCode, "reads are limited to 1 MB")
	_, err = dbfs.Read(c, files.ReadDbfsRequest{Path: "/tmp/big.bin", Offset: -1})
	assert.ErrorIs(t, err, apierr.ErrInvalidParameterValue, "a negative offset")
	require.NoError(t, dbfs.Mkdirs(c, files.MkDirs{Path: "/models/churn"}))
	require.NoError(t, dbfs.Delete(c, files.Delete{Path: "/tmp", Recursive: true}))
	_, err = dbfs.GetStatus(c, files.GetStatusRequest{Path: "/tmp/a.txt"})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)

	fs := files.NewFiles(cl)
	require.NoError(t, fs.Upload(c, files.UploadRequest{FilePath: "/Volumes/main/ml/vol/model/MLmodel", Contents: io.NopCloser(strings.NewReader("flavors: {}")), Overwrite: true}))
	dl, err := fs.Download(c, files.DownloadRequest{FilePath: "/Volumes/main/ml/vol/model/MLmodel"})
	require.NoError(t, err)
	body, _ := io.ReadAll(dl.Contents)
	assert.Equal(t, "flavors: {}", string(body))
	meta, err := fs.GetMetadata(c, files.GetMetadataRequest{FilePath: "/Volumes/main/ml/vol/model/MLmodel"})
	require.NoError(t, err)
	assert.Equal(t, int64(11), meta.ContentLength)
	entries, err := fs.ListDirectoryContentsAll(c, files.ListDirectoryContentsRequest{DirectoryPath: "/Volumes/main/ml/vol/model"})
	require.NoError(t, err)
	assert.Len(t, entries, 1)
	require.NoError(t, fs.Delete(c, files.DeleteFileRequest{FilePath: "/Volumes/main/ml/vol/model/MLmodel"}))

	wsAPI := workspace.NewWorkspace(cl)
	require.NoError(t, wsAPI.Mkdirs(c, workspace.Mkdirs{Path: "/Repos/QA/notebooks"}))
	require.NoError(t, wsAPI.Import(c, workspace.Import{Path: "/Repos/QA/notebooks/train", Format: workspace.ImportFormatSource, Language: workspace.LanguagePython,
		Content: base64.StdEncoding.EncodeToString([]byte("# Databricks notebook source\nprint(1)\n"))}))
	err = wsAPI.Import(c, workspace.Import{Path: "/Repos/QA/notebooks/train", Format: workspace.ImportFormatSource, Language: workspace.LanguagePython})
	assert.ErrorIs(t, err, apierr.ErrResourceAlreadyExists)
	require.NoError(t, wsAPI.Upload(c, "/Repos/QA/notebooks/score.py", strings.NewReader("# Databricks notebook source\nprint(2)\n"), workspace.UploadOverwrite()), "multipart import")
	exp, err := wsAPI.Export(c, workspace.ExportRequest{Path: "/Repos/QA/notebooks/train", Format: workspace.ExportFormatSource})
	require.NoError(t, err)
	src, _ := base64.StdEncoding.DecodeString(exp.Content)
	assert.Contains(t, string(src), "print(1)")
	info, err := wsAPI.GetStatusByPath(c, "/Repos/QA/notebooks/train")
	require.NoError(t, err)
	assert.Equal(t, workspace.ObjectTypeNotebook, info.ObjectType)
	_, err = wsAPI.GetStatusByPath(c, "/Repos/nope")
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)

	// A job task whose notebook now exists runs without a script.
	api := jobs.NewJobs(cl)
	sub, err := api.Submit(c, jobs.SubmitRun{Tasks: []jobs.SubmitTask{{TaskKey: "t", NotebookTask: &jobs.NotebookTask{NotebookPath: "/Repos/QA/notebooks/train"}}}})
	require.NoError(t, err)
	assert.Positive(t, sub.RunId)
}

func TestSQLSeesScoredTables(t *testing.T) {
	ws, clock := start(t, emulator.Options{})
	cl := ws.Client(t)
	c := ctx(t)
	ws.OnNotebook("/nb/score", emulator.Behaviour{Score: &emulator.Score{Rows: 1234}})
	api := jobs.NewJobs(cl)
	var last int64
	for range 2 {
		sub, err := api.Submit(c, jobs.SubmitRun{Tasks: []jobs.SubmitTask{{TaskKey: "score",
			NotebookTask: &jobs.NotebookTask{NotebookPath: "/nb/score", BaseParameters: map[string]string{"output_table": "main.ml.churn_scores", "model_uri": "models:/churn/3"}}}}})
		require.NoError(t, err)
		clock.Advance(time.Hour)
		last = sub.RunId
	}
	run, err := api.GetRun(c, jobs.GetRunRequest{RunId: last})
	require.NoError(t, err)
	out, err := api.GetRunOutput(c, jobs.GetRunOutputRequest{RunId: run.Tasks[0].RunId})
	require.NoError(t, err)
	assert.JSONEq(t, `{"rows_written": 1234, "output_table": "main.ml.churn_scores", "table_version": 1, "model_name": "churn", "model_version": "3"}`,
		out.NotebookOutput.Result, "the shipped notebook's exit value")

	_, err = api.Submit(c, jobs.SubmitRun{Tasks: []jobs.SubmitTask{{TaskKey: "score",
		NotebookTask: &jobs.NotebookTask{NotebookPath: "/nb/score", BaseParameters: map[string]string{"output_table": "main.ml.other", "model_uri": "models:/churn/Production"}}}}})
	require.NoError(t, err)
	clock.Advance(time.Hour)
	runs, err := api.ListRunsAll(c, jobs.ListRunsRequest{})
	require.NoError(t, err)
	assert.Equal(t, jobs.RunResultStateFailed, runs[0].State.ResultState, "no version in Production: loading the model fails")
	_, _, written := ws.Table("main.ml.other")
	assert.False(t, written, "nothing is written when the model cannot be loaded")
	stmts := sql.NewStatementExecution(cl)
	count, err := stmts.ExecuteStatement(c, sql.ExecuteStatementRequest{WarehouseId: "wh1", Statement: "SELECT COUNT(*) FROM main.ml.churn_scores"})
	require.NoError(t, err)
	assert.Equal(t, sql.StatementStateSucceeded, count.Status.State)
	assert.Equal(t, [][]string{{"1234"}}, count.Result.DataArray)
	hist, err := stmts.ExecuteStatement(c, sql.ExecuteStatementRequest{WarehouseId: "wh1", Statement: "DESCRIBE HISTORY main.ml.churn_scores LIMIT 1"})
	require.NoError(t, err)
	assert.Equal(t, "1", hist.Result.DataArray[0][0], "two writes: latest Delta version is 1")
	again, err := stmts.GetStatementByStatementId(c, hist.StatementId)
	require.NoError(t, err)
	assert.Equal(t, hist.Result.DataArray, again.Result.DataArray)
	missing, err := stmts.ExecuteStatement(c, sql.ExecuteStatementRequest{WarehouseId: "wh1", Statement: "SELECT COUNT(*) FROM nope"})
	require.NoError(t, err)
	assert.Equal(t, sql.StatementStateFailed, missing.Status.State)
	rows, version, ok := ws.Table("main.ml.churn_scores")
	assert.True(t, ok)
	assert.Equal(t, int64(1234), rows)
	assert.Equal(t, int64(1), version)
}

func TestComputeThroughSDK(t *testing.T) {
	ws, _ := start(t, emulator.Options{})
	cl := ws.Client(t)
	c := ctx(t)
	ws.AddCluster(compute.ClusterDetails{ClusterId: "0101-abc", ClusterName: "shared", State: compute.StateRunning})
	ws.AddInstancePool(compute.GetInstancePool{InstancePoolId: "0524-183651-rank1-pool-wbh7e3lw", InstancePoolName: "rank1"})
	cluster, err := compute.NewClusters(cl).GetByClusterId(c, "0101-abc")
	require.NoError(t, err)
	assert.Equal(t, "shared", cluster.ClusterName)
	_, err = compute.NewClusters(cl).GetByClusterId(c, "nope")
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
	pool, err := compute.NewInstancePools(cl).GetByInstancePoolId(c, "0524-183651-rank1-pool-wbh7e3lw")
	require.NoError(t, err)
	assert.Equal(t, "rank1", pool.InstancePoolName)
	_, err = compute.NewInstancePools(cl).GetByInstancePoolId(c, "nope")
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
}

func TestReposThroughSDK(t *testing.T) {
	ws, _ := start(t, emulator.Options{})
	repos := workspace.NewRepos(ws.Client(t))
	c := ctx(t)
	id := ws.AddRepo("/Repos/QA/churn", "https://dev.azure.com/contoso/mlops/_git/churn", "main")
	created, err := repos.Create(c, workspace.CreateRepoRequest{Url: "https://dev.azure.com/contoso/mlops/_git/other", Provider: "azureDevOpsServices", Path: "/Repos/Prod/other"})
	require.NoError(t, err)
	_, err = repos.Create(c, workspace.CreateRepoRequest{Url: "https://x/y", Provider: "gitHub", Path: "/Repos/QA/churn"})
	assert.ErrorIs(t, err, apierr.ErrResourceAlreadyExists)

	qa, err := repos.ListAll(c, workspace.ListReposRequest{PathPrefix: "/Repos/QA"})
	require.NoError(t, err)
	require.Len(t, qa, 1)
	assert.Equal(t, id, qa[0].Id)

	require.NoError(t, repos.Update(c, workspace.UpdateRepoRequest{RepoId: id, Branch: "release/1"}))
	got, err := repos.Get(c, workspace.GetRepoRequest{RepoId: id})
	require.NoError(t, err)
	assert.Equal(t, "release/1", got.Branch)
	before, _ := ws.Repo(created.Id)
	assert.Equal(t, "main", before.Branch)
	_, err = repos.Get(c, workspace.GetRepoRequest{RepoId: 999999})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
}

func TestHTTPSWithTheEmulatorCA(t *testing.T) {
	ca, err := emulator.NewCA()
	require.NoError(t, err)
	ws := emulator.Start(t, emulator.Options{CA: ca})
	require.True(t, strings.HasPrefix(ws.URL(), "https://127.0.0.1:"))
	_, err = jobs.NewJobs(ws.Client(t)).ListAll(ctx(t), jobs.ListJobsRequest{})
	require.NoError(t, err, "the SDK config trusts the CA")

	resp, err := http.Get(ws.URL() + "/api/2.2/jobs/list")
	if err == nil {
		_ = resp.Body.Close()
	}
	assert.Error(t, err, "a client that does not trust the CA is refused")
}

func TestDeletingRegistryObjects(t *testing.T) {
	ws, clock := start(t, emulator.Options{})
	reg := ml.NewModelRegistry(ws.Client(t))
	c := ctx(t)
	runID, _ := trainedRun(t, ws, clock)
	_, err := reg.CreateModel(c, ml.CreateModelRequest{Name: "churn"})
	require.NoError(t, err)
	for range 2 {
		_, err = reg.CreateModelVersion(c, ml.CreateModelVersionRequest{Name: "churn", Source: "runs:/" + runID + "/model", RunId: runID})
		require.NoError(t, err)
	}
	clock.Advance(5 * time.Second)
	_, err = reg.TransitionStage(c, ml.TransitionModelVersionStageDatabricks{Name: "churn", Version: "2", Stage: "Production"})
	require.NoError(t, err)

	require.NoError(t, reg.DeleteModelVersion(c, ml.DeleteModelVersionRequest{Name: "churn", Version: "1"}))
	_, err = reg.GetModelVersion(c, ml.GetModelVersionRequest{Name: "churn", Version: "1"})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
	assert.ErrorIs(t, reg.DeleteModelVersion(c, ml.DeleteModelVersionRequest{Name: "churn", Version: "2"}), apierr.ErrInvalidState, "Production")
	assert.ErrorIs(t, reg.DeleteModel(c, ml.DeleteModelRequest{Name: "churn"}), apierr.ErrInvalidState)

	_, err = reg.TransitionStage(c, ml.TransitionModelVersionStageDatabricks{Name: "churn", Version: "2", Stage: "Archived"})
	require.NoError(t, err)
	require.NoError(t, reg.DeleteModel(c, ml.DeleteModelRequest{Name: "churn"}))
	_, err = reg.GetModel(c, ml.GetModelRequest{Name: "churn"})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
}

// TestUnityCatalogVersionTagRoutes: version tags are set with POST
// .../set-tag and deleted with DELETE .../delete-tag (MLflow's
// databricks_uc_registry_service.proto at commit e2b9058c); the older
// .../model-versions/tags route is unknown.
func TestUnityCatalogVersionTagRoutes(t *testing.T) {
	u := newUCChurn(t)
	cl, c := u.cl, u.c
	u.createVersion(t)
	const route = "/api/2.0/mlflow/unity-catalog/model-versions/"
	tags := func() []emulator.UCModelVersionTag {
		var got emulator.UCModelVersionResponse
		require.NoError(t, cl.Do(c, http.MethodGet, route+"get", nil, map[string]any{"name": "main.ml.churn", "version": "1"}, nil, &got))
		return got.ModelVersion.Tags
	}
	for _, key := range []string{"team", "brickferry_build_id"} {
		require.NoError(t, cl.Do(c, http.MethodPost, route+"set-tag", nil, nil,
			emulator.SetUCModelVersionTagRequest{Name: "main.ml.churn", Version: "1", Key: key, Value: "x"}, nil))
	}
	require.NoError(t, cl.Do(c, http.MethodDelete, route+"delete-tag", nil, map[string]any{"name": "main.ml.churn", "version": "1", "key": "team"}, nil, nil))
	assert.Equal(t, []emulator.UCModelVersionTag{{Key: "brickferry_build_id", Value: "x"}}, tags())

	for _, method := range []string{http.MethodPost, http.MethodDelete} {
		err := cl.Do(c, method, route+"tags", nil, nil, emulator.SetUCModelVersionTagRequest{Name: "main.ml.churn", Version: "1", Key: "brickferry_build_id", Value: "y"}, nil)
		var apiErr *apierr.APIError
		require.ErrorAs(t, err, &apiErr, method)
		assert.Equal(t, http.StatusNotFound, apiErr.StatusCode, method)
		assert.Equal(t, "ENDPOINT_NOT_FOUND", apiErr.ErrorCode, method)
	}
	assert.Equal(t, []emulator.UCModelVersionTag{{Key: "brickferry_build_id", Value: "x"}}, tags())
}

// TestUnityCatalogRefusesReservedTagKeys: a version tag key with any of
// . , - = / :, an empty or over-long key and an over-long value are refused,
// at create and at set-tag.
func TestUnityCatalogRefusesReservedTagKeys(t *testing.T) {
	u := newUCChurn(t)
	cl, c := u.cl, u.c
	u.createVersion(t)
	for _, key := range []string{"owner.name", "a,b", "ml-team", "k=v", "a/b", "ns:key", strings.Repeat("k", 256)} {
		t.Run(key, func(t *testing.T) {
			err := cl.Do(c, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/set-tag", nil, nil,
				emulator.SetUCModelVersionTagRequest{Name: "main.ml.churn", Version: "1", Key: key, Value: "x"}, nil)
			require.ErrorIs(t, err, apierr.ErrInvalidParameterValue)
			assert.Contains(t, err.Error(), "Tag name "+key+" is either not between 1-255 characters long or contains one or more of the reserved characters")
			err = cl.Do(c, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/create", nil, nil,
				emulator.CreateUCModelVersionRequest{Name: "main.ml.churn", Source: "dbfs:/somewhere", Tags: []emulator.UCModelVersionTag{{Key: key, Value: "x"}}}, nil)
			require.ErrorIs(t, err, apierr.ErrInvalidParameterValue)
		})
	}
	err := cl.Do(c, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/set-tag", nil, nil,
		emulator.SetUCModelVersionTagRequest{Name: "main.ml.churn", Version: "1", Key: "owner_name", Value: strings.Repeat("v", 1001)}, nil)
	require.ErrorIs(t, err, apierr.ErrInvalidParameterValue, "a value over 1000 characters")
	require.NoError(t, cl.Do(c, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/set-tag", nil, nil,
		emulator.SetUCModelVersionTagRequest{Name: "main.ml.churn", Version: "1", Key: strings.Repeat("k", 255), Value: strings.Repeat("v", 1000)}, nil))
	assert.Len(t, u.ws.UCModelVersions("main.ml.churn"), 1, "no version made by a refused create")
}

// TestUnityCatalogVersionRunLink: every answer names the workspace
// (X-Databricks-Org-Id); a version created with run_tracking_server_id links
// to that workspace (run_workspace_id), one without has no link, and a value
// that is no workspace id is refused.
func TestUnityCatalogVersionRunLink(t *testing.T) {
	u := newUCChurn(t)
	cl, c := u.cl, u.c
	var me struct {
		OrgID string `json:"-" header:"x-databricks-org-id"`
	}
	require.NoError(t, cl.Do(c, http.MethodGet, "/api/2.1/unity-catalog/models/main.ml.churn", nil, nil, nil, &me))
	assert.Equal(t, strconv.FormatInt(u.ws.WorkspaceID, 10), me.OrgID)

	u.createVersion(t)
	var linked emulator.UCModelVersionResponse
	require.NoError(t, cl.Do(c, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/create", nil, nil,
		emulator.CreateUCModelVersionRequest{Name: "main.ml.churn", Source: "dbfs:/somewhere", RunID: "abc", RunTrackingServerID: "1234567890123456"}, &linked))
	assert.Equal(t, "1234567890123456", linked.ModelVersion.RunTrackingServerID)
	versions := u.ws.UCModelVersions("main.ml.churn")
	require.Len(t, versions, 2)
	assert.Equal(t, 1234567890123456, versions[0].RunWorkspaceId)
	assert.Zero(t, versions[1].RunWorkspaceId, "created without run_tracking_server_id: no run link")

	err := cl.Do(c, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/create", nil, nil,
		emulator.CreateUCModelVersionRequest{Name: "main.ml.churn", Source: "dbfs:/somewhere", RunID: "abc", RunTrackingServerID: "dev-workspace"}, nil)
	require.ErrorIs(t, err, apierr.ErrInvalidParameterValue)
	assert.Len(t, u.ws.UCModelVersions("main.ml.churn"), 2)
}
