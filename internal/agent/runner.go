package agent

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
)

// TaskFunc runs one task. It reads its inputs from env, reports through log,
// and returns an error when the task failed. It must return soon after ctx is
// cancelled (the pipeline was cancelled), after cancelling any remote work it
// started.
type TaskFunc func(ctx context.Context, env Env, log *Log) error

// Run runs a task and writes its single task.complete: Succeeded (or
// SucceededWithIssues when it wrote warnings), Failed with one error issue per
// problem, each passed through the explainers the task added to log (see
// Log.AddExplainer), or Canceled when ctx was cancelled. A panic is reported
// as a failure rather than crashing the step. After a cancel it writes
// Canceled within GracePeriod+0.5 s of the first signal even if the task has
// not returned (see cancel.go). Run returns the result it wrote.
func Run(ctx context.Context, task TaskFunc, env Env, log *Log) (result Result) {
	defer func() {
		if p := recover(); p != nil {
			log.Debug("panic: %v\n%s", p, debug.Stack())
			log.Error("internal error: %v (please report it to the extension's publisher with this log)", p)
			result = Failed
			log.Complete(result, "internal error")
		}
	}()
	err, abandoned := runGraced(ctx, task, env, log)
	if abandoned {
		log.Complete(Canceled, "canceled")
		return Canceled
	}
	result, message := classify(ctx, err, log)
	log.Complete(result, message)
	return result
}

func classify(ctx context.Context, err error, log *Log) (Result, string) {
	switch {
	case err == nil && log.Warnings() > 0:
		return SucceededWithIssues, fmt.Sprintf("finished with %d warning(s)", log.Warnings())
	case err == nil:
		return Succeeded, ""
	case ctx.Err() != nil:
		log.Warning("the pipeline cancelled the task: %v", err)
		return Canceled, "canceled"
	}
	problems := splitJoined(err)
	for i, p := range problems {
		problems[i] = log.explained(p)
		log.Error("%s", problems[i].Error())
	}
	if len(problems) == 1 {
		return Failed, firstLine(problems[0].Error())
	}
	return Failed, fmt.Sprintf("%d problems, see the errors above", len(problems))
}

// splitJoined unwraps errors.Join so that every bad input is its own issue.
func splitJoined(err error) []error {
	// Only a top-level errors.Join is split: a wrapped one keeps its context.
	if joined, ok := err.(interface{ Unwrap() []error }); ok { //nolint:errorlint // see above
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, splitJoined(e)...)
		}
		return out
	}
	return []error{err}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
