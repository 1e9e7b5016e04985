package emulator

import (
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/databricks/databricks-sdk-go/service/catalog"
)

// Unity Catalog models (https://docs.databricks.com/api/workspace/registeredmodels,
// .../modelversions) and the MLflow client's UC registration protocol
// (POST /api/2.0/mlflow/unity-catalog/model-versions/create,
// generate-temporary-credentials, finalize): the client creates a version
// (PENDING_REGISTRATION, with a storage_location), asks for temporary
// credentials, uploads the files there itself, then finalizes (READY).
// Catalogs and schemas are not modelled for models: any catalog.schema is
// accepted. Schemas made with CreateSchema answer GET .../schemas/{full_name}.
//
// Deviation: storage_location is the http(s) blob URL of the version's
// folder in the workspace's container (Azurite), not an abfss:// URI, so a
// client can append "/<file>?<sas_token>" and talk Blob REST directly.

type ucState struct {
	models map[string]*ucModel
	// schemas are the catalogs and catalog.schema names that exist
	// (lower case; CreateSchema, aigateway.go).
	schemas map[string]bool
	grants  []grant // Grant
}

type ucModel struct {
	info     catalog.RegisteredModelInfo
	versions []*ucVersion
	aliases  map[string]int
	// deploymentJob is the MLflow 3 deployment job (deployjobs.go), 0: none.
	deploymentJob int64
}

type ucVersion struct {
	info     catalog.ModelVersionInfo
	storeKey string
	tags     []UCModelVersionTag
	// deploymentRun is the deployment job's run for this version, 0: none.
	deploymentRun int64
	modelID       string // the logged model registered (MLflow 3), if any
}

func newUCState() ucState { return ucState{models: map[string]*ucModel{}} }

func (ws *Workspace) ucModel(fullName string) (*ucModel, *apiError) {
	m, ok := ws.uc.models[strings.ToLower(fullName)]
	if !ok {
		return nil, notFound("Registered model '%s' does not exist.", fullName)
	}
	return m, nil
}

func (ws *Workspace) ucVersion(fullName, version string) (*ucVersion, *apiError) {
	_, v, aerr := ws.ucModelVersion(fullName, version)
	return v, aerr
}

// ucModelVersion is a model version with the model it belongs to.
func (ws *Workspace) ucModelVersion(fullName, version string) (*ucModel, *ucVersion, *apiError) {
	m, aerr := ws.ucModel(fullName)
	if aerr != nil {
		return nil, nil, aerr
	}
	v, ok := versionAt(m.versions, version)
	if !ok {
		return nil, nil, notFound("Model version %s of '%s' does not exist.", version, fullName)
	}
	return m, v, nil
}

func (m *ucModel) aliasList() []catalog.RegisteredModelAlias {
	var out []catalog.RegisteredModelAlias
	for _, name := range slices.Sorted(maps.Keys(m.aliases)) {
		out = append(out, catalog.RegisteredModelAlias{AliasName: name, VersionNum: m.aliases[name]})
	}
	return out
}

func (m *ucModel) versionView(v *ucVersion) *catalog.ModelVersionInfo {
	info := v.info
	for _, a := range m.aliasList() {
		if a.VersionNum == v.info.Version {
			info.Aliases = append(info.Aliases, a)
		}
	}
	return &info
}

