package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/ml"
)

// Workspace model registry (https://docs.databricks.com/api/workspace/modelregistry).
//
// Creating a version copies the source's files into registry storage
// (dbfs:/databricks/mlflow-registry/<model id>/versions/<version>), as
// Databricks does, so later changes to the run's artifacts do not affect
// the version. The version is PENDING_REGISTRATION for
// Options.RegistrationDelay, then READY, or FAILED_REGISTRATION when the
// source has no files or a failure was scripted with FailRegistration.

// The stages are case-sensitive.
var registryStages = []string{"None", "Staging", "Production", "Archived"}

type registryState struct {
	models map[string]*regModel
	fail   map[string]string // model name → scripted registration failure
}

type regModel struct {
	id       string
	model    ml.Model
	versions []*regVersion
}

type regVersion struct {
	mv       ml.ModelVersion
	readyAt  time.Time
	failMsg  string
	storeKey string
	modelID  string // the logged model registered (MLflow 3), if any
}

func newRegistryState() registryState {
	return registryState{models: map[string]*regModel{}, fail: map[string]string{}}
}

// FailRegistration makes the next versions of model end FAILED_REGISTRATION
// with message; an empty message undoes it.
func (ws *Workspace) FailRegistration(model, message string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if message == "" {
		delete(ws.registry.fail, model)
		return
	}
	ws.registry.fail[model] = message
}

func (ws *Workspace) advanceRegistry(time.Time) {} // states are derived in versionView

func (v *regVersion) view(now time.Time) ml.ModelVersion {
	mv := v.mv
	mv.Tags = append([]ml.ModelVersionTag(nil), v.mv.Tags...)
	switch {
	case now.Before(v.readyAt):
		mv.Status = ml.ModelVersionStatusPendingRegistration
		mv.StatusMessage = "Pending registration"
	case v.failMsg != "":
		mv.Status = ml.ModelVersionStatusFailedRegistration
		mv.StatusMessage = v.failMsg
	default:
		mv.Status = ml.ModelVersionStatusReady
		mv.StatusMessage = ""
	}
	return mv
}

// mlflowView is the version as MLflow 3's ModelVersion has it: the SDK's
// fields and model_id.
func (v *regVersion) mlflowView(now time.Time) mlflowModelVersion {
	return mlflowModelVersion{ModelVersion: v.view(now), ModelID: v.modelID}
}

func (v *regVersion) databricksView(now time.Time) *ml.ModelVersionDatabricks {
	mv := v.view(now)
	var out ml.ModelVersionDatabricks
	_ = convert(mv, &out)
	out.PermissionLevel = ml.PermissionLevelCanManage
	return &out
}

