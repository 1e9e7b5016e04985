package registry

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/brickferry/brickferry/internal/modeluri"
)

// MLflow 3 deployment jobs (Beta, https://docs.databricks.com/aws/en/mlflow/deployment-job):
// a Unity Catalog model may name a job that runs whenever a new version is
// created. The fields below are MLflow's Unity Catalog registry messages
// (mlflow/protos/databricks_uc_registry_messages.proto as MLflow 3 ships it:
// RegisteredModel.deployment_job_id and deployment_job_state;
// ModelVersion.deployment_job_state, a ModelVersionDeploymentJobState),
// read through MLflow's routes GET .../unity-catalog/registered-models/get
// and .../unity-catalog/model-versions/get: databricks-sdk-go v0.81.0's
// catalog API has neither field.

// DeploymentJobState is a version's deployment job state.
type DeploymentJobState struct {
	JobID string `json:"job_id"`
	RunID string `json:"run_id"`
	// JobState is the model's connection to its job: CONNECTED, NOT_SET_UP,
	// NOT_FOUND, REQUIRED_PARAMETERS_CHANGED.
	JobState string `json:"job_state"`
	// RunState is PENDING, RUNNING, SUCCEEDED, FAILED, APPROVAL (waiting for
	// an approval) or NO_VALID_DEPLOYMENT_JOB_FOUND.
	RunState        string `json:"run_state"`
	CurrentTaskName string `json:"current_task_name"`
}

type ucRegisteredModelResponse struct {
	RegisteredModel *struct {
		DeploymentJobID    string `json:"deployment_job_id"`
		DeploymentJobState string `json:"deployment_job_state"`
	} `json:"registered_model"`
}

// DeploymentJob is the id of the deployment job of the Unity Catalog model
// name (0: none) and the model's connection state to it.
func (r *Registry) DeploymentJob(ctx context.Context, name modeluri.Name) (jobID int64, state string, err error) {
	var resp ucRegisteredModelResponse
	err = r.Client.Do(ctx, http.MethodGet, "/api/2.0/mlflow/unity-catalog/registered-models/get", nil,
		map[string]any{"name": name.Full}, nil, &resp)
	if err != nil {
		if NotFound(err) {
			return 0, "", r.modelNotFound(name)
		}
		return 0, "", fmt.Errorf("reading the registered model %s: %w", name.Full, err)
	}
	if resp.RegisteredModel == nil || resp.RegisteredModel.DeploymentJobID == "" {
		return 0, "", nil
	}
	id, err := strconv.ParseInt(resp.RegisteredModel.DeploymentJobID, 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("the deployment job id %q of %s is not a job id", resp.RegisteredModel.DeploymentJobID, name.Full)
	}
	return id, resp.RegisteredModel.DeploymentJobState, nil
}

type ucDeploymentVersionResponse struct {
	ModelVersion *struct {
		DeploymentJobState *DeploymentJobState `json:"deployment_job_state"`
	} `json:"model_version"`
}

// DeploymentState is the deployment job state of version n of the Unity
// Catalog model name (nil when the version has none).
func (r *Registry) DeploymentState(ctx context.Context, name modeluri.Name, n int) (*DeploymentJobState, error) {
	var resp ucDeploymentVersionResponse
	err := r.Client.Do(ctx, http.MethodGet, UCRoute+"get", nil, map[string]any{"name": name.Full, "version": strconv.Itoa(n)}, nil, &resp)
	if err != nil {
		return nil, fmt.Errorf("reading the deployment job state of version %d of %s: %w", n, name.Full, err)
	}
	if resp.ModelVersion == nil {
		return nil, nil
	}
	return resp.ModelVersion.DeploymentJobState, nil
}

// SetTag sets one tag on version n, of either registry, as given: the key
// is not checked or rewritten (TagVersion does that for the task's own
// tags).
func (r *Registry) SetTag(ctx context.Context, name modeluri.Name, n int, key, value string) error {
	if err := r.setTag(ctx, name, n, key, value); err != nil {
		return fmt.Errorf("tagging version %d of %s with %s: %w", n, name.Full, key, err)
	}
	return nil
}
