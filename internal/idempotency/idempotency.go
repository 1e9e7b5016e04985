// Package idempotency starts the Databricks run of a DatabricksTrain or
// BatchScore step at most once, with the idempotency_token of the Jobs API
// request that starts it (runs/submit, run-now). Databricks answers a
// request whose token it has seen before with the run the first request
// started, so a request retried by the SDK, or the same step started again,
// starts no second run
// (https://docs.databricks.com/api/azure/workspace/jobs/submit,
// idempotency_token: at most 64 characters).
//
// The runs of a step are numbered 1, 2, 3, ...; run k's token is derived
// from the collection, project, plan, build or release, job, the step's name
// and k (run 1's token is the one Brickferry versions before this numbering
// sent for the first try of the first job attempt).
//
// The first try of the step in the first job attempt starts with token 1.
// Any later start of the step (a retry by retryCountOnTaskFailure, or the
// next job attempt by "Rerun failed jobs") walks the tokens from 1: a token
// Databricks has seen answers the run it started; while that run has ended
// (failed, cancelled, or succeeded earlier) the next token is tried, and
// the first run still active is taken over, or, at an unused token, a new
// run starts. So a run an earlier try left running when its process was
// killed (kill -9, an agent that died) is waited for instead of being
// duplicated, and a run that ended is never handed back as if it were new.
// A run that started after the newest run of the workspace before the walk
// (runs/list, newest first; compared by the server's start times) is the
// one this walk started: it is taken whatever its state, so a new run that
// failed at once ends the walk instead of starting another.
//
// Counting tries: a step retried by retryCountOnTaskFailure gets exactly the
// environment of its first try; the agent has no variable for the retry
// (RetryHelper.RetryStep in azure-pipelines-agent src/Agent.Worker/
// RetryHelper.cs counts them in a local variable). So the step records its
// tries in a task variable: the agent gives a step's task variables back to
// that step, and the retry runs in the step's execution context
// (Handlers/Handler.cs AddTaskVariablesToEnvironment).
package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/databricks/databricks-sdk-go/listing"
	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/brickferry/brickferry/internal/agent"
)

// TryVariable is the task variable that counts the tries of a step.
const TryVariable = "brickferry.try"

// maxRuns bounds the tokens a step walks: that many ended runs of one step
// mean something other than reruns is going on.
const maxRuns = 50

// Runs reads runs; *jobs.JobsAPI has it.
type Runs interface {
	GetRun(ctx context.Context, request jobs.GetRunRequest) (*jobs.Run, error)
	ListRuns(ctx context.Context, request jobs.ListRunsRequest) listing.Iterator[jobs.BaseRun]
}

// StartFunc sends the request that starts the run with the given token
// ("" outside a pipeline) and returns the run id Databricks answered.
type StartFunc func(ctx context.Context, token string) (int64, error)

// Start starts the step's run, or takes over the run an earlier start of
// the step left active (see the package comment), and returns its id. kind
// names the task in the token (train, score). Call it once, for the request
// that starts the run; it records the try for a retry of the step.
func Start(ctx context.Context, env agent.Env, log *agent.Log, kind string, runs Runs, start StartFunc) (int64, error) {
	sys := env.System()
	if sys.PlanID == "" && sys.BuildID == "" && sys.ReleaseID == "" {
		return start(ctx, "") // outside a pipeline every local run is a new run
	}
	try := 1
	if n, err := strconv.Atoi(env.TaskVariable(TryVariable)); err == nil && n >= 1 {
		try = n + 1
	}
	log.SetTaskVariable(TryVariable, strconv.Itoa(try))
	if try == 1 && sys.Attempt() == 1 {
		// The first start of the step: only a repeat of this very request
		// can have used token 1.
		return start(ctx, Token(sys, kind, 1))
	}
	before, err := newestRun(ctx, runs)
	if err != nil {
		return 0, err
	}
	for k := 1; k <= maxRuns; k++ {
		id, err := start(ctx, Token(sys, kind, k))
		if err != nil {
			return 0, err
		}
		run, err := runs.GetRun(ctx, jobs.GetRunRequest{RunId: id})
		if err != nil {
			return 0, fmt.Errorf("reading Databricks run %d: %w", id, err)
		}
		if startedSince(run, before) {
			return id, nil // this walk's own new run, whatever its state
		}
		if !active(run) {
			log.Info("Run %d, which an earlier try of this step started, has ended (%s): starting another.", id, describe(run))
			continue
		}
		log.Info("Run %d, which an earlier try of this step started, is still %s: waiting for it instead of starting another.", id, describe(run))
		return id, nil
	}
	return 0, fmt.Errorf("this step already started %d Databricks runs in this pipeline run, all ended: not starting another", maxRuns)
}

// newestRun is the workspace's newest run (runs/list answers newest first,
// by start time), or nil when there is none.
func newestRun(ctx context.Context, runs Runs) (*jobs.BaseRun, error) {
	it := runs.ListRuns(ctx, jobs.ListRunsRequest{Limit: 1})
	if !it.HasNext(ctx) {
		return nil, nil
	}
	run, err := it.Next(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the workspace's runs: %w", err)
	}
	return &run, nil
}

// startedSince reports whether run started after before, the newest run
// when the walk began: then no earlier try can have started it. It compares
// the server's start times, not run ids, which Databricks documents only as
// unique.
func startedSince(run *jobs.Run, before *jobs.BaseRun) bool {
	if before == nil {
		return true
	}
	return run.RunId != before.RunId && run.StartTime >= before.StartTime
}

// Token is the token of the step's run k (1, 2, ...), as
// brickferry-<kind>-<40 hex digits>.
func Token(sys agent.System, kind string, k int) string {
	fields := []string{
		sys.CollectionURI, sys.ProjectID, sys.PlanID, sys.BuildID, sys.ReleaseID,
		sys.JobID, "1", sys.StepName,
	}
	if k > 1 {
		// Run 1 keeps the token of the first try of the first job attempt
		// of Brickferry versions that numbered tries per attempt; the "1" above
		// is that attempt.
		fields = append(fields, "try", strconv.Itoa(k))
	}
	h := sha256.Sum256([]byte(strings.Join(fields, "\x00")))
	return "brickferry-" + kind + "-" + hex.EncodeToString(h[:])[:40]
}

// active reports whether a run can still succeed: not ended and not being
// terminated (a run an earlier try cancelled is TERMINATING on its way to
// CANCELED). A run without a state is taken as active.
func active(run *jobs.Run) bool {
	if run.State == nil {
		return true
	}
	switch run.State.LifeCycleState {
	case jobs.RunLifeCycleStateTerminated, jobs.RunLifeCycleStateTerminating,
		jobs.RunLifeCycleStateSkipped, jobs.RunLifeCycleStateInternalError:
		return false
	}
	return true
}

func describe(run *jobs.Run) string {
	if run.State == nil {
		return "in an unknown state"
	}
	if run.State.ResultState != "" {
		return string(run.State.ResultState)
	}
	return string(run.State.LifeCycleState)
}
