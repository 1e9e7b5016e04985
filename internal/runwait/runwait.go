// Package runwait waits for a Databricks job run (Jobs API 2.2) to end, the
// way a pipeline step should: it polls runs/get on a schedule predicted from
// how long earlier runs of the same work took (sparse while the end is far,
// every second around it; predict.go), or without such runs on an adaptive
// schedule (fast while a run is young, at most seven requests a minute once it
// is long), reports every state change of the run and of each of its tasks,
// cancels the remote run when the wait times out or the pipeline is
// cancelled, and rides out transient HTTP failures.
//
// It replaces the SDK's own waiter (jobs.WaitGetRunJobTerminatedOrSkipped)
// because that one polls on a fixed schedule, has a 20-minute default timeout,
// treats a cancelled context like a timeout and leaves the remote run running
// (databricks-sdk-go v0.81.0 service/jobs/api.go; see docs PLATFORM-FACTS.md).
//
// Both DatabricksTrain and BatchScore use it:
//
//	api := jobs.NewJobs(c)
//	w := runwait.Waiter{Runs: api, Timeout: 2 * time.Hour, OnChange: report, Log: log,
//		History: runwait.LookUp(ctx, api, runwait.Like{JobID: jobID})}
//	run, err := w.Wait(ctx, runID)
//	// err: *runwait.TimeoutError, a context error (remote run cancelled), or a
//	// failure to read the run; run is the last state seen (nil if none).
//	// A run that ended is returned with err == nil: check runwait.Succeeded(run).
package runwait

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/converge"
)

// Runs is the part of the Jobs API the waiter uses; *jobs.JobsAPI has it.
type Runs interface {
	GetRun(ctx context.Context, request jobs.GetRunRequest) (*jobs.Run, error)
	CancelRunByRunId(ctx context.Context, runID int64) error
}

// Waiter waits for one run. The zero value of every field but Runs is usable.
type Waiter struct {
	Runs Runs
	// Clock is the waiter's time source (default converge.RealClock). Tests
	// and benchmarks use a simulated clock that advances a simulated
	// workspace instead of sleeping.
	Clock converge.Clock
	// Interval is the polling schedule: the time from one runs/get to the
	// next, given the run's age (see Wait). Defaults to the prediction from
	// History, or Adaptive without one.
	Interval func(age time.Duration) time.Duration
	// History is how long earlier runs like this one took (LookUp). With
	// durations in it the waiter polls on their Prediction: sparsely while
	// the end is far, every second around it. The prediction, or why there
	// is none, goes to Log when the wait starts.
	History History
	// Timeout bounds the wait (0: no bound). On expiry the remote run is
	// cancelled and Wait returns a *TimeoutError.
	Timeout time.Duration
	// OnChange is called for the first state seen and for every change of
	// the run's or a task's state, in order.
	OnChange func(Change)
	// MaxErrors is how many runs/get failures in a row that may be transient
	// (HTTP 5xx, a dropped connection) are tolerated (default 5). They come
	// after the retrying transport (httpclient.Retry, wired by auth) has
	// already sent the runs/get again: a GET is repeated after 429, 503,
	// 500, 502, 504 and a dropped connection. databricks-sdk-go's own retries
	// are turned off (auth sets its retry timeout to 1 s), so nothing else
	// repeats it.
	MaxErrors int
	// CancelTimeout bounds the runs/cancel request made after a timeout
	// (default 30 s). After a pipeline cancellation the request also ends
	// agent.GracePeriod after the first signal, and is not retried
	// (agent.Cleanup).
	CancelTimeout time.Duration
	// Log, when set, gets a line before the runs/cancel request.
	Log *agent.Log
	// Watch only: on timeout or cancellation the run is left running (a run
	// the step watches but did not start, such as a deployment job's).
	WatchOnly bool
}

// State is a life-cycle state with its result (empty until the run ends).
type State struct {
	Life    jobs.RunLifeCycleState
	Result  jobs.RunResultState
	Message string
}

func (s State) String() string {
	if s.Result != "" {
		return string(s.Life) + "/" + string(s.Result)
	}
	return string(s.Life)
}

// Change is one observed state change.
type Change struct {
	At      time.Time // waiter clock
	Elapsed time.Duration
	Run     *jobs.Run
	// Task is the task whose state changed, nil for the run itself.
	Task     *jobs.RunTask
	From, To State // From is zero for the first observation
}

