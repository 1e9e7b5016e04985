package batchscore_test

import (
	"testing"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/batchscore"
	"github.com/brickferry/brickferry/internal/cli"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/tasks"
)

// TestRefusedCredentialsAreExplained: a 401/403 from the workspace in the
// middle of the task (here a token revoked after the connection was made)
// is reported with the connection method and what to fix, as the harness
// explains every task's errors with the workspaces it connected to.
func TestRefusedCredentialsAreExplained(t *testing.T) {
	w := newWorld(t)
	cfg := w.config()
	cfg.Token = "dapi-revoked-00000000000000000000"
	c, err := client.New(cfg)
	require.NoError(t, err)
	revoked := &auth.Workspace{Name: "workspace", Method: auth.MethodToken, Host: w.ws.URL(), Client: c, Principal: "the token input"}
	def, err := tasks.Definition("BatchScore")
	require.NoError(t, err)
	deps := batchscore.Deps{Connect: auth.Direct(revoked), Clock: w.clock}

	res := agenttest.Run{Task: "BatchScore", Inputs: inputs(), Env: w.nextPipelineRun()}.
		InProcess(t, cli.Registry{"BatchScore": cli.Task{Definition: def, Run: deps.Task()}})

	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	require.Len(t, res.Errors, 1, res.Stdout)
	for _, want := range []string{"workspace (token input)", w.ws.URL() + " answered 403", "the personal access token from the token input was refused", "create a new token"} {
		assert.Contains(t, res.Errors[0], want)
	}
}
