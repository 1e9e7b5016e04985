package agent

import (
	"context"
	"runtime/debug"
	"sync"
	"time"
)

// When the pipeline cancels a step, the agent sends SIGINT to the task's
// process (the node launcher), SIGTERM 7.5 s later, kills it 2.5 s after
// that, and then waits at most 5 s more for output
// (azure-pipelines-agent src/Agent.Sdk/ProcessInvoker.cs KillProcessTree,
// Knob/AgentKnobs.cs ProcessInvoker SIGINT/SIGTERM timeouts). On Windows it
// sends Ctrl+C to the whole console instead (ProcessInvoker.Windows.cs
// GenerateConsoleCtrlEvent), which brickferry receives as os.Interrupt
// itself. Once the launcher is killed, brickferry is orphaned: its last lines
// and its task.complete are lost.
//
// So all cleanup after a cancel (cancelling a Databricks run, removing a
// half-registered model version, marking a copy's run FAILED) shares one
// deadline, GracePeriod after the first signal, with no retries; and Run
// writes task.complete by GracePeriod+completeMargin (6.5 s), well before
// the SIGTERM at 7.5 s, even when a workspace does not answer.

// GracePeriod is how long cleanup may take after the first signal.
const GracePeriod = 6 * time.Second

// completeMargin is how long after GracePeriod Run waits for the task to
// return before it writes task.complete itself.
const completeMargin = 500 * time.Millisecond

type cancelState struct {
	mu sync.Mutex
	at time.Time
}

type cancelKey struct{}

// cleanupKey marks a context made by Cleanup after the pipeline cancelled.
type cleanupKey struct{}

// WithCancel returns a copy of parent and a function that cancels it and
// records when it was first called: the moment the pipeline cancelled the
// task. cmd/brickferry calls it on the first SIGINT or SIGTERM.
func WithCancel(parent context.Context) (context.Context, context.CancelFunc) {
	st := &cancelState{}
	ctx, cancel := context.WithCancel(context.WithValue(parent, cancelKey{}, st))
	return ctx, func() {
		st.mu.Lock()
		if st.at.IsZero() {
			st.at = time.Now()
		}
		st.mu.Unlock()
		cancel()
	}
}

// cancelledAt reports when the pipeline cancelled ctx. A context cancelled
// other than through WithCancel (a test's) counts as cancelled now.
func cancelledAt(ctx context.Context) (time.Time, bool) {
	if st, ok := ctx.Value(cancelKey{}).(*cancelState); ok {
		st.mu.Lock()
		at := st.at
		st.mu.Unlock()
		if !at.IsZero() {
			return at, true
		}
	}
	if ctx.Err() != nil {
		return time.Now(), true
	}
	return time.Time{}, false
}

// Cancelled reports whether the pipeline has cancelled the task, also for a
// context derived with Cleanup (whose own Err is nil until its deadline).
// The retrying HTTP layer sends nothing again once it has.
func Cancelled(ctx context.Context) bool {
	if v, _ := ctx.Value(cleanupKey{}).(bool); v {
		return true
	}
	_, ok := cancelledAt(ctx)
	return ok
}

// Cleanup returns the context for one cleanup call made after ctx ended
// (cancelled by the pipeline, or past a task's own timeout): it keeps ctx's
// values, lasts at most limit, and never beyond GracePeriod after the
// pipeline's first signal, whether that came before or comes during the
// cleanup. It first logs what is about to be done, so that the log says
// what the cleanup was doing when time ran out.
func Cleanup(ctx context.Context, log *Log, limit time.Duration, what string) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(limit)
	at, cancelled := cancelledAt(ctx)
	base := context.WithoutCancel(ctx)
	if cancelled {
		deadline = minTime(deadline, at.Add(GracePeriod))
		base = context.WithValue(base, cleanupKey{}, true)
	}
	cctx, cancel := context.WithDeadline(base, deadline)
	// A signal during the cleanup cuts it at GracePeriod after that signal.
	stop := context.AfterFunc(ctx, func() {
		at, _ := cancelledAt(ctx)
		t := time.AfterFunc(time.Until(at.Add(GracePeriod)), cancel)
		context.AfterFunc(cctx, func() { t.Stop() })
	})
	CleanupStep(cctx, log, what)
	return cctx, func() { stop(); cancel() }
}

// CleanupStep logs the next call of a cleanup that makes several on one
// Cleanup context, with the time left.
func CleanupStep(ctx context.Context, log *Log, what string) {
	if log == nil {
		return
	}
	deadline, _ := ctx.Deadline()
	left := time.Until(deadline).Round(100 * time.Millisecond)
	if Cancelled(ctx) {
		log.Info("Cleaning up after the cancel (%s left): %s.", left, what)
		return
	}
	log.Info("Cleaning up (%s left): %s.", left, what)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// taskPanic carries a task's panic out of its goroutine.
type taskPanic struct {
	value any
	stack []byte
}

// runGraced runs task and returns its error; abandoned is true when the
// pipeline cancelled and the task had not returned GracePeriod+completeMargin
// after the first signal. A panic in the task is raised again in the caller.
func runGraced(ctx context.Context, task TaskFunc, env Env, log *Log) (err error, abandoned bool) { //nolint:revive // the error is the task's, the flag is Run's
	done := make(chan any, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- taskPanic{value: p, stack: debug.Stack()}
			}
		}()
		done <- task(ctx, env, log)
	}()
	cancelled := ctx.Done()
	var expired <-chan time.Time
	for {
		select {
		case r := <-done:
			if p, ok := r.(taskPanic); ok {
				log.Debug("task panic at:\n%s", p.stack)
				panic(p.value)
			}
			err, _ := r.(error)
			return err, false
		case <-cancelled:
			cancelled = nil
			at, _ := cancelledAt(ctx)
			t := time.NewTimer(time.Until(at.Add(GracePeriod + completeMargin)))
			defer t.Stop()
			expired = t.C
		case <-expired:
			log.Warning("the pipeline cancelled the task and its cleanup did not finish within %s; what it was doing is logged above", GracePeriod)
			return ctx.Err(), true
		}
	}
}
