package cli

import (
	"context"
	"fmt"

	"github.com/brickops/brickops/internal/agent"
)

// Tasks is the registry of the pipeline tasks this executable runs.
func Tasks() Registry {
	return Registry{
		"DatabricksTrain": notYetAvailable("DatabricksTrain"),
		"MLflowPromote":   notYetAvailable("MLflowPromote"),
		"BatchScore":      notYetAvailable("BatchScore"),
		"ModelServe":      notYetAvailable("ModelServe"),
	}
}

// notYetAvailable stands for a task whose implementation has not landed in
// this build: it fails with a clear message instead of pretending to work.
func notYetAvailable(name string) agent.TaskFunc {
	return func(context.Context, agent.Env, *agent.Log) error {
		return fmt.Errorf("task %s is not implemented in this build of brickops", name)
	}
}