func (ws *Workspace) registryRoutes() {
	handle(ws, "POST /api/2.0/mlflow/registered-models/create", func(r *http.Request, req *ml.CreateModelRequest) (any, *apiError) {
		if req.Name == "" {
			return nil, invalidParam("Missing required field: name")
		}
		if _, ok := ws.registry.models[req.Name]; ok {
			return nil, alreadyExists("Registered Model (name=%s) already exists.", req.Name)
		}
		now := millis(ws.clock.Now())
		m := &regModel{id: randomHex(16), model: ml.Model{Name: req.Name, Description: req.Description, Tags: req.Tags, CreationTimestamp: now, LastUpdatedTimestamp: now, UserId: ws.UserName}}
		ws.registry.models[req.Name] = m
		out := m.model
		return &ml.CreateModelResponse{RegisteredModel: &out}, nil
	})
	// GET /api/2.0/mlflow/registered-models/get is MLflow's route (the SDK
	// only has the databricks/ variant); its response is
	// {"registered_model": Model} per the MLflow REST API.
	handle(ws, "GET /api/2.0/mlflow/registered-models/get", func(r *http.Request, req *ml.GetModelRequest) (any, *apiError) {
		m, aerr := ws.regModel(req.Name)
		if aerr != nil {
			return nil, aerr
		}
		out := m.model
		out.LatestVersions = ws.latestVersions(m, nil)
		return &GetRegisteredModelResponse{RegisteredModel: &out}, nil
	})
	handle(ws, "GET /api/2.0/mlflow/databricks/registered-models/get", func(r *http.Request, req *ml.GetModelRequest) (any, *apiError) {
		m, aerr := ws.regModel(req.Name)
		if aerr != nil {
			return nil, aerr
		}
		var out ml.ModelDatabricks
		_ = convert(m.model, &out)
		out.Id = m.id
		out.PermissionLevel = ml.PermissionLevelCanManage
		out.LatestVersions = ws.latestVersions(m, nil)
		return &ml.GetModelResponse{RegisteredModelDatabricks: &out}, nil
	})
	handle(ws, "POST /api/2.0/mlflow/registered-models/get-latest-versions", func(r *http.Request, req *ml.GetLatestVersionsRequest) (any, *apiError) {
		m, aerr := ws.regModel(req.Name)
		if aerr != nil {
			return nil, aerr
		}
		for _, s := range req.Stages {
			if !contains(registryStages, s) {
				return nil, invalidParam("Invalid Model Version stage: %s. Value must be one of %s.", s, strings.Join(registryStages, ", "))
			}
		}
		return &ml.GetLatestVersionsResponse{ModelVersions: ws.latestVersions(m, req.Stages)}, nil
	})
	handle(ws, "POST /api/2.0/mlflow/model-versions/create", ws.createModelVersion)
	handle(ws, "GET /api/2.0/mlflow/model-versions/get", func(r *http.Request, req *ml.GetModelVersionRequest) (any, *apiError) {
		v, aerr := ws.regVersion(req.Name, req.Version)
		if aerr != nil {
			return nil, aerr
		}
		return &modelVersionResponse{ModelVersion: v.mlflowView(ws.clock.Now())}, nil
	})
	handle(ws, "GET /api/2.0/mlflow/model-versions/search", ws.searchModelVersions)
	// Deleting a version (or a model with versions) in Staging or Production
	// is refused: Databricks asks to transition it to None or Archived first.
	handle(ws, "DELETE /api/2.0/mlflow/model-versions/delete", func(r *http.Request, req *ml.DeleteModelVersionRequest) (any, *apiError) {
		v, aerr := ws.regVersion(req.Name, req.Version)
		if aerr != nil {
			return nil, aerr
		}
		if aerr := inActiveStage(v); aerr != nil {
			return nil, aerr
		}
		// The slot stays (nil): version numbers are never reused.
		n, _ := strconv.Atoi(req.Version)
		ws.registry.models[req.Name].versions[n-1] = nil
		return nil, nil
	})
	handle(ws, "DELETE /api/2.0/mlflow/registered-models/delete", func(r *http.Request, req *ml.DeleteModelRequest) (any, *apiError) {
		m, aerr := ws.regModel(req.Name)
		if aerr != nil {
			return nil, aerr
		}
		for _, v := range m.versions {
			if v == nil {
				continue
			}
			if aerr := inActiveStage(v); aerr != nil {
				return nil, aerr
			}
		}
		delete(ws.registry.models, req.Name)
		return nil, nil
	})
	handle(ws, "POST /api/2.0/mlflow/model-versions/set-tag", func(r *http.Request, req *ml.SetModelVersionTagRequest) (any, *apiError) {
		v, aerr := ws.regVersion(req.Name, req.Version)
		if aerr != nil {
			return nil, aerr
		}
		for i := range v.mv.Tags {
			if v.mv.Tags[i].Key == req.Key {
				v.mv.Tags[i].Value = req.Value
				return nil, nil
			}
		}
		v.mv.Tags = append(v.mv.Tags, ml.ModelVersionTag{Key: req.Key, Value: req.Value})
		return nil, nil
	})
	handle(ws, "GET /api/2.0/mlflow/model-versions/get-download-uri", func(r *http.Request, req *ml.GetModelVersionDownloadUriRequest) (any, *apiError) {
		v, aerr := ws.regVersion(req.Name, req.Version)
		if aerr != nil {
			return nil, aerr
		}
		return &ml.GetModelVersionDownloadUriResponse{ArtifactUri: "dbfs:/databricks/" + v.storeKey}, nil
	})
	handle(ws, "GET /api/2.0/mlflow/model-versions/list-artifacts", func(r *http.Request, req *ListModelVersionArtifactsRequest) (any, *apiError) {
		v, aerr := ws.regVersion(req.Name, req.Version)
		if aerr != nil {
			return nil, aerr
		}
		return ws.listVersionArtifacts(r.Context(), v, req)
	})
	handle(ws, "GET /api/2.0/mlflow/model-versions/get-signed-download-uri", func(r *http.Request, req *GetModelVersionSignedDownloadURIRequest) (any, *apiError) {
		v, aerr := ws.regVersion(req.Name, req.Version)
		if aerr != nil {
			return nil, aerr
		}
		p, ok := cleanRelPath(req.Path)
		if !ok || p == "" {
			return nil, invalidParam("Invalid path %q", req.Path)
		}
		signed, headers, err := ws.signArtifact(v.storeKey+"/"+p, false, sasExpiry())
		if err != nil {
			return nil, signingError(err)
		}
		return &GetModelVersionSignedDownloadURIResponse{SignedURI: signed, Headers: headers}, nil
	})
	handle(ws, "POST /api/2.0/mlflow/databricks/model-versions/transition-stage", ws.transitionStage)
}

