package promote

import (
	"context"
	"fmt"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/loggedmodel"
	"github.com/brickferry/brickferry/internal/registry"
)

// workspace is the registries of the task's workspace (package registry,
// which also holds the SDK services and client the commands write with),
// its MLflow runs and its logged models (MLflow 3).
type workspace struct {
	*registry.Registry
	runs   *ml.ExperimentsAPI
	models *loggedmodel.Models
}

func newWorkspace(host string, c *client.DatabricksClient) *workspace {
	return &workspace{Registry: registry.New(host, c), runs: ml.NewExperiments(c), models: loggedmodel.New(c)}
}

// run reads an MLflow run; a run that does not exist is an error that says
// where the task looked and why it wanted the run.
func (w *workspace) run(ctx context.Context, runID, why string) (*ml.Run, error) {
	resp, err := w.runs.GetRun(ctx, ml.GetRunRequest{RunId: runID})
	if err != nil {
		if registry.NotFound(err) {
			return nil, fmt.Errorf("MLflow run %s (%s) not found in workspace %s", runID, why, w.Host)
		}
		return nil, fmt.Errorf("reading MLflow run %s (%s): %w", runID, why, err)
	}
	return resp.Run, nil
}
