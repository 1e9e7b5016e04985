package emulator

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/ml"
)

// MLflowEra is the MLflow a workspace speaks: its tracking server's routes
// and what its runtime's MLflow client does when a notebook logs a model
// (Behaviour.Train).
type MLflowEra int

const (
	// MLflow2 is a workspace before MLflow 3 (Databricks Runtime 15.4 LTS ML
	// ships MLflow 2): log_model writes the model's files under the run's
	// artifacts (<artifact path>/MLmodel, ...) and records it in the run tag
	// mlflow.log-model.history; the logged-model routes do not exist and
	// answer 404 ENDPOINT_NOT_FOUND, as any unknown route. The zero value.
	MLflow2 MLflowEra = iota
	// MLflow3 is a workspace of MLflow 3 (Databricks Runtime 17.3 LTS ML):
	// log_model creates a logged model (models:/m-<id>) whose files live
	// under the logged model's own artifact location, links it to the run as
	// a model output, and writes no mlflow.log-model.history tag; the
	// logged-model routes below are served.
	MLflow3
)

func (e MLflowEra) String() string {
	if e == MLflow3 {
		return "MLflow 3"
	}
	return "MLflow 2"
}

// Logged models (MLflow 3). Sources:
//
//   - Routes and shapes of create, get, finalize (PATCH), delete, search,
//     set tags (PATCH), delete tag, log params and runs/outputs:
//     databricks-sdk-go v0.81.0 service/ml (impl.go CreateLoggedModel,
//     GetLoggedModel, FinalizeLoggedModel, DeleteLoggedModel,
//     SearchLoggedModels, SetLoggedModelTags, DeleteLoggedModelTag,
//     LogLoggedModelParams, LogOutputs; model.go LoggedModelInfo: the model
//     is created LOGGED_MODEL_PENDING and finalized LOGGED_MODEL_READY or
//     LOGGED_MODEL_UPLOAD_FAILED; SearchLoggedModelsRequest: "The maximum
//     limit is 50").
//   - What log_model does in MLflow 3 (mlflow/models/model.py Model.log;
//     mlflow/tracking/fluent.py _use_logged_model): create the logged model
//     (name = the name/artifact_path given to log_model, source_run_id = the
//     run, params = the run's params), log_outputs(run, [model_id, step]),
//     link the run's metrics of that step to the model, upload the files
//     with log_model_artifacts, finalize READY (FAILED on an error). It no
//     longer calls _record_logged_model, the writer of
//     mlflow.log-model.history.
//   - Ids "m-" + 32 hex digits (mlflow/store/tracking/sqlalchemy_store.py
//     create_logged_model); on Databricks the artifact location is
//     dbfs:/databricks/mlflow-tracking/<experiment id>/logged_models/<model
//     id> (mlflow/store/artifact/databricks_logged_model_artifact_repo.py
//     _URI_REGEX).
//   - The artifact routes, which the SDK lacks, from MLflow's protocol:
//     ListLoggedModelArtifacts, GET
//     /mlflow/logged-models/{model_id}/artifacts/directories
//     (mlflow/protos/service.proto), and getCredentialsForLoggedModelUpload
//     and getCredentialsForLoggedModelDownload, POST
//     /mlflow/logged-models/{model_id}/artifacts/credentials-for-upload and
//     -download (mlflow/protos/databricks_artifacts.proto,
//     LoggedModelArtifactCredential), as MLflow's DatabricksArtifactRepository
//     calls them for a logged model
//     (mlflow/store/artifact/databricks_artifact_repo_resources.py
//     _LoggedModel at mlflow/mlflow commit
//     05f5aef3bb367159a3455d0b857ed0b2aa83d07e).
//   - Search filters: MLflow searches a run's logged models with no filter
//     or `name = '<name>'` and compares source_run_id itself, "TODO: Filter
//     by 'source_run_id' once Databricks backend supports it"
//     (mlflow/store/artifact/runs_artifact_repo.py
//     _get_logged_model_artifact_repo; mlflow/tracking/_model_registry/
//     fluent.py _get_logged_models_from_run at mlflow/mlflow commit
//     042a29123ef7d1a99ed46e9e3939146a8796539d): a source_run_id filter is
//     refused here as INVALID_PARAMETER_VALUE.
//
// Not modelled: the Files API path MLflow's
// DatabricksLoggedModelArtifactRepository tries first
// (/Mlflow/Artifacts/<experiment>/LoggedModels/<id>); MLflow falls back to
// the credential routes above when it fails.

