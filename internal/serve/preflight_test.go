package serve_test

import (
	"context"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// TestAModelVersionThatIsNotThereChangesNoEndpoint: the version is resolved
// and must be READY before the endpoint is created or its config sent, so a
// typo or a failed registration leaves the endpoint serving what it served.
func TestAModelVersionThatIsNotThereChangesNoEndpoint(t *testing.T) {
	w := newWorld(t, emulator.Options{})
	w.serveVersion(1, nil)
	w.ws.FailRegistration("churn", "the model files are missing")
	_, err := ml.NewModelRegistry(w.c).CreateModelVersion(context.Background(), ml.CreateModelVersionRequest{Name: "churn", Source: "dbfs:/models/churn"})
	require.NoError(t, err) // version 4, FAILED_REGISTRATION
	for _, tc := range []struct{ model, version, problem string }{
		{"churn", "9", "input modelVersion: version 9 of churn not found in the workspace model registry"},
		{"chrun", "1", "input modelVersion: registered model chrun not found"},
		{"churn", "4", "input modelVersion: version 4 of churn is FAILED_REGISTRATION (the model files are missing), not READY"},
	} {
		t.Run(tc.model+"/"+tc.version, func(t *testing.T) {
			w.ws.ResetRequests()
			res := w.run(map[string]string{"modelName": tc.model, "modelVersion": tc.version})
			require.Equal(t, agent.Failed, res.Result, res.Stdout)
			require.Len(t, res.Errors, 1)
			assert.Contains(t, res.Errors[0], tc.problem)
			assert.Empty(t, w.configWrites(), "no endpoint write")
			assert.Equal(t, map[string]int{"churn-1": 100}, w.traffic(), "the endpoint serves what it served")
		})
	}
}
