package promote_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

func gateInputs(version string, extra map[string]string) map[string]string {
	in := map[string]string{"command": "gate", "modelName": "churn", "modelVersion": version, "stage": "Production", "metricName": "auc"}
	for k, v := range extra {
		in[k] = v
	}
	return in
}

func TestGateWorkspaceRegistry(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{})
	registered(t, ws, 0.90, 0.92, 0.89)

	// Nothing in Production yet: the first candidate passes (threshold aside).
	res := run(t, ws, gateInputs("1", nil))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "true", res.Outputs["promote"])
	assert.Equal(t, "", res.Outputs["previousVersion"])
	res = run(t, ws, gateInputs("1", map[string]string{"threshold": "0.95"}))
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Equal(t, "false", res.Outputs["promote"])
	assert.Equal(t, []string{"gate not passed for version 1 of churn to Production: auc = 0.9 is below the threshold 0.95"}, res.Errors)

	require.Equal(t, agent.Succeeded, run(t, ws, transition("1", "Production")).Result)

	ws.ResetRequests()
	res = run(t, ws, gateInputs("2", map[string]string{"minImprovement": "0.01"}))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "true", res.Outputs["promote"])
	assert.Equal(t, "2", res.Outputs["modelVersion"])
	assert.Equal(t, "1", res.Outputs["previousVersion"])
	assert.Zero(t, ws.Writes(), "a gate only reads")

	res = run(t, ws, gateInputs("2", map[string]string{"minImprovement": "0.05"}))
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Equal(t, "false", res.Outputs["promote"])
	assert.Equal(t, []string{"gate not passed for version 2 of churn to Production: auc = 0.92 does not beat version 1 (0.9) by 0.05 (higher is better): it needed 0.95"}, res.Errors)

	// Worse candidate, warn mode: the pipeline goes on with promote=false.
	res = run(t, ws, gateInputs("3", map[string]string{"onGateFail": "warn"}))
	require.Equal(t, agent.SucceededWithIssues, res.Result, res.Stdout)
	assert.Equal(t, "false", res.Outputs["promote"])
	require.Len(t, res.Warnings, 1)
	assert.Contains(t, res.Warnings[0], "auc = 0.89 does not beat version 1 (0.9) by 0 (higher is better)")

	// Lower is better: version 3 wins.
	res = run(t, ws, gateInputs("3", map[string]string{"direction": "lower"}))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "true", res.Outputs["promote"])
	require.Len(t, res.Summaries, 1)
	for _, md := range res.Summaries {
		assert.Contains(t, md, "Compared auc with version 1 in Production: 0.89 vs 0.9 (lower is better, minimum improvement 0). Gate passed.")
	}
}

// TestGateThresholdInEachDirection: with no version holding the alias, the
// candidate is checked against the threshold alone, which is a ceiling for a
// lower-is-better metric (an RMSE over it is not promoted) and a floor for a
// higher-is-better one; a value at the threshold passes.
func TestGateThresholdInEachDirection(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{})
	ucVersion(t, ws, "main.ml.churn", train(t, ws, map[string]float64{"rmse": 0.30, "auc": 0.90}))

	for _, tc := range []struct {
		metric, direction, threshold string
		pass                         bool
		why                          string // the error when the gate does not pass
	}{
		{"rmse", "lower", "0.25", false, "rmse = 0.3 is above the threshold 0.25"},
		{"rmse", "lower", "0.3", true, ""},
		{"rmse", "lower", "0.35", true, ""},
		{"auc", "higher", "0.95", false, "auc = 0.9 is below the threshold 0.95"},
		{"auc", "higher", "0.9", true, ""},
		{"auc", "higher", "0.85", true, ""},
	} {
		t.Run(tc.metric+" "+tc.direction+" is better, threshold "+tc.threshold, func(t *testing.T) {
			res := run(t, ws, map[string]string{"command": "gate", "modelName": "main.ml.churn", "modelVersion": "1", "alias": "champion",
				"metricName": tc.metric, "direction": tc.direction, "threshold": tc.threshold})
			if tc.pass {
				require.Equal(t, agent.Succeeded, res.Result, "the gate refused %s = its value within the threshold %s (%s is better): %v", tc.metric, tc.threshold, tc.direction, res.Errors)
				assert.Equal(t, "true", res.Outputs["promote"])
				return
			}
			require.Equal(t, agent.Failed, res.Result, "the gate passed %s beyond the threshold %s (%s is better): the threshold comparison is the wrong way round", tc.metric, tc.threshold, tc.direction)
			assert.Equal(t, "false", res.Outputs["promote"])
			assert.Equal(t, []string{"gate not passed for version 1 of main.ml.churn to @champion: " + tc.why}, res.Errors)
		})
	}
}

func TestGateMissingMetricIsExplained(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{})
	registered(t, ws, 0.90)
	noAUC := train(t, ws, map[string]float64{"rmse": 0.3, "f1": 0.7})
	res := run(t, ws, registerInputs(noAUC))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	require.Equal(t, agent.Succeeded, run(t, ws, transition("1", "Production")).Result)

	res = run(t, ws, gateInputs("2", nil))
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Equal(t, []string{"metric auc not found in MLflow run " + noAUC + ", the source run of the candidate version 2 of churn in workspace " + ws.URL() + " (it logged: f1, rmse)"}, res.Errors)
	assert.Empty(t, res.Outputs["promote"], "no decision without the candidate's metric")

	// The other way round: the version in Production lacks the metric.
	require.Equal(t, agent.Succeeded, run(t, ws, transition("2", "Production")).Result)
	res = run(t, ws, gateInputs("1", map[string]string{"onGateFail": "warn"}))
	require.Equal(t, agent.SucceededWithIssues, res.Result, res.Stdout)
	assert.Equal(t, "false", res.Outputs["promote"])
	require.Len(t, res.Warnings, 1)
	assert.Contains(t, res.Warnings[0], "metric auc not found in MLflow run "+noAUC+", the source run of the current Production version 2 of churn")
}

func TestGateUnityCatalogAlias(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{})
	ucVersion(t, ws, "main.ml.churn", train(t, ws, map[string]float64{"rmse": 0.30}))
	ucVersion(t, ws, "main.ml.churn", train(t, ws, map[string]float64{"rmse": 0.25}))
	require.Equal(t, agent.Succeeded, run(t, ws, aliasInputs("1", "champion")).Result)

	in := map[string]string{"command": "gate", "modelName": "main.ml.churn", "modelVersion": "2", "alias": "champion", "metricName": "rmse", "direction": "lower"}
	res := run(t, ws, in)
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "true", res.Outputs["promote"])
	assert.Equal(t, "1", res.Outputs["previousVersion"])

	in["minImprovement"] = "0.1"
	res = run(t, ws, in)
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Equal(t, "false", res.Outputs["promote"])
	assert.Equal(t, []string{"gate not passed for version 2 of main.ml.churn to @champion: rmse = 0.25 does not beat version 1 (0.3) by 0.1 (lower is better): it needed 0.2"}, res.Errors)
}
