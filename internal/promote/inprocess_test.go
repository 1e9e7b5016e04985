package promote_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/cli"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// TestInProcessRegisterTransitionGate runs the dev flow in this process, with
// the production registry and connection, so that go test -race sees the
// task's code (the other tests run the built executable).
func TestInProcessRegisterTransitionGate(t *testing.T) {
	ws := startWorkspace(t, emulator.Options{})
	runID := train(t, ws, map[string]float64{"auc": 0.91})

	res := agentRun(t, ws, registerInputs(runID)).InProcess(t, cli.Tasks())
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "models:/churn/1", res.Outputs["modelUri"])

	res = agentRun(t, ws, gateInputs("1", map[string]string{"stage": "Staging"})).InProcess(t, cli.Tasks())
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "true", res.Outputs["promote"])

	res = agentRun(t, ws, transition("1", "Staging")).InProcess(t, cli.Tasks())
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "Staging", res.Outputs["stage"])
}
