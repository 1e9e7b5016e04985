package promote

import (
	"context"

	"github.com/databricks/databricks-sdk-go/client"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/modelcopy"
)

// copyVersion runs the copy command from src (the task's connection group)
// to tgt (the "target" group), both connected once every input was valid.
// The optional stage or alias in the target is set with the transition
// command's rules (registry.Transition). A 401/403 from either workspace is
// explained by the task runner (auth.Start adds both as explainers).
func copyVersion(ctx context.Context, env agent.Env, log *agent.Log, opts modelcopy.Options, src, tgt *auth.Workspace, clock converge.Clock) error {
	opts.Pipeline = env.System()
	deps := modelcopy.Deps{
		Source:  func(context.Context) (*client.DatabricksClient, error) { return src.Client, nil },
		Target:  func(context.Context) (*client.DatabricksClient, error) { return tgt.Client, nil },
		Storage: tgt.HTTPClient,
		Clock:   clock,
	}
	_, err := modelcopy.Run(tgt.Context(ctx), opts, deps, log)
	return err
}