// Adaptive is the default polling schedule. Detection lag is at most one
// interval, and each poll is one request:
//
//	first 2 s   every 250 ms  (instant runs and reruns end fast)
//	to 5 s      every 500 ms
//	to 1 min    every 1 s     (runs under a minute: detected within ~1 s)
//	1 to 2 min  1 s rising linearly to 9 s
//	after 2 min every 9 s     (6.7 requests a minute, detection within 9 s)
//
// The long interval is the largest that keeps a 10-minute run's requests
// under half a fixed 2 s poll's (140 against 300) while taking its median
// detection lag (half the interval, 4.5 s) under five times the 2 s poll's
// (about 1 s); 10 s sat on that edge (docs/performance.md, "wait").
func Adaptive(elapsed time.Duration) time.Duration {
	switch {
	case elapsed < 2*time.Second:
		return 250 * time.Millisecond
	case elapsed < 5*time.Second:
		return 500 * time.Millisecond
	case elapsed < time.Minute:
		return time.Second
	case elapsed < 2*time.Minute:
		frac := float64(elapsed-time.Minute) / float64(time.Minute)
		return time.Second + time.Duration(frac*float64(LongInterval-time.Second))
	default:
		return LongInterval
	}
}

// LongInterval is Adaptive's interval for long runs.
const LongInterval = 9 * time.Second

// TimeoutError is returned when the wait outlasted Waiter.Timeout.
type TimeoutError struct {
	After     time.Duration
	RunID     int64
	RunURL    string
	Cancelled bool  // runs/cancel was accepted
	CancelErr error // why it was not
}

func (e *TimeoutError) Error() string {
	what := "the run was cancelled"
	switch {
	case errors.Is(e.CancelErr, errLeftRunning):
		what = "it is left running"
	case !e.Cancelled:
		what = fmt.Sprintf("cancelling the run failed (%v); cancel it by hand", e.CancelErr)
	}
	return fmt.Sprintf("Databricks run %d did not finish within %s; %s: %s", e.RunID, e.After, what, e.RunURL)
}

// CanceledError is returned when ctx was cancelled during the wait (the
// pipeline was cancelled). It wraps the context's error.
type CanceledError struct {
	RunID     int64
	RunURL    string
	Cancelled bool
	CancelErr error
	Cause     error
}

func (e *CanceledError) Error() string {
	if e.Cancelled {
		return fmt.Sprintf("stopped waiting (%v); Databricks run %d was cancelled: %s", e.Cause, e.RunID, e.RunURL)
	}
	if errors.Is(e.CancelErr, errLeftRunning) {
		return fmt.Sprintf("stopped waiting (%v); Databricks run %d is left running: %s", e.Cause, e.RunID, e.RunURL)
	}
	return fmt.Sprintf("stopped waiting (%v); cancelling Databricks run %d failed (%v), cancel it by hand: %s", e.Cause, e.RunID, e.CancelErr, e.RunURL)
}

func (e *CanceledError) Unwrap() error { return e.Cause }

// Wait polls the run until it ends, the timeout expires or ctx is cancelled.
//
// Requests are due on the schedule, which gets the run's age at each
// request: the time since the wait began, or since the run's start_time
// when the run is older than takenOver (a run taken over from an earlier
// try of the step). A fresh run's age is not read from start_time, so a
// skew between the agent's and the workspace's clocks does not move the
// prediction.
func (w Waiter) Wait(ctx context.Context, runID int64) (*jobs.Run, error) {
	clock := converge.Or(w.Clock)
	interval := w.schedule()
	maxErrors := w.MaxErrors
	if maxErrors == 0 {
		maxErrors = 5
	}
	start := clock.Now()
	var (
		since  = start // the run's age counts from here
		due    = start // when the next request is due on the schedule
		last   *jobs.Run
		states = map[int64]State{} // task run id → state; runID → run state
		errs   int
	)
	for {
		run, err := w.Runs.GetRun(ctx, jobs.GetRunRequest{RunId: runID})
		now := clock.Now()
		elapsed := now.Sub(start)
		switch {
		case ctx.Err() != nil:
			return last, w.cancel(ctx, runID, last)
		case err != nil && transient(err) && errs+1 < maxErrors:
			errs++
		case err != nil:
			return last, fmt.Errorf("reading the state of Databricks run %d: %w", runID, err)
		default:
			errs = 0
			if last == nil && run.StartTime != 0 {
				if began := time.UnixMilli(run.StartTime); now.Sub(began) > takenOver {
					since = began
				}
			}
			last = run
			w.report(now, elapsed, run, states)
			if Ended(run) {
				return run, nil
			}
		}
		// The schedule says when requests are due, so neither the time a
		// request takes nor a late wake-up pushes the later ones back. The
		// pause is at least half the interval: after a request the
		// transport held back (a rate limit's Retry-After), the next one is
		// not sent at once to catch up.
		every := interval(due.Sub(since))
		due = due.Add(every)
		if earliest := now.Add(every / 2); due.Before(earliest) {
			due = earliest
		}
		pause := due.Sub(now)
		if w.Timeout > 0 {
			left := w.Timeout - elapsed
			if left <= 0 {
				return last, w.timeout(ctx, runID, last)
			}
			pause = min(pause, left)
		}
		if err := clock.Sleep(ctx, pause); err != nil {
			return last, w.cancel(ctx, runID, last)
		}
	}
}