func (ws *Workspace) ucRoutes() {
	handle(ws, "POST /api/2.1/unity-catalog/models", func(r *http.Request, req *catalog.CreateRegisteredModelRequest) (any, *apiError) {
		if req.CatalogName == "" || req.SchemaName == "" || req.Name == "" {
			return nil, invalidParam("catalog_name, schema_name and name are required")
		}
		full := req.CatalogName + "." + req.SchemaName + "." + req.Name
		if _, ok := ws.uc.models[strings.ToLower(full)]; ok {
			return nil, ucAlreadyExists("Registered model '%s' already exists.", full)
		}
		now := millis(ws.clock.Now())
		m := &ucModel{aliases: map[string]int{}, info: catalog.RegisteredModelInfo{
			CatalogName: req.CatalogName, SchemaName: req.SchemaName, Name: req.Name, FullName: full,
			Comment: req.Comment, Owner: ws.UserName, CreatedAt: now, CreatedBy: ws.UserName, UpdatedAt: now, UpdatedBy: ws.UserName,
			MetastoreId: "emulator-metastore", StorageLocation: ws.ucStorageURL("uc/models/" + strings.ToLower(full)),
		}}
		ws.uc.models[strings.ToLower(full)] = m
		info := m.info
		return &info, nil
	})
	// The page length rules are the SDK doc's (ListRegisteredModelsRequest):
	// within a schema at most 10000 a page, across the metastore 100 by
	// default and at most 1000. The page token is the offset into the list
	// sorted by full name (its format is not documented).
	handle(ws, "GET /api/2.1/unity-catalog/models", func(r *http.Request, req *catalog.ListRegisteredModelsRequest) (any, *apiError) {
		if (req.CatalogName == "") != (req.SchemaName == "") {
			return nil, invalidParam("catalog_name and schema_name must be given together")
		}
		if req.MaxResults < 0 {
			return nil, invalidParam("max_results must be greater than or equal to 0")
		}
		limit, ceiling := 100, 1000
		if req.CatalogName != "" {
			limit, ceiling = 10000, 10000
		}
		if req.MaxResults > 0 {
			limit = min(req.MaxResults, ceiling)
		}
		var names []string
		for key, m := range ws.uc.models {
			if req.CatalogName == "" || (strings.EqualFold(m.info.CatalogName, req.CatalogName) && strings.EqualFold(m.info.SchemaName, req.SchemaName)) {
				names = append(names, key)
			}
		}
		slices.Sort(names)
		start := 0
		if req.PageToken != "" {
			n, err := strconv.Atoi(req.PageToken)
			if err != nil || n < 0 || n > len(names) {
				return nil, invalidParam("Invalid page token: %s", req.PageToken)
			}
			start = n
		}
		end := min(start+limit, len(names))
		resp := &catalog.ListRegisteredModelsResponse{}
		for _, key := range names[start:end] {
			resp.RegisteredModels = append(resp.RegisteredModels, ws.uc.models[key].info)
		}
		if end < len(names) {
			resp.NextPageToken = strconv.Itoa(end)
		}
		return resp, nil
	})
	handle(ws, "GET /api/2.1/unity-catalog/models/{full_name}", func(r *http.Request, req *catalog.GetRegisteredModelRequest) (any, *apiError) {
		m, aerr := ws.ucModel(r.PathValue("full_name"))
		if aerr != nil {
			return nil, aerr
		}
		info := m.info
		if req.IncludeAliases {
			info.Aliases = m.aliasList()
		}
		return &info, nil
	})
	// Deleting a registered model deletes its versions and their aliases
	// (databricks-sdk-go v0.81.0 catalog.RegisteredModelsAPI.Delete: "Deletes
	// a registered model and all its model versions").
	handle(ws, "DELETE /api/2.1/unity-catalog/models/{full_name}", func(r *http.Request, req *catalog.DeleteRegisteredModelRequest) (any, *apiError) {
		m, aerr := ws.ucModel(r.PathValue("full_name"))
		if aerr != nil {
			return nil, aerr
		}
		delete(ws.uc.models, strings.ToLower(m.info.FullName))
		return nil, nil
	})
	handle(ws, "GET /api/2.1/unity-catalog/models/{full_name}/versions", func(r *http.Request, req *catalog.ListModelVersionsRequest) (any, *apiError) {
		m, aerr := ws.ucModel(r.PathValue("full_name"))
		if aerr != nil {
			return nil, aerr
		}
		resp := &catalog.ListModelVersionsResponse{}
		for i := len(m.versions) - 1; i >= 0; i-- {
			if m.versions[i] != nil {
				resp.ModelVersions = append(resp.ModelVersions, *m.versionView(m.versions[i]))
			}
		}
		return resp, nil
	})
	// Deleting a version also removes the aliases that point at it; its
	// number is never reused (the slot stays nil).
	handle(ws, "DELETE /api/2.1/unity-catalog/models/{full_name}/versions/{version}", func(r *http.Request, req *catalog.DeleteModelVersionRequest) (any, *apiError) {
		m, v, aerr := ws.ucModelVersion(r.PathValue("full_name"), r.PathValue("version"))
		if aerr != nil {
			return nil, aerr
		}
		for alias, n := range m.aliases {
			if n == v.info.Version {
				delete(m.aliases, alias)
			}
		}
		m.versions[v.info.Version-1] = nil
		return nil, nil
	})
	handle(ws, "GET /api/2.1/unity-catalog/models/{full_name}/versions/{version}", func(r *http.Request, req *catalog.GetModelVersionRequest) (any, *apiError) {
		m, v, aerr := ws.ucModelVersion(r.PathValue("full_name"), r.PathValue("version"))
		if aerr != nil {
			return nil, aerr
		}
		return m.versionView(v), nil
	})
	handle(ws, "GET /api/2.1/unity-catalog/models/{full_name}/aliases/{alias}", func(r *http.Request, req *catalog.GetByAliasRequest) (any, *apiError) {
		m, aerr := ws.ucModel(r.PathValue("full_name"))
		if aerr != nil {
			return nil, aerr
		}
		n, ok := m.aliases[r.PathValue("alias")]
		if !ok {
			return nil, notFound("Alias '%s' does not exist for registered model '%s'.", r.PathValue("alias"), m.info.FullName)
		}
		return m.versionView(m.versions[n-1]), nil
	})
	handle(ws, "PUT /api/2.1/unity-catalog/models/{full_name}/aliases/{alias}", func(r *http.Request, req *catalog.SetRegisteredModelAliasRequest) (any, *apiError) {
		m, aerr := ws.ucModel(r.PathValue("full_name"))
		if aerr != nil {
			return nil, aerr
		}
		alias := r.PathValue("alias")
		if req.Alias != "" && req.Alias != alias {
			return nil, invalidParam("The alias in the body (%s) differs from the path (%s).", req.Alias, alias)
		}
		if _, ok := versionAt(m.versions, strconv.Itoa(req.VersionNum)); !ok {
			return nil, notFound("Model version %d of '%s' does not exist.", req.VersionNum, m.info.FullName)
		}
		if _, err := strconv.Atoi(alias); err == nil || strings.EqualFold(alias, "latest") {
			return nil, invalidParam("Invalid alias name '%s'.", alias)
		}
		m.aliases[alias] = req.VersionNum
		return &catalog.RegisteredModelAlias{AliasName: alias, VersionNum: req.VersionNum}, nil
	})
	handle(ws, "DELETE /api/2.1/unity-catalog/models/{full_name}/aliases/{alias}", func(r *http.Request, req *catalog.DeleteAliasRequest) (any, *apiError) {
		m, aerr := ws.ucModel(r.PathValue("full_name"))
		if aerr != nil {
			return nil, aerr
		}
		delete(m.aliases, r.PathValue("alias"))
		return nil, nil
	})

	handle(ws, "POST /api/2.0/mlflow/unity-catalog/model-versions/create", ws.ucCreateVersion)
	handle(ws, "POST /api/2.0/mlflow/unity-catalog/model-versions/generate-temporary-credentials", ws.ucTemporaryCredentials)
	// Tags of UC model versions live in MLflow's UC routes (the Unity Catalog
	// model version API in SDK v0.81.0 has none): POST .../set-tag and
	// DELETE .../delete-tag, as mlflow/protos/databricks_uc_registry_service.proto
	// defines them at mlflow/mlflow commit
	// e2b9058c3089072dcd92846a83069fa37423a175. An older version of that
	// file (commit 02b44f5b1c83cab2ec210f58b69d4155dfbf30bf) had POST and
	// DELETE .../model-versions/tags; that route is not served (404
	// ENDPOINT_NOT_FOUND, as any unknown route).
	handle(ws, "POST /api/2.0/mlflow/unity-catalog/model-versions/set-tag", func(r *http.Request, req *SetUCModelVersionTagRequest) (any, *apiError) {
		v, aerr := ws.ucTagged(req.Name, req.Version, req.Key)
		if aerr != nil {
			return nil, aerr
		}
		if aerr := checkUCTags(UCModelVersionTag{Key: req.Key, Value: req.Value}); aerr != nil {
			return nil, aerr
		}
		for i := range v.tags {
			if v.tags[i].Key == req.Key {
				v.tags[i].Value = req.Value
				return nil, nil
			}
		}
		v.tags = append(v.tags, UCModelVersionTag{Key: req.Key, Value: req.Value})
		return nil, nil
	})
	handle(ws, "DELETE /api/2.0/mlflow/unity-catalog/model-versions/delete-tag", func(r *http.Request, req *DeleteUCModelVersionTagRequest) (any, *apiError) {
		v, aerr := ws.ucTagged(req.Name, req.Version, req.Key)
		if aerr != nil {
			return nil, aerr
		}
		// A key the version does not have: nothing to delete (not checked
		// against Databricks; the client only deletes tags it set).
		v.tags = slices.DeleteFunc(v.tags, func(t UCModelVersionTag) bool { return t.Key == req.Key })
		return nil, nil
	})
	handle(ws, "GET /api/2.0/mlflow/unity-catalog/model-versions/get", func(r *http.Request, req *GetUCModelVersionRequest) (any, *apiError) {
		m, v, aerr := ws.ucModelVersion(req.Name, req.Version)
		if aerr != nil {
			return nil, aerr
		}
		view := ws.ucMLflowView(v)
		view.DeploymentJobState = ws.deploymentState(m, v)
		return &UCModelVersionResponse{ModelVersion: view}, nil
	})
	handle(ws, "POST /api/2.0/mlflow/unity-catalog/model-versions/finalize", func(r *http.Request, req *FinalizeUCModelVersionRequest) (any, *apiError) {
		m, v, aerr := ws.ucModelVersion(req.Name, req.Version)
		if aerr != nil {
			return nil, aerr
		}
		if v.info.Status != catalog.ModelVersionInfoStatusPendingRegistration {
			return nil, invalidState("Model version %s of %s is %s, not PENDING_REGISTRATION.", req.Version, req.Name, v.info.Status)
		}
		v.info.Status = catalog.ModelVersionInfoStatusReady
		v.info.UpdatedAt = millis(ws.clock.Now())
		ws.startDeploymentRun(m, v)
		return &UCModelVersionResponse{ModelVersion: ws.ucMLflowView(v)}, nil
	})
}

