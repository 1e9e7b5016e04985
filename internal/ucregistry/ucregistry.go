// Package ucregistry holds the request and response shapes of MLflow's
// Unity Catalog model registry routes (/api/2.0/mlflow/unity-catalog/
// model-versions/...), which the MLflow client uses to register into Unity
// Catalog and which databricks-sdk-go v0.81.0 does not have. The shapes are
// those of mlflow/protos/databricks_uc_registry_messages.proto; only the
// fields Brickferry reads or sends are declared.
package ucregistry

// Route is the prefix of the routes: Route+"create", "finalize", "get",
// "generate-temporary-credentials", "set-tag".
const Route = "/api/2.0/mlflow/unity-catalog/model-versions/"

// Tag is a model version tag.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// CreateRequest creates a version (PENDING_REGISTRATION, with its own
// storage location).
type CreateRequest struct {
	Name        string `json:"name"`
	Source      string `json:"source"`
	RunID       string `json:"run_id,omitempty"`
	Description string `json:"description,omitempty"`
	Tags        []Tag  `json:"tags,omitempty"`
}

// ModelVersion is a version as the routes answer it.
type ModelVersion struct {
	Name            string `json:"name"`
	Version         string `json:"version"`
	Status          string `json:"status"`
	StorageLocation string `json:"storage_location"`
	RunID           string `json:"run_id"`
	Tags            []Tag  `json:"tags"`
}

// VersionResponse is the answer of create, finalize and get.
type VersionResponse struct {
	ModelVersion *ModelVersion `json:"model_version"`
}

// VersionRequest names a version (finalize, get).
type VersionRequest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// CredentialsRequest asks for temporary credentials to the version's
// storage location; Operation is MODEL_VERSION_OPERATION_READ or
// MODEL_VERSION_OPERATION_READ_WRITE.
type CredentialsRequest struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Operation string `json:"operation"`
}

// CredentialsResponse carries the credentials; Brickferry uses the Azure user
// delegation SAS and refuses the others with an explanation.
type CredentialsResponse struct {
	Credentials struct {
		ExpirationTime         int64 `json:"expiration_time"`
		AzureUserDelegationSAS *struct {
			SASToken string `json:"sas_token"`
		} `json:"azure_user_delegation_sas"`
		AWSTempCredentials any `json:"aws_temp_credentials"`
		GCPOAuthToken      any `json:"gcp_oauth_token"`
	} `json:"credentials"`
}

// SetTagRequest sets one tag of a version.
type SetTagRequest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Key     string `json:"key"`
	Value   string `json:"value"`
}
