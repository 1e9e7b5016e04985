package promote

import (
	"context"

	"github.com/databricks/databricks-sdk-go/client"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/modelcopy"
)

// copyVersion runs the copy command: the source workspace is the task's
// connection group, the target the "target" group. Both are resolved only
// once every input is valid. The optional stage or alias in the target is set
// with the transition command's rules (registry.Transition).
func copyVersion(ctx context.Context, env agent.Env, log *agent.Log, opts modelcopy.Options, source, target auth.Connector, in *agent.Inputs, clock converge.Clock) error {
	if err := in.Err(); err != nil {
		return err
	}
	opts.Pipeline = env.System()
	src, err := source(ctx)
	if err != nil {
		return err
	}
	tgt, err := target(ctx)
	if err != nil {
		return err
	}
	deps := modelcopy.Deps{
		Source:  func(context.Context) (*client.DatabricksClient, error) { return src.Client, nil },
		Target:  func(context.Context) (*client.DatabricksClient, error) { return tgt.Client, nil },
		Storage: tgt.HTTPClient,
		Clock:   clock,
	}
	_, err = modelcopy.Run(tgt.Context(ctx), opts, deps, log)
	return tgt.Explain(src.Explain(err))
}