// ucTagged is the version whose tag key a set-tag or delete-tag names.
func (ws *Workspace) ucTagged(name, version, key string) (*ucVersion, *apiError) {
	v, aerr := ws.ucVersion(name, version)
	if aerr == nil && key == "" {
		aerr = invalidParam("Missing required field: key")
	}
	return v, aerr
}

// ucReservedTagChars are the characters Unity Catalog refuses in a tag key
// of a securable, model versions included: "The following characters are not
// allowed in tag keys: . , - = / :", with keys of at most 255 characters and
// values of at most 1000 (Microsoft Learn, Azure Databricks, "Apply tags to
// Unity Catalog securable objects", Constraints). The error is
// INVALID_PARAMETER_VALUE "Tag name ... contains one or more of the reserved
// characters", worded like the serving API's refusal of the same characters
// ("... is either not between 1-255 characters long or contains one or more of
// the reserved characters: . , = / or :", recorded from a real workspace in
// public infrastructure code). mlflow-export-import rewrites "." to "_" in the
// keys it copies into Unity Catalog for the same reason.
const ucReservedTagChars = ".,-=/:"

// checkUCTags refuses a tag whose key or value breaks the constraints above.
func checkUCTags(tags ...UCModelVersionTag) *apiError {
	for _, t := range tags {
		if t.Key == "" || len(t.Key) > 255 || strings.ContainsAny(t.Key, ucReservedTagChars) {
			return invalidParam("Tag name %s is either not between 1-255 characters long or contains one or more of the reserved characters: . , - = / :", t.Key)
		}
		if len(t.Value) > 1000 {
			return invalidParam("Tag value of %s is longer than 1000 characters", t.Key)
		}
	}
	return nil
}