// MLflow 3 added model_id to the workspace registry's CreateModelVersion and
// ModelVersion (mlflow/protos/model_registry.proto): the logged model a
// version is registered from, sent by MLflow 3's
// mlflow/store/model_registry/rest_store.py create_model_version and read
// back by mlflow/store/artifact/utils/models.py _parse_model_id_if_present
// (get_model_version(...).model_id). databricks-sdk-go v0.81.0's
// ml.CreateModelVersionRequest and ml.ModelVersion lack it, so
// model-versions/create decodes into CreateModelVersionRequest below (the
// SDK's type and model_id), and create, get and search answer
// mlflowModelVersion.

// CreateModelVersionRequest is the body of model-versions/create: the SDK's
// ml.CreateModelVersionRequest and model_id.
type CreateModelVersionRequest struct {
	ml.CreateModelVersionRequest
	ModelID string `json:"model_id,omitempty"`
}

// UnmarshalJSON decodes the SDK's fields with the SDK's own decoder (which
// the embedded type would otherwise apply to the whole struct, dropping
// model_id) and model_id.
func (r *CreateModelVersionRequest) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &r.CreateModelVersionRequest); err != nil {
		return err
	}
	var extra struct {
		ModelID string `json:"model_id"`
	}
	if err := json.Unmarshal(b, &extra); err != nil {
		return err
	}
	r.ModelID = extra.ModelID
	return nil
}

// MarshalJSON is the SDK's encoding with model_id, for tests that send it.
func (r CreateModelVersionRequest) MarshalJSON() ([]byte, error) {
	return withModelID(r.CreateModelVersionRequest, r.ModelID)
}

// mlflowModelVersion is ml.ModelVersion with model_id.
type mlflowModelVersion struct {
	ml.ModelVersion
	ModelID string
}

// MarshalJSON writes the SDK's encoding of the version (its own
// MarshalJSON) with model_id added when set.
func (v mlflowModelVersion) MarshalJSON() ([]byte, error) {
	return withModelID(v.ModelVersion, v.ModelID)
}

