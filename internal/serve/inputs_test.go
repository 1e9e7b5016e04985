package serve_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// TestBadInputs checks that each bad input fails the task with a message
// naming the input, before any request reaches the workspace.
func TestBadInputs(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{})
	notJSON := filepath.Join(t.TempDir(), "body.json")
	require.NoError(t, os.WriteFile(notJSON, []byte("{not json"), 0o644))

	cases := []struct {
		name   string
		inputs map[string]string
		want   string // in the error issue
	}{
		{"endpoint name with a dot", map[string]string{"endpointName": "churn.serving"}, "'Endpoint name' (endpointName): \"churn.serving\" is not a valid endpoint name"},
		{"endpoint name with a space", map[string]string{"endpointName": "churn serving"}, "is not a valid endpoint name"},
		{"endpoint name too long", map[string]string{"endpointName": strings.Repeat("e", 64)}, "1 to 63 letters"},
		{"endpoint name missing", map[string]string{"endpointName": ""}, "'Endpoint name' (endpointName): is required"},
		{"traffic 0", map[string]string{"trafficPercent": "0"}, "'Traffic to the new version (%)' (trafficPercent): \"0\" is not a whole number from 1 to 100"},
		{"traffic 101", map[string]string{"trafficPercent": "101"}, "\"101\" is not a whole number from 1 to 100"},
		{"traffic not a number", map[string]string{"trafficPercent": "half"}, "is not a whole number from 1 to 100"},
		{"version not a number", map[string]string{"modelVersion": "latest"}, "'Model version' (modelVersion): \"latest\" is not a model version number"},
		{"version zero", map[string]string{"modelVersion": "0"}, "is not a model version number"},
		{"version missing", map[string]string{"modelVersion": ""}, "(modelVersion): is required"},
		{"unknown workload size", map[string]string{"workloadSize": "Huge"}, "'Workload size' (workloadSize): \"Huge\" is not one of: Large, Medium, Small"},
		{"unknown workload type", map[string]string{"workloadType": "TPU"}, "(workloadType): \"TPU\" is not one of"},
		{"payload not JSON", map[string]string{"smokeTestPayload": "{rows: 1}"}, "'Request body (JSON)' (smokeTestPayload): is not valid JSON"},
		{"payload of an unknown shape", map[string]string{"smokeTestPayload": `{"rows": [[1, 2]]}`}, "has an unexpected key \"rows\""},
		{"payload with two shapes", map[string]string{"smokeTestPayload": `{"inputs": [1], "instances": [1]}`}, "must have exactly one of"},
		{"payload with no rows", map[string]string{"smokeTestPayload": `{"dataframe_split": {"columns": ["a"], "data": []}}`}, "dataframe_split: has no rows"},
		{"payload records not a list", map[string]string{"smokeTestPayload": `{"dataframe_records": {"a": 1}}`}, "dataframe_records: must be a list of records"},
		{"payload a list", map[string]string{"smokeTestPayload": `[1, 2]`}, "must be a JSON object"},
		{"payload file not JSON", map[string]string{"smokeTestPayload": "", "smokeTestPayloadFile": notJSON}, "(smokeTestPayloadFile): " + notJSON + ": is not valid JSON"},
		{"payload file missing", map[string]string{"smokeTestPayload": "", "smokeTestPayloadFile": notJSON + ".missing"}, "cannot read"},
		{"payload inline and file", map[string]string{"smokeTestPayloadFile": notJSON}, "give either a request body file or an inline request body"},
		{"timeout not a number", map[string]string{"timeoutMinutes": "soon"}, "(timeoutMinutes): \"soon\" is not a number of minutes"},
		{"timeout negative", map[string]string{"timeoutMinutes": "-5"}, "is not a number of minutes"},
		{"bad environment variable name", map[string]string{"environmentVariables": "1X=a"}, "\"1X\" is not an environment variable name"},
		{"broken secret reference", map[string]string{"environmentVariables": "KEY={{secrets/scope}}"}, "KEY: a secret reference must be the whole value"},
		{"tag line without =", map[string]string{"tags": "team"}, "(tags): line 1 \"team\" is not name=value"},
		{"rollback not a boolean", map[string]string{"rollback": "maybe"}, "(rollback): \"maybe\" is not a boolean"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := w.run(tc.inputs)
			require.Equal(t, agent.Failed, res.Result)
			require.Len(t, res.Errors, 1, "one problem, one issue: %v", res.Errors)
			assert.Contains(t, res.Errors[0], tc.want)
			assert.Empty(t, w.ws.Requests(), "no request before the inputs are valid")
		})
	}

	t.Run("every problem at once", func(t *testing.T) {
		res := w.run(map[string]string{"endpointName": "a b", "trafficPercent": "0", "modelVersion": "x", "smokeTestPayload": "{"})
		require.Equal(t, agent.Failed, res.Result)
		assert.Len(t, res.Errors, 4)
		assert.Equal(t, "4 problems, see the errors above", res.Message)
		assert.Empty(t, w.ws.Requests())
	})

	t.Run("no payload check when the smoke test is off", func(t *testing.T) {
		res := w.run(map[string]string{"smokeTest": "false", "smokeTestPayload": "{", "endpointName": "a b"})
		require.Len(t, res.Errors, 1)
		assert.Contains(t, res.Errors[0], "endpointName")
	})
}
