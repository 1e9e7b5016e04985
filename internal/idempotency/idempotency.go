// Package idempotency derives the idempotency_token that DatabricksTrain
// and BatchScore send with the Jobs API request that starts a run
// (runs/submit, run-now). Databricks answers a request whose token it has
// seen before with the run the first request started, so a request retried
// by the SDK, or a rerun of the same step, starts no second run
// (https://docs.databricks.com/api/azure/workspace/jobs/submit,
// idempotency_token: at most 64 characters).
//
// The token identifies one try of one step: the collection, project, plan,
// build or release, job, System.JobAttempt, the step's name, and the try of
// the step. A new job attempt (rerunning failed jobs) is a new run.
//
// The try: a step retried by retryCountOnTaskFailure gets exactly the
// environment of its first try; the agent has no variable for the retry
// (RetryHelper.RetryStep in azure-pipelines-agent src/Agent.Worker/
// RetryHelper.cs counts them in a local variable). With the same token
// Databricks would hand the retry the run that just failed. So the step
// counts its tries itself in a task variable: the agent gives a step's task
// variables back to that step, and the retry runs in the step's execution
// context (Handlers/Handler.cs AddTaskVariablesToEnvironment).
package idempotency

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/brickops/brickops/internal/agent"
)

// TryVariable is the task variable that counts the tries of a step.
const TryVariable = "brickops.try"

// Token returns the token for the run this try of the step starts, as
// brickops-<kind>-<40 hex digits>, and records the try for a retry of the
// step. Call it once, right before the request that starts the run. Outside
// a pipeline it returns "" (every local run is a new run) and records
// nothing.
func Token(env agent.Env, log *agent.Log, kind string) string {
	sys := env.System()
	if sys.PlanID == "" && sys.BuildID == "" && sys.ReleaseID == "" {
		return ""
	}
	try := 1
	if n, err := strconv.Atoi(env.TaskVariable(TryVariable)); err == nil && n >= 1 {
		try = n + 1
	}
	log.SetTaskVariable(TryVariable, strconv.Itoa(try))
	fields := []string{
		sys.CollectionURI, sys.ProjectID, sys.PlanID, sys.BuildID, sys.ReleaseID,
		sys.JobID, strconv.Itoa(sys.Attempt()), sys.StepName,
	}
	if try > 1 {
		// The first try keeps the token of Brickops versions that did not
		// count tries.
		fields = append(fields, "try", strconv.Itoa(try))
	}
	h := sha256.Sum256([]byte(strings.Join(fields, "\x00")))
	return "brickops-" + kind + "-" + hex.EncodeToString(h[:])[:40]
}
