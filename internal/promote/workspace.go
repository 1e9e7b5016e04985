package promote

import (
	"context"
	"fmt"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/registry"
)

// workspace holds the Databricks services the task uses, built from one
// client (cheaper in executable size than the root WorkspaceClient): the
// registries' reads and links through package registry, the writes of each
// command through the SDK's services.
type workspace struct {
	*registry.Registry
	c          *client.DatabricksClient // routes the SDK has no service for (uc.go)
	registry   *ml.ModelRegistryAPI
	runs       *ml.ExperimentsAPI
	ucModels   *catalog.RegisteredModelsAPI
	ucVersions *catalog.ModelVersionsAPI
}

func newWorkspace(host string, c *client.DatabricksClient) *workspace {
	return &workspace{
		Registry:   registry.New(host, c),
		c:          c,
		registry:   ml.NewModelRegistry(c),
		runs:       ml.NewExperiments(c),
		ucModels:   catalog.NewRegisteredModels(c),
		ucVersions: catalog.NewModelVersions(c),
	}
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