// takenOver is the age from which a run found at the first poll counts as
// started before the wait (by an earlier try of the step) rather than just
// now: well above any clock skew between the agent and the workspace.
const takenOver = time.Minute

// schedule is the polling schedule: Interval, History's prediction, or
// Adaptive. It logs the prediction, or why there is none, when History was
// looked up.
func (w Waiter) schedule() func(time.Duration) time.Duration {
	if w.Interval != nil {
		return w.Interval
	}
	if w.Log != nil && w.History.lookedUp() {
		w.Log.Info("%s", w.History)
	}
	if p, ok := w.History.Predict(); ok {
		return p.Interval
	}
	return Adaptive
}

func (w Waiter) report(now time.Time, elapsed time.Duration, run *jobs.Run, seen map[int64]State) {
	emit := func(id int64, task *jobs.RunTask, to State) {
		from, ok := seen[id]
		if ok && from == to {
			return
		}
		seen[id] = to
		if w.OnChange != nil {
			w.OnChange(Change{At: now, Elapsed: elapsed, Run: run, Task: task, From: from, To: to})
		}
	}
	emit(run.RunId, nil, StateOf(run.State))
	for i := range run.Tasks {
		t := &run.Tasks[i]
		emit(t.RunId, t, StateOf(t.State))
	}
}

// StateOf reads a RunState (nil-safe).
func StateOf(s *jobs.RunState) State {
	if s == nil {
		return State{}
	}
	return State{Life: s.LifeCycleState, Result: s.ResultState, Message: s.StateMessage}
}

// Ended reports whether a run reached a final life-cycle state. Like the
// SDK's waiter it does not look at the result: check Succeeded.
func Ended(run *jobs.Run) bool {
	if run == nil || run.State == nil {
		return false
	}
	return Final(run.State.LifeCycleState)
}

// Final reports whether a life-cycle state is final.
func Final(s jobs.RunLifeCycleState) bool {
	switch s {
	case jobs.RunLifeCycleStateTerminated, jobs.RunLifeCycleStateSkipped, jobs.RunLifeCycleStateInternalError:
		return true
	}
	return false
}

// Succeeded reports whether an ended run succeeded.
func Succeeded(run *jobs.Run) bool {
	return Ended(run) && run.State.LifeCycleState == jobs.RunLifeCycleStateTerminated &&
		run.State.ResultState == jobs.RunResultStateSuccess
}

// cancel cancels the remote run after ctx was cancelled, with a cleanup
// context (agent.Cleanup): the pipeline's is already done.
func (w Waiter) cancel(ctx context.Context, runID int64, last *jobs.Run) error {
	err := w.cancelRemote(ctx, runID)
	return &CanceledError{RunID: runID, RunURL: pageURL(last), Cancelled: err == nil, CancelErr: err, Cause: ctx.Err()}
}

func (w Waiter) timeout(ctx context.Context, runID int64, last *jobs.Run) error {
	err := w.cancelRemote(ctx, runID)
	return &TimeoutError{After: w.Timeout, RunID: runID, RunURL: pageURL(last), Cancelled: err == nil, CancelErr: err}
}

func (w Waiter) cancelRemote(ctx context.Context, runID int64) error {
	if w.WatchOnly {
		return errLeftRunning
	}
	d := w.CancelTimeout
	if d == 0 {
		d = 30 * time.Second
	}
	cctx, stop := agent.Cleanup(ctx, w.Log, d, fmt.Sprintf("cancelling Databricks run %d", runID))
	defer stop()
	if err := w.Runs.CancelRunByRunId(cctx, runID); err != nil {
		return fmt.Errorf("cancelling Databricks run %d: %w", runID, err)
	}
	return nil
}

// errLeftRunning is why a watch-only waiter did not cancel the run.
var errLeftRunning = errors.New("the run was left running: this step only watches it")

func pageURL(run *jobs.Run) string {
	if run == nil {
		return ""
	}
	return run.RunPageUrl
}

// transient reports whether a failed runs/get is worth another try: a 5xx
// answer or a network error that outlasted the transport's retries (a run
// that is still going is read again on the next poll). 4xx answers, such
// as a run that does not exist or a permission error, are final.
func transient(err error) bool {
	var apiErr *apierr.APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode >= http.StatusInternalServerError
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	// The SDK reports a dropped connection as a plain wrapped error (io.EOF,
	// "connection reset"), without an APIError.
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}