// withModelID is sdkValue's JSON encoding with model_id added when set.
func withModelID(sdkValue any, modelID string) ([]byte, error) {
	b, err := json.Marshal(sdkValue)
	if err != nil || modelID == "" {
		return b, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["model_id"] = modelID
	return json.Marshal(m)
}

// modelVersionResponse answers model-versions/create and get.
type modelVersionResponse struct {
	ModelVersion mlflowModelVersion `json:"model_version"`
}

// searchModelVersionsResponse answers model-versions/search.
type searchModelVersionsResponse struct {
	ModelVersions []mlflowModelVersion `json:"model_versions,omitempty"`
	NextPageToken string               `json:"next_page_token,omitempty"`
}

// Routes of the workspace registry that databricks-sdk-go v0.81.0 lacks.
// Shapes follow MLflow's REST API (registered-models/get) and the Databricks
// model registry protocol MLflow's DatabricksModelsArtifactRepository uses
// (mlflow/store/artifact/databricks_models_artifact_repo.py:
// model-versions/list-artifacts and get-signed-download-uri).

// GetRegisteredModelResponse answers GET /api/2.0/mlflow/registered-models/get.
type GetRegisteredModelResponse struct {
	RegisteredModel *ml.Model `json:"registered_model,omitempty"`
}

// ListModelVersionArtifactsRequest is the query of model-versions/list-artifacts.
type ListModelVersionArtifactsRequest struct {
	Name      string `json:"-" url:"name"`
	Version   string `json:"-" url:"version"`
	Path      string `json:"-" url:"path,omitempty"`
	PageToken string `json:"-" url:"page_token,omitempty"`
}

// ListModelVersionArtifactsResponse lists direct children, like artifacts/list.
type ListModelVersionArtifactsResponse struct {
	Files         []ml.FileInfo `json:"files,omitempty"`
	NextPageToken string        `json:"next_page_token,omitempty"`
}

// GetModelVersionSignedDownloadURIRequest is the query of
// model-versions/get-signed-download-uri.
type GetModelVersionSignedDownloadURIRequest struct {
	Name    string `json:"-" url:"name"`
	Version string `json:"-" url:"version"`
	Path    string `json:"-" url:"path"`
}

// GetModelVersionSignedDownloadURIResponse is a signed URL for one file.
type GetModelVersionSignedDownloadURIResponse struct {
	SignedURI string       `json:"signed_uri"`
	Headers   []HTTPHeader `json:"headers,omitempty"`
}

// listVersionArtifacts answers model-versions/list-artifacts from the
// version's own copy of the files (registry storage), never from its run:
// the direct children of path, page by page (next_page_token, which MLflow's
// DatabricksModelsArtifactRepository.list_artifacts follows; the page size
// is not documented, Options.ArtifactListPageSize). A path that is a file
// answers that one file, which that client reads as "no children".
func (ws *Workspace) listVersionArtifacts(ctx context.Context, v *regVersion, req *ListModelVersionArtifactsRequest) (any, *apiError) {
	files, aerr := ws.listArtifactFiles(ctx, v.storeKey, req.Path)
	if aerr != nil {
		return nil, aerr
	}
	if len(files) == 0 && req.Path != "" {
		if p, ok := cleanRelPath(req.Path); ok {
			if all, err := ws.store.list(ctx, v.storeKey+"/"+p); err == nil {
				for _, f := range all {
					if f.key == v.storeKey+"/"+p {
						files = []ml.FileInfo{{Path: p, FileSize: f.size}}
					}
				}
			}
		}
	}
	start, end, next, aerr := searchPage(req.PageToken, ws.opts.ArtifactListPageSize, ws.opts.ArtifactListPageSize, len(files))
	if aerr != nil {
		return nil, aerr
	}
	return &ListModelVersionArtifactsResponse{Files: files[start:end], NextPageToken: next}, nil
}

func inActiveStage(v *regVersion) *apiError {
	if v.mv.CurrentStage == "Staging" || v.mv.CurrentStage == "Production" {
		return errorf(http.StatusBadRequest, "INVALID_STATE", "Model version %s of %s is in stage %s: transition it to None or Archived before deleting it.", v.mv.Version, v.mv.Name, v.mv.CurrentStage)
	}
	return nil
}

func (ws *Workspace) regModel(name string) (*regModel, *apiError) {
	if name == "" {
		return nil, invalidParam("Missing required field: name")
	}
	m, ok := ws.registry.models[name]
	if !ok {
		return nil, notFound("Registered Model with name=%s not found", name)
	}
	return m, nil
}

func (ws *Workspace) regVersion(name, version string) (*regVersion, *apiError) {
	m, aerr := ws.regModel(name)
	if aerr != nil {
		return nil, aerr
	}
	v, ok := versionAt(m.versions, version)
	if !ok {
		return nil, notFound("Model Version (name=%s, version=%s) not found", name, version)
	}
	return v, nil
}

// versionAt is version number s of a model (workspace registry or Unity
// Catalog): versions are numbered from 1 and a deleted one leaves a nil
// slot, as numbers are never reused.
func versionAt[V any](versions []*V, s string) (*V, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > len(versions) || versions[n-1] == nil {
		return nil, false
	}
	return versions[n-1], true
}

// latestVersions is MLflow's get-latest-versions: the highest version per
// stage (every stage if stages is empty), ordered by stage.
func (ws *Workspace) latestVersions(m *regModel, stages []string) []ml.ModelVersion {
	if len(stages) == 0 {
		stages = registryStages
	}
	now := ws.clock.Now()
	var out []ml.ModelVersion
	for _, s := range stages {
		for i := len(m.versions) - 1; i >= 0; i-- {
			if m.versions[i] != nil && m.versions[i].mv.CurrentStage == s {
				out = append(out, m.versions[i].view(now))
				break
			}
		}
	}
	return out
}

// resolveSource maps a model version source to a prefix in the artifact
// store. Supported: runs:/<run id>/<path>, models:/<logged model id>
// (MLflow 3), dbfs:/databricks/mlflow-tracking/<exp>/<run>/artifacts/<path>,
// and any other dbfs:/ path (its files are read from the workspace's DBFS).
func (ws *Workspace) resolveSource(ctx context.Context, source string) (string, error) {
	if key, ok, err := ws.resolveLoggedModelSource(source); ok {
		return key, err
	}
	if rest, ok := strings.CutPrefix(source, "runs:/"); ok {
		runID, p, _ := strings.Cut(rest, "/")
		run, ok := ws.mlflow.runs[runID]
		if !ok {
			return "", fmt.Errorf("run %s not found", runID)
		}
		return strings.TrimSuffix(run.storeKey+"/"+p, "/"), nil
	}
	if rest, ok := strings.CutPrefix(source, "dbfs:/databricks/mlflow-tracking/"); ok {
		return strings.TrimSuffix("mlflow-tracking/"+rest, "/"), nil
	}
	if strings.HasPrefix(source, "dbfs:/") {
		// Stage DBFS files in the store so the copy below treats all sources alike.
		root := normDBFS(source)
		prefix := "dbfs-staging/" + randomHex(8)
		for p, e := range ws.dbfs.entries {
			if !e.isDir && strings.HasPrefix(p, root+"/") {
				if err := ws.store.put(ctx, prefix+"/"+strings.TrimPrefix(p, root+"/"), e.data); err != nil {
					return "", err
				}
			}
		}
		return prefix, nil
	}
	return "", fmt.Errorf("unsupported source %q (use runs:/, models:/<logged model id> or dbfs:/)", source)
}

func (ws *Workspace) createModelVersion(r *http.Request, req *CreateModelVersionRequest) (any, *apiError) {
	m, aerr := ws.regModel(req.Name)
	if aerr != nil {
		return nil, aerr
	}
	if req.Source == "" {
		return nil, invalidParam("Missing required field: source")
	}
	if req.RunId != "" {
		if _, ok := ws.mlflow.runs[req.RunId]; !ok {
			return nil, notFound("Run '%s' not found", req.RunId)
		}
	}
	if req.ModelID != "" {
		if _, aerr := ws.loggedModel(req.ModelID); aerr != nil {
			return nil, aerr
		}
	}
	now := ws.clock.Now()
	version := strconv.Itoa(len(m.versions) + 1)
	v := &regVersion{
		mv: ml.ModelVersion{
			Name: req.Name, Version: version, Source: req.Source, RunId: req.RunId, RunLink: req.RunLink,
			Description: req.Description, Tags: req.Tags, CurrentStage: "None", UserId: ws.UserName,
			CreationTimestamp: millis(now), LastUpdatedTimestamp: millis(now),
		},
		readyAt:  now.Add(ws.opts.RegistrationDelay),
		storeKey: "mlflow-registry/" + m.id + "/versions/" + version,
		modelID:  req.ModelID,
	}
	if msg, ok := ws.registry.fail[req.Name]; ok {
		v.failMsg = msg
	} else if from, err := ws.resolveSource(r.Context(), req.Source); err != nil {
		v.failMsg = "Failed to copy model artifacts: " + err.Error()
	} else if n, err := copyPrefix(r.Context(), ws.store, from+"/", v.storeKey+"/"); err != nil {
		v.failMsg = "Failed to copy model artifacts: " + err.Error()
	} else if n == 0 {
		v.failMsg = fmt.Sprintf("Failed to copy model artifacts: no files found at %s", req.Source)
	}
	m.versions = append(m.versions, v)
	m.model.LastUpdatedTimestamp = millis(now)
	return &modelVersionResponse{ModelVersion: v.mlflowView(now)}, nil
}

func (ws *Workspace) transitionStage(r *http.Request, req *ml.TransitionModelVersionStageDatabricks) (any, *apiError) {
	if !contains(registryStages, req.Stage) {
		return nil, invalidParam("Invalid Model Version stage: %s. Value must be one of %s.", req.Stage, strings.Join(registryStages, ", "))
	}
	v, aerr := ws.regVersion(req.Name, req.Version)
	if aerr != nil {
		return nil, aerr
	}
	now := ws.clock.Now()
	if st := v.view(now).Status; st != ml.ModelVersionStatusReady {
		return nil, invalidState("Model version %s of %s is %s; only READY versions can change stage.", req.Version, req.Name, st)
	}
	m := ws.registry.models[req.Name]
	if req.ArchiveExistingVersions && (req.Stage == "Staging" || req.Stage == "Production") {
		for _, other := range m.versions {
			if other != nil && other != v && other.mv.CurrentStage == req.Stage {
				other.mv.CurrentStage = "Archived"
				other.mv.LastUpdatedTimestamp = millis(now)
			}
		}
	}
	v.mv.CurrentStage = req.Stage
	v.mv.LastUpdatedTimestamp = millis(now)
	return &ml.TransitionStageResponse{ModelVersionDatabricks: v.databricksView(now)}, nil
}

// searchModelVersions supports MLflow's filter on name, run_id, source_path
// and version (=, != and IN), joined by AND.
func (ws *Workspace) searchModelVersions(r *http.Request, req *ml.SearchModelVersionsRequest) (any, *apiError) {
	filter, err := parseRunFilter(req.Filter)
	if err != nil {
		return nil, invalidParam("Invalid filter '%s': %v", req.Filter, err)
	}
	now := ws.clock.Now()
	var out []mlflowModelVersion
	names := slices.Sorted(maps.Keys(ws.registry.models))
	for _, name := range names {
		for _, v := range ws.registry.models[name].versions {
			if v != nil && versionMatches(filter, v) {
				out = append(out, v.mlflowView(now))
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		a, _ := strconv.Atoi(out[i].Version)
		b, _ := strconv.Atoi(out[j].Version)
		return a > b
	})
	start, end, next, aerr := searchPage(req.PageToken, int(req.MaxResults), 10000, len(out))
	if aerr != nil {
		return nil, aerr
	}
	return &searchModelVersionsResponse{ModelVersions: out[start:end], NextPageToken: next}, nil
}

func versionMatches(f runFilter, v *regVersion) bool {
	for _, c := range f {
		var got string
		switch c.key {
		case "name":
			got = v.mv.Name
		case "run_id":
			got = v.mv.RunId
		case "source_path":
			got = v.mv.Source
		case "version", "version_number":
			got = v.mv.Version
		default:
			if c.entity != "tags" {
				return false
			}
			found := false
			for _, t := range v.mv.Tags {
				if t.Key == c.key {
					got, found = t.Value, true
				}
			}
			if !found {
				return false
			}
		}
		switch c.op {
		case "=":
			if got != c.values[0] {
				return false
			}
		case "!=":
			if got == c.values[0] {
				return false
			}
		case "IN":
			if !contains(c.values, got) {
				return false
			}
		default:
			return false
		}
	}
	return true
}