// The MLflow UC registration routes are not in databricks-sdk-go v0.81.0;
// these types follow MLflow's protocol for them
// (mlflow/protos/databricks_uc_registry_messages.proto).

// CreateUCModelVersionRequest is the body of unity-catalog/model-versions/create.
type CreateUCModelVersionRequest struct {
	Name                     string              `json:"name"`
	Source                   string              `json:"source"`
	RunID                    string              `json:"run_id,omitempty"`
	Description              string              `json:"description,omitempty"`
	Tags                     []UCModelVersionTag `json:"tags,omitempty"`
	RunTrackingServerID      string              `json:"run_tracking_server_id,omitempty"`
	FeatureDeps              string              `json:"feature_deps,omitempty"`
	ModelVersionDependencies any                 `json:"model_version_dependencies,omitempty"`
	ModelID                  string              `json:"model_id,omitempty"`
}

// SetUCModelVersionTagRequest is the body of unity-catalog/model-versions/set-tag.
type SetUCModelVersionTagRequest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Key     string `json:"key"`
	Value   string `json:"value"`
}

// DeleteUCModelVersionTagRequest is the query of
// unity-catalog/model-versions/delete-tag.
type DeleteUCModelVersionTagRequest struct {
	Name    string `json:"-" url:"name"`
	Version string `json:"-" url:"version"`
	Key     string `json:"-" url:"key"`
}