type loggedModel struct {
	info     ml.LoggedModelInfo
	params   []ml.LoggedModelParameter
	metrics  []ml.Metric
	storeKey string // artifact root inside the artifact store
	seq      int64  // creation order, for models created in the same millisecond
}

func (lm *loggedModel) toSDK() *ml.LoggedModel {
	info := lm.info
	info.Tags = slices.Clone(lm.info.Tags)
	return &ml.LoggedModel{Info: &info, Data: &ml.LoggedModelData{Params: slices.Clone(lm.params), Metrics: slices.Clone(lm.metrics)}}
}

func (lm *loggedModel) setTag(key, value string) {
	for i := range lm.info.Tags {
		if lm.info.Tags[i].Key == key {
			lm.info.Tags[i].Value = value
			return
		}
	}
	lm.info.Tags = append(lm.info.Tags, ml.LoggedModelTag{Key: key, Value: value})
}

func (lm *loggedModel) param(key string) (string, bool) {
	for _, p := range lm.params {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

func (lm *loggedModel) tag(key string) (string, bool) {
	for _, t := range lm.info.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// createLoggedModel creates a PENDING logged model in an experiment; the
// create route and Train (an MLflow 3 log_model) both use it.
func (ws *Workspace) createLoggedModel(req ml.CreateLoggedModelRequest, now time.Time) (*loggedModel, *apiError) {
	if req.ExperimentId == "" {
		return nil, invalidParam("Missing required field: experiment_id")
	}
	exp, ok := ws.mlflow.experiments[req.ExperimentId]
	if !ok {
		return nil, notFound("No Experiment with id=%s exists", req.ExperimentId)
	}
	if req.SourceRunId != "" {
		if _, aerr := ws.mlflowRun(req.SourceRunId); aerr != nil {
			return nil, aerr
		}
	}
	id := "m-" + randomHex(16)
	name := req.Name
	if name == "" {
		name = "model-" + id[2:8]
	}
	lm := &loggedModel{
		info: ml.LoggedModelInfo{
			ModelId: id, ExperimentId: req.ExperimentId, Name: name, ModelType: req.ModelType, SourceRunId: req.SourceRunId,
			Status: ml.LoggedModelStatusLoggedModelPending, CreationTimestampMs: millis(now), LastUpdatedTimestampMs: millis(now),
			ArtifactUri: exp.ArtifactLocation + "/logged_models/" + id, CreatorId: ws.userID(),
			Tags: slices.Clone(req.Tags),
		},
		params:   slices.Clone(req.Params),
		storeKey: "mlflow-tracking/" + req.ExperimentId + "/logged_models/" + id,
		seq:      ws.ids.take(),
	}
	ws.mlflow.logged[id] = lm
	return lm, nil
}

// userID is the numeric id behind the workspace's user (creator_id).
func (ws *Workspace) userID() int64 { return ws.WorkspaceID%1_000_000 + 1 }

func (ws *Workspace) loggedModel(id string) (*loggedModel, *apiError) {
	return byID(ws.mlflow.logged, id, "model_id", "Logged model with ID '%s' not found.")
}

// finalizeLoggedModel sets the final status of a logged model.
func finalizeLoggedModel(lm *loggedModel, status ml.LoggedModelStatus, now time.Time) *apiError {
	if status != ml.LoggedModelStatusLoggedModelReady && status != ml.LoggedModelStatusLoggedModelUploadFailed {
		return invalidParam("Invalid status %q: a logged model is finalized %s or %s", status, ml.LoggedModelStatusLoggedModelReady, ml.LoggedModelStatusLoggedModelUploadFailed)
	}
	lm.info.Status = status
	lm.info.LastUpdatedTimestampMs = millis(now)
	return nil
}

// logOutputs links models to a run as its outputs (RunOutputs.model_outputs).
func (ws *Workspace) logOutputs(run *mlflowRun, models []ml.ModelOutput) *apiError {
	for _, m := range models {
		if _, aerr := ws.loggedModel(m.ModelId); aerr != nil {
			return aerr
		}
		if !slices.Contains(run.outputs, m) {
			run.outputs = append(run.outputs, m)
		}
	}
	return nil
}

// The routes of MLflow's protocol for logged-model artifacts that the SDK
// lacks (see the sources above).

// ListLoggedModelArtifactsRequest is the query of
// GET /api/2.0/mlflow/logged-models/{model_id}/artifacts/directories.
type ListLoggedModelArtifactsRequest struct {
	ArtifactDirectoryPath string `json:"-" url:"artifact_directory_path,omitempty"`
	PageToken             string `json:"-" url:"page_token,omitempty"`
}

// ListLoggedModelArtifactsResponse lists the direct children of a folder,
// paths relative to the logged model's artifact root (RootURI; the field as
// ports of MLflow's server answer it, see SOURCES.md).
type ListLoggedModelArtifactsResponse struct {
	RootURI       string        `json:"root_uri,omitempty"`
	Files         []ml.FileInfo `json:"files,omitempty"`
	NextPageToken string        `json:"next_page_token,omitempty"`
}

// GetCredentialsForLoggedModel is the body of
// credentials-for-upload and credentials-for-download (the model id is in
// the path; MLflow's message also has it as a field).
type GetCredentialsForLoggedModel struct {
	ModelID   string   `json:"model_id,omitempty"`
	Paths     []string `json:"paths"`
	PageToken string   `json:"page_token,omitempty"`
}

// GetCredentialsForLoggedModelResponse is a page of signed URLs.
type GetCredentialsForLoggedModelResponse struct {
	Credentials   []LoggedModelArtifactCredential `json:"credentials,omitempty"`
	NextPageToken string                          `json:"next_page_token,omitempty"`
}

// LoggedModelArtifactCredential is one signed URL for one file of a logged
// model.
type LoggedModelArtifactCredential struct {
	ModelID        string                 `json:"model_id"`
	CredentialInfo ArtifactCredentialInfo `json:"credential_info"`
}

// RunOutputs are the outputs of a run (service.proto RunOutputs: the
// logged models it produced), absent from the SDK's ml.Run.
type RunOutputs struct {
	ModelOutputs []ml.ModelOutput `json:"model_outputs,omitempty"`
}

func (ws *Workspace) loggedModelRoutes() {
	handle(ws, "POST /api/2.0/mlflow/logged-models", func(r *http.Request, req *ml.CreateLoggedModelRequest) (any, *apiError) {
		lm, aerr := ws.createLoggedModel(*req, ws.clock.Now())
		if aerr != nil {
			return nil, aerr
		}
		return &ml.CreateLoggedModelResponse{Model: lm.toSDK()}, nil
	})
	handle(ws, "GET /api/2.0/mlflow/logged-models/{model_id}", func(r *http.Request, req *ml.GetLoggedModelRequest) (any, *apiError) {
		lm, aerr := ws.loggedModel(r.PathValue("model_id"))
		if aerr != nil {
			return nil, aerr
		}
		return &ml.GetLoggedModelResponse{Model: lm.toSDK()}, nil
	})
	handle(ws, "PATCH /api/2.0/mlflow/logged-models/{model_id}", func(r *http.Request, req *ml.FinalizeLoggedModelRequest) (any, *apiError) {
		lm, aerr := ws.loggedModel(r.PathValue("model_id"))
		if aerr != nil {
			return nil, aerr
		}
		if aerr := finalizeLoggedModel(lm, req.Status, ws.clock.Now()); aerr != nil {
			return nil, aerr
		}
		return &ml.FinalizeLoggedModelResponse{Model: lm.toSDK()}, nil
	})
	handle(ws, "DELETE /api/2.0/mlflow/logged-models/{model_id}", func(r *http.Request, req *ml.DeleteLoggedModelRequest) (any, *apiError) {
		lm, aerr := ws.loggedModel(r.PathValue("model_id"))
		if aerr != nil {
			return nil, aerr
		}
		delete(ws.mlflow.logged, lm.info.ModelId)
		return nil, nil
	})
	handle(ws, "POST /api/2.0/mlflow/logged-models/search", ws.searchLoggedModels)
	handle(ws, "PATCH /api/2.0/mlflow/logged-models/{model_id}/tags", func(r *http.Request, req *ml.SetLoggedModelTagsRequest) (any, *apiError) {
		lm, aerr := ws.loggedModel(r.PathValue("model_id"))
		if aerr != nil {
			return nil, aerr
		}
		for _, t := range req.Tags {
			if t.Key == "" {
				return nil, invalidParam("Missing required field: tags.key")
			}
			lm.setTag(t.Key, t.Value)
		}
		lm.info.LastUpdatedTimestampMs = millis(ws.clock.Now())
		return nil, nil
	})
	handle(ws, "DELETE /api/2.0/mlflow/logged-models/{model_id}/tags/{tag_key}", func(r *http.Request, req *ml.DeleteLoggedModelTagRequest) (any, *apiError) {
		lm, aerr := ws.loggedModel(r.PathValue("model_id"))
		if aerr != nil {
			return nil, aerr
		}
		key := r.PathValue("tag_key")
		if _, ok := lm.tag(key); !ok {
			return nil, notFound("No tag with key '%s' found on logged model '%s'.", key, lm.info.ModelId)
		}
		lm.info.Tags = slices.DeleteFunc(lm.info.Tags, func(t ml.LoggedModelTag) bool { return t.Key == key })
		return nil, nil
	})
	// Params of a logged model are immutable, as a run's are.
	handle(ws, "POST /api/2.0/mlflow/logged-models/{model_id}/params", func(r *http.Request, req *ml.LogLoggedModelParamsRequest) (any, *apiError) {
		lm, aerr := ws.loggedModel(r.PathValue("model_id"))
		if aerr != nil {
			return nil, aerr
		}
		for _, p := range req.Params {
			if old, ok := lm.param(p.Key); ok && old != p.Value {
				return nil, invalidParam("Changing param values is not allowed. Param with key='%s' was already logged with value='%s' for logged model ID='%s'. Attempted logging new value '%s'.", p.Key, old, lm.info.ModelId, p.Value)
			}
		}
		for _, p := range req.Params {
			if _, ok := lm.param(p.Key); !ok {
				lm.params = append(lm.params, p)
			}
		}
		return nil, nil
	})
	handle(ws, "POST /api/2.0/mlflow/runs/outputs", func(r *http.Request, req *ml.LogOutputsRequest) (any, *apiError) {
		run, aerr := ws.mlflowRun(req.RunId)
		if aerr != nil {
			return nil, aerr
		}
		return nil, ws.logOutputs(run, req.Models)
	})
	handle(ws, "GET /api/2.0/mlflow/logged-models/{model_id}/artifacts/directories", func(r *http.Request, req *ListLoggedModelArtifactsRequest) (any, *apiError) {
		lm, aerr := ws.loggedModel(r.PathValue("model_id"))
		if aerr != nil {
			return nil, aerr
		}
		files, aerr := ws.listArtifactFiles(r.Context(), lm.storeKey, req.ArtifactDirectoryPath)
		if aerr != nil {
			return nil, aerr
		}
		return &ListLoggedModelArtifactsResponse{RootURI: lm.info.ArtifactUri, Files: files}, nil
	})
	handle(ws, "POST /api/2.0/mlflow/logged-models/{model_id}/artifacts/credentials-for-upload", func(r *http.Request, req *GetCredentialsForLoggedModel) (any, *apiError) {
		return ws.loggedModelCredentials(r.PathValue("model_id"), req, true)
	})
	handle(ws, "POST /api/2.0/mlflow/logged-models/{model_id}/artifacts/credentials-for-download", func(r *http.Request, req *GetCredentialsForLoggedModel) (any, *apiError) {
		return ws.loggedModelCredentials(r.PathValue("model_id"), req, false)
	})
}

func (ws *Workspace) loggedModelCredentials(modelID string, req *GetCredentialsForLoggedModel, write bool) (any, *apiError) {
	lm, aerr := ws.loggedModel(modelID)
	if aerr != nil {
		return nil, aerr
	}
	if req.ModelID != "" && req.ModelID != modelID {
		return nil, invalidParam("The model_id in the body (%s) differs from the path (%s).", req.ModelID, modelID)
	}
	infos, next, aerr := ws.signPage(lm.storeKey, req.Paths, "paths", req.PageToken, write)
	if aerr != nil {
		return nil, aerr
	}
	resp := &GetCredentialsForLoggedModelResponse{NextPageToken: next}
	for _, info := range infos {
		resp.Credentials = append(resp.Credentials, LoggedModelArtifactCredential{ModelID: modelID, CredentialInfo: info})
	}
	return resp, nil
}

// maxLoggedModelsPage is the most logged models a search answers at once
// (SearchLoggedModelsRequest.MaxResults: "The maximum limit is 50").
const maxLoggedModelsPage = 50

// searchLoggedModels answers POST /api/2.0/mlflow/logged-models/search:
// the logged models of the given experiments that match the filter (clauses
// on name, model_id, status, model_type, params.*, metrics.* and tags.*
// joined by AND), newest first unless order_by says otherwise.
func (ws *Workspace) searchLoggedModels(r *http.Request, req *ml.SearchLoggedModelsRequest) (any, *apiError) {
	if len(req.ExperimentIds) == 0 {
		return nil, invalidParam("Missing required field: experiment_ids")
	}
	if len(req.Datasets) > 0 {
		return nil, errorf(http.StatusNotImplemented, "NOT_IMPLEMENTED", "The emulator keeps no datasets: search logged models without datasets")
	}
	filter, err := parseRunFilter(req.Filter)
	if err != nil {
		return nil, invalidParam("Invalid filter '%s': %v", req.Filter, err)
	}
	for _, c := range filter {
		if c.entity == "attributes" && c.key == "source_run_id" {
			return nil, invalidParam("Invalid filter '%s': filtering logged models by source_run_id is not supported; compare source_run_id of the results instead", req.Filter)
		}
		if c.entity == "attributes" && !slices.Contains(loggedModelAttributes, c.key) {
			return nil, invalidParam("Invalid filter '%s': unknown attribute %q", req.Filter, c.key)
		}
	}
	less, aerr := loggedModelOrder(req.OrderBy)
	if aerr != nil {
		return nil, aerr
	}
	var matched []*loggedModel
	for _, lm := range ws.mlflow.logged {
		if slices.Contains(req.ExperimentIds, lm.info.ExperimentId) && filter.matches(lm) {
			matched = append(matched, lm)
		}
	}
	slices.SortFunc(matched, less)
	size := req.MaxResults
	if size <= 0 || size > maxLoggedModelsPage {
		size = maxLoggedModelsPage
	}
	start, end, next, aerr := searchPage(req.PageToken, size, maxLoggedModelsPage, len(matched))
	if aerr != nil {
		return nil, aerr
	}
	resp := &ml.SearchLoggedModelsResponse{NextPageToken: next}
	for _, lm := range matched[start:end] {
		resp.Models = append(resp.Models, *lm.toSDK())
	}
	return resp, nil
}

// loggedModelOrder is the order of search results: newest first by default;
// order_by on creation_timestamp, last_updated_timestamp or name (the first
// entry; ties in creation order, the same way round).
func loggedModelOrder(by []ml.SearchLoggedModelsOrderBy) (func(a, b *loggedModel) int, *apiError) {
	field, asc := "creation_timestamp", false
	if len(by) > 0 {
		field, asc = by[0].FieldName, by[0].Ascending
	}
	key := map[string]func(*loggedModel) string{
		"creation_timestamp":     func(m *loggedModel) string { return fmt.Sprintf("%020d", m.info.CreationTimestampMs) },
		"last_updated_timestamp": func(m *loggedModel) string { return fmt.Sprintf("%020d", m.info.LastUpdatedTimestampMs) },
		"name":                   func(m *loggedModel) string { return m.info.Name },
	}[field]
	if key == nil {
		return nil, errorf(http.StatusNotImplemented, "NOT_IMPLEMENTED", "The emulator orders logged models by creation_timestamp, last_updated_timestamp or name, not %q", field)
	}
	return func(a, b *loggedModel) int {
		c := cmp.Compare(key(a), key(b))
		c = cmp.Or(c, cmp.Compare(a.seq, b.seq))
		if !asc {
			return -c
		}
		return c
	}, nil
}

// loggedModelAttributes are the attributes a logged-model search filters
// on (a source_run_id filter is refused before, see above).
var loggedModelAttributes = []string{"name", "model_id", "status", "model_type"}

func (lm *loggedModel) attribute(key string) (string, bool) {
	switch key {
	case "name":
		return lm.info.Name, true
	case "model_id":
		return lm.info.ModelId, true
	case "status":
		return string(lm.info.Status), true
	case "model_type":
		return lm.info.ModelType, true
	}
	return "", false
}

// metric is the model's latest value of a metric.
func (lm *loggedModel) metric(key string) (float64, bool) {
	var latest *ml.Metric
	for i, m := range lm.metrics {
		if m.Key == key && (latest == nil || m.Step > latest.Step || (m.Step == latest.Step && m.Timestamp >= latest.Timestamp)) {
			latest = &lm.metrics[i]
		}
	}
	if latest == nil {
		return 0, false
	}
	return latest.Value, true
}

// logModel3 is MLflow 3's log_model in a training notebook (Model.log): a
// logged model named name, made from run, linked to it as an output at step
// 0 with the run's metrics, its files uploaded to the model's own location,
// then finalized READY.
func (ws *Workspace) logModel3(run *mlflowRun, name string, files map[string][]byte, now time.Time) (*loggedModel, error) {
	var params []ml.LoggedModelParameter
	for _, p := range run.params {
		params = append(params, ml.LoggedModelParameter{Key: p.Key, Value: p.Value})
	}
	lm, aerr := ws.createLoggedModel(ml.CreateLoggedModelRequest{
		ExperimentId: run.info.ExperimentId, Name: name, SourceRunId: run.info.RunId, Params: params,
	}, now)
	if aerr != nil {
		return nil, fmt.Errorf("create logged model: %s", aerr.Message)
	}
	if aerr := ws.logOutputs(run, []ml.ModelOutput{{ModelId: lm.info.ModelId, Step: 0}}); aerr != nil {
		return nil, fmt.Errorf("log outputs: %s", aerr.Message)
	}
	for _, k := range slices.Sorted(maps.Keys(run.metrics)) {
		m := run.metrics[k]
		if m.Step == 0 {
			m.ModelId = lm.info.ModelId
			lm.metrics = append(lm.metrics, m)
		}
	}
	if err := putFiles(ws.bgCtx(), ws.store, lm.storeKey, files); err != nil {
		_ = finalizeLoggedModel(lm, ml.LoggedModelStatusLoggedModelUploadFailed, now)
		return nil, fmt.Errorf("log model artifacts: %w", err)
	}
	_ = finalizeLoggedModel(lm, ml.LoggedModelStatusLoggedModelReady, now)
	return lm, nil
}

// resolveLoggedModelSource is the artifact root of the logged model a
// models:/<model id> source names (ok false: not such a URI).
func (ws *Workspace) resolveLoggedModelSource(source string) (key string, ok bool, err error) {
	id, isModels := strings.CutPrefix(source, "models:/")
	if !isModels || strings.ContainsAny(id, "/@") {
		return "", false, nil
	}
	lm, found := ws.mlflow.logged[id]
	if !found {
		return "", true, fmt.Errorf("logged model %s not found", id)
	}
	return lm.storeKey, true, nil
}

// LoggedModel returns a logged model as the API would answer it.
func (ws *Workspace) LoggedModel(id string) (ml.LoggedModel, bool) {
	return lookupView(ws, ws.mlflow.logged, id, func(lm *loggedModel) ml.LoggedModel { return *lm.toSDK() })
}

// RunOutputs returns the logged models linked to a run as its outputs.
func (ws *Workspace) RunOutputs(runID string) []ml.ModelOutput {
	out, _ := lookupView(ws, ws.mlflow.runs, runID, func(r *mlflowRun) []ml.ModelOutput { return slices.Clone(r.outputs) })
	return out
}
