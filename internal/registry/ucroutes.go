package registry

// The request and response shapes of MLflow's Unity Catalog model registry
// routes (/api/2.0/mlflow/unity-catalog/model-versions/...), which the MLflow
// client uses to register into Unity Catalog and which databricks-sdk-go
// v0.81.0 does not have. The shapes are those of
// mlflow/protos/databricks_uc_registry_messages.proto; only the fields
// Brickferry reads or sends are declared.

// UCRoute is the prefix of the routes: UCRoute+"create", "finalize", "get",
// "generate-temporary-credentials", and for tags POST "set-tag" (DELETE
// "delete-tag"), as databricks_uc_registry_service.proto defines them at
// mlflow/mlflow commit e2b9058c3089072dcd92846a83069fa37423a175; the
// ".../model-versions/tags" route of older versions of that file (commit
// 02b44f5b1c83cab2ec210f58b69d4155dfbf30bf) is not used.
const UCRoute = "/api/2.0/mlflow/unity-catalog/model-versions/"

// UCTag is a model version tag.
type UCTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// UCCreateRequest creates a version (PENDING_REGISTRATION, with its own
// storage location).
type UCCreateRequest struct {
	Name        string  `json:"name"`
	Source      string  `json:"source"`
	RunID       string  `json:"run_id,omitempty"`
	Description string  `json:"description,omitempty"`
	Tags        []UCTag `json:"tags,omitempty"`
	// ModelID is the MLflow 3 logged model the version is registered from
	// (source models:/<model id>), as mlflow/store/_unity_catalog/registry/
	// rest_store.py create_model_version sends it.
	ModelID string `json:"model_id,omitempty"`
	// RunTrackingServerID is the id of the workspace whose tracking server
	// holds RunID: Unity Catalog's link from the version to its run
	// (the version's run_workspace_id). CreateUCVersion fills it in.
	RunTrackingServerID string `json:"run_tracking_server_id,omitempty"`
}

// UCModelVersion is a version as the routes answer it.
type UCModelVersion struct {
	Name            string  `json:"name"`
	Version         string  `json:"version"`
	Status          string  `json:"status"`
	StorageLocation string  `json:"storage_location"`
	RunID           string  `json:"run_id"`
	Tags            []UCTag `json:"tags"`
}

// UCVersionResponse is the answer of create, finalize and get.
type UCVersionResponse struct {
	ModelVersion *UCModelVersion `json:"model_version"`
}

// UCVersionRequest names a version (finalize, get).
type UCVersionRequest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// UCCredentialsRequest asks for temporary credentials to the version's
// storage location; Operation is MODEL_VERSION_OPERATION_READ or
// MODEL_VERSION_OPERATION_READ_WRITE.
type UCCredentialsRequest struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Operation string `json:"operation"`
}

// UCCredentialsResponse carries the credentials; Brickferry uses the Azure user
// delegation SAS and refuses the others with an explanation.
type UCCredentialsResponse struct {
	Credentials struct {
		ExpirationTime         int64 `json:"expiration_time"`
		AzureUserDelegationSAS *struct {
			SASToken string `json:"sas_token"`
		} `json:"azure_user_delegation_sas"`
		AWSTempCredentials any `json:"aws_temp_credentials"`
		GCPOAuthToken      any `json:"gcp_oauth_token"`
	} `json:"credentials"`
}

// UCSetTagRequest sets one tag of a version.
type UCSetTagRequest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Key     string `json:"key"`
	Value   string `json:"value"`
}