// GetUCModelVersionRequest is the query of unity-catalog/model-versions/get.
type GetUCModelVersionRequest struct {
	Name    string `json:"-" url:"name"`
	Version string `json:"-" url:"version"`
}

// UCModelVersionTag is a key/value tag of a UC model version.
type UCModelVersionTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// UCModelVersion is MLflow's view of a UC model version.
type UCModelVersion struct {
	Name                 string              `json:"name"`
	Version              string              `json:"version"`
	CreationTimestamp    int64               `json:"creation_timestamp"`
	LastUpdatedTimestamp int64               `json:"last_updated_timestamp"`
	UserID               string              `json:"user_id,omitempty"`
	Description          string              `json:"description,omitempty"`
	Source               string              `json:"source"`
	RunID                string              `json:"run_id,omitempty"`
	RunTrackingServerID  string              `json:"run_tracking_server_id,omitempty"`
	Status               string              `json:"status"`
	StatusMessage        string              `json:"status_message,omitempty"`
	StorageLocation      string              `json:"storage_location"`
	Tags                 []UCModelVersionTag `json:"tags,omitempty"`
	// DeploymentJobState is MLflow 3's deployment job state (deployjobs.go).
	DeploymentJobState *UCDeploymentJobState `json:"deployment_job_state,omitempty"`
	// ModelID is the logged model the version was registered from (MLflow
	// 3: mlflow/store/_unity_catalog/registry/rest_store.py
	// create_model_version sends model_id, as for the workspace registry).
	ModelID string `json:"model_id,omitempty"`
}

// UCModelVersionResponse answers create and finalize.
type UCModelVersionResponse struct {
	ModelVersion *UCModelVersion `json:"model_version"`
}

// GenerateTemporaryUCCredentialsRequest is the body of
// unity-catalog/model-versions/generate-temporary-credentials; Operation is
// MODEL_VERSION_OPERATION_READ or MODEL_VERSION_OPERATION_READ_WRITE.
type GenerateTemporaryUCCredentialsRequest struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Operation string `json:"operation"`
}

// GenerateTemporaryUCCredentialsResponse carries an Azure SAS for the
// version's storage location.
type GenerateTemporaryUCCredentialsResponse struct {
	Credentials TemporaryCredentials `json:"credentials"`
}

// TemporaryCredentials are short-lived storage credentials.
type TemporaryCredentials struct {
	ExpirationTime         int64                   `json:"expiration_time"`
	AzureUserDelegationSAS *AzureUserDelegationSAS `json:"azure_user_delegation_sas,omitempty"`
}

// AzureUserDelegationSAS holds the SAS query string. The emulator signs a
// service SAS with the account key (Azurite has no user delegation keys);
// clients use it the same way.
type AzureUserDelegationSAS struct {
	SASToken string `json:"sas_token"`
}

// FinalizeUCModelVersionRequest is the body of unity-catalog/model-versions/finalize.
type FinalizeUCModelVersionRequest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

func (ws *Workspace) ucStorageURL(key string) string {
	base, _, err := ws.store.signContainer(key, sasExpiry())
	if err != nil {
		return "emulator-memory://" + key
	}
	return base
}

func (ws *Workspace) ucMLflowView(v *ucVersion) *UCModelVersion {
	return &UCModelVersion{
		Name: v.info.CatalogName + "." + v.info.SchemaName + "." + v.info.ModelName, Version: strconv.Itoa(v.info.Version),
		CreationTimestamp: v.info.CreatedAt, LastUpdatedTimestamp: v.info.UpdatedAt, UserID: v.info.CreatedBy,
		Description: v.info.Comment, Source: v.info.Source, RunID: v.info.RunId, RunTrackingServerID: runTrackingServerID(v.info.RunWorkspaceId), Status: string(v.info.Status),
		StorageLocation: v.info.StorageLocation, Tags: v.tags, ModelID: v.modelID,
	}
}

