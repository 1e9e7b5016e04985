package serve_test

import (
	"net/http"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// TestSmokeTestWithTheModelsInputExample reads the input example logged
// with the model through the registry's signed download URLs, as MLflow
// does, from Azurite behind the emulator.
func TestSmokeTestWithTheModelsInputExample(t *testing.T) {
	t.Parallel()
	az := azurite.Start(t)
	w := newWorld(t, emulator.Options{Blob: &emulator.BlobAccount{Endpoint: az.BlobEndpoint, AccountName: az.AccountName, AccountKey: az.AccountKey}})
	w.registerModel("churn_serving_example", 1, map[string]string{
		"serving_input_example.json": `{"dataframe_split": {"columns": ["tenure"], "data": [[1], [2], [3]]}}`,
	})
	w.registerModel("churn_records", 1, map[string]string{
		"input_example.json": `[{"tenure": 1}, {"tenure": 2}]`,
	})

	cases := []struct {
		model string
		rows  int
		body  string
	}{
		{"churn_serving_example", 3, `{"dataframe_split":{"columns":["tenure"],"data":[[1],[2],[3]]}}`},
		{"churn_records", 2, `{"dataframe_records":[{"tenure": 1}, {"tenure": 2}]}`},
	}
	for _, tc := range cases {
		w.ws.ResetRequests()
		res := w.run(map[string]string{"modelName": tc.model, "smokeTestPayload": ""})
		require.Equal(t, agent.Succeeded, res.Result, "errors: %v %v\n%s", res.Errors, res.Warnings, res.Stdout)
		assert.Contains(t, res.Stdout, "with the input example of "+tc.model+" version 1")
		calls := w.ws.RequestsTo(http.MethodPost, "/serving-endpoints/"+endpoint+"/invocations")
		require.Len(t, calls, 1)
		assert.JSONEq(t, tc.body, string(calls[0].Raw))
		assert.NotEmpty(t, res.Outputs["smokeTestLatencyMs"])
	}

	// A model logged without an example: the smoke test is skipped, with a warning.
	res := w.run(map[string]string{"modelName": "churn", "smokeTestPayload": ""})
	require.Equal(t, agent.SucceededWithIssues, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	require.Len(t, res.Warnings, 1)
	assert.Contains(t, res.Warnings[0], "smoke test skipped: no request body was given and churn version 1 was logged without an input example")
	assert.NotContains(t, res.Outputs, "smokeTestLatencyMs")
	assert.Equal(t, serving.EndpointStateReadyReady, w.endpoint().State.Ready)
}

// TestSmokeTestWithAUnityCatalogModelsInputExample reads the input example
// of a Unity Catalog version from its storage location with a read-only
// temporary credential, and skips with a warning when the version has none.
func TestSmokeTestWithAUnityCatalogModelsInputExample(t *testing.T) {
	t.Parallel()
	az := azurite.Start(t)
	w := newWorld(t, emulator.Options{Blob: &emulator.BlobAccount{Endpoint: az.BlobEndpoint, AccountName: az.AccountName, AccountKey: az.AccountKey}})
	w.registerUCModel("prod.ml.churn", map[string]string{
		"input_example.json": `{"columns": ["tenure"], "data": [[1], [2], [3]]}`,
	})
	w.registerUCModel("prod.ml.bare", nil)

	res := w.run(map[string]string{"modelName": "prod.ml.churn", "smokeTestPayload": ""})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v %v\n%s", res.Errors, res.Warnings, res.Stdout)
	assert.Contains(t, res.Stdout, "with the input example of prod.ml.churn version 1")
	calls := w.ws.RequestsTo(http.MethodPost, "/serving-endpoints/"+endpoint+"/invocations")
	require.Len(t, calls, 1)
	assert.JSONEq(t, `{"dataframe_split": {"columns": ["tenure"], "data": [[1], [2], [3]]}}`, string(calls[0].Raw))
	creds := w.ws.RequestsTo(http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/generate-temporary-credentials")
	require.NotEmpty(t, creds)
	assert.Contains(t, string(creds[len(creds)-1].Raw), "MODEL_VERSION_OPERATION_READ\"", "the smoke test asks for read-only credentials")

	res = w.run(map[string]string{"modelName": "prod.ml.bare", "smokeTestPayload": ""})
	require.Equal(t, agent.SucceededWithIssues, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	require.Len(t, res.Warnings, 1)
	assert.Contains(t, res.Warnings[0], "prod.ml.bare version 1 was logged without an input example")
}
