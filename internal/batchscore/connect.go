package batchscore

import (
	"context"

	"github.com/databricks/databricks-sdk-go/client"

	"github.com/brickops/brickops/internal/agent"
	"github.com/brickops/brickops/internal/auth"
)

// WorkspaceConnection is the production Deps.Connection: it reads the
// workspace inputs of the task (connectionMethod, ...) with package auth and
// connects when the task asks.
func WorkspaceConnection(env agent.Env, in *agent.Inputs, log *agent.Log) Connect {
	opts := auth.ReadOptions(in, "")
	return func(ctx context.Context) (*client.DatabricksClient, error) {
		ws, err := auth.Resolve(ctx, opts, env, log)
		if err != nil {
			return nil, err
		}
		return ws.Client, nil
	}
}