func runTrackingServerID(id int) string {
	if id == 0 {
		return ""
	}
	return strconv.Itoa(id)
}

func (ws *Workspace) ucCreateVersion(r *http.Request, req *CreateUCModelVersionRequest) (any, *apiError) {
	m, aerr := ws.ucModel(req.Name)
	if aerr != nil {
		return nil, aerr
	}
	if req.Source == "" {
		return nil, invalidParam("Missing required field: source")
	}
	if aerr := checkUCTags(req.Tags...); aerr != nil {
		return nil, aerr
	}
	// run_tracking_server_id is the id of the workspace holding run_id
	// (MLflow sends the x-databricks-org-id of that workspace's runs/get
	// answer, rest_store.py create_model_version) and becomes the
	// version's run_workspace_id, an integer in the Unity Catalog API
	// (catalog.ModelVersionInfo.RunWorkspaceId): a value that is not a
	// workspace id is refused. Without it the version has no run link
	// (run_workspace_id 0), which MLflow accepts when the run is unreadable.
	var runWorkspace int64
	if req.RunTrackingServerID != "" {
		id, err := strconv.ParseInt(req.RunTrackingServerID, 10, 64)
		if err != nil || id <= 0 {
			return nil, invalidParam("Invalid run_tracking_server_id '%s': expected a workspace id.", req.RunTrackingServerID)
		}
		runWorkspace = id
	}
	now := millis(ws.clock.Now())
	n := len(m.versions) + 1
	key := "uc/models/" + strings.ToLower(m.info.FullName) + "/versions/" + strconv.Itoa(n)
	v := &ucVersion{storeKey: key, tags: req.Tags, modelID: req.ModelID, info: catalog.ModelVersionInfo{
		CatalogName: m.info.CatalogName, SchemaName: m.info.SchemaName, ModelName: m.info.Name, Version: n,
		Source: req.Source, RunId: req.RunID, Comment: req.Description, Status: catalog.ModelVersionInfoStatusPendingRegistration,
		CreatedAt: now, CreatedBy: ws.UserName, UpdatedAt: now, UpdatedBy: ws.UserName, MetastoreId: m.info.MetastoreId,
		Id: randomHex(16), StorageLocation: ws.ucStorageURL(key), RunWorkspaceId: int(runWorkspace),
	}}
	m.versions = append(m.versions, v)
	return &UCModelVersionResponse{ModelVersion: ws.ucMLflowView(v)}, nil
}

func (ws *Workspace) ucTemporaryCredentials(r *http.Request, req *GenerateTemporaryUCCredentialsRequest) (any, *apiError) {
	v, aerr := ws.ucVersion(req.Name, req.Version)
	if aerr != nil {
		return nil, aerr
	}
	switch req.Operation {
	case "MODEL_VERSION_OPERATION_READ":
	case "MODEL_VERSION_OPERATION_READ_WRITE":
		if v.info.Status != catalog.ModelVersionInfoStatusPendingRegistration {
			return nil, invalidState("Model version %s of %s is %s; write credentials are only issued before finalize.", req.Version, req.Name, v.info.Status)
		}
	default:
		return nil, invalidParam("Invalid operation %q: expected MODEL_VERSION_OPERATION_READ or MODEL_VERSION_OPERATION_READ_WRITE", req.Operation)
	}
	expiry := sasExpiry()
	_, token, err := ws.store.signContainer(v.storeKey, expiry)
	if err != nil {
		return nil, signingError(err)
	}
	return &GenerateTemporaryUCCredentialsResponse{Credentials: TemporaryCredentials{
		ExpirationTime: millis(expiry), AzureUserDelegationSAS: &AzureUserDelegationSAS{SASToken: token},
	}}, nil
}

// UCModelVersions lists a UC model's versions (newest first) for tests.
func (ws *Workspace) UCModelVersions(fullName string) []catalog.ModelVersionInfo {
	var out []catalog.ModelVersionInfo
	ws.do(func() {
		if m, ok := ws.uc.models[strings.ToLower(fullName)]; ok {
			for _, v := range m.versions {
				if v != nil {
					out = append(out, *m.versionView(v))
				}
			}
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	return out
}
