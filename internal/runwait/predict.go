package runwait

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/listing"
	"github.com/databricks/databricks-sdk-go/service/jobs"
)

// Predictive waiting: the workspace knows how long earlier runs of the same
// work took. LookUp reads it (jobs runs/list), History.Predict turns it into
// an expected end, and Prediction.Interval polls sparsely while the end is
// far and every second around it. Without history the waiter keeps Adaptive.

// Like says which earlier runs are like the one waited for.
type Like struct {
	// JobID selects the runs of a saved job (started with run-now).
	JobID int64
	// RunName selects one-time runs (runs/submit) by name: the exact name,
	// or with NamePrefix the names that start with it (DatabricksTrain's
	// default name ends with the build number, which changes every build).
	RunName    string
	NamePrefix bool
	// Code, when set, also requires a one-time run to have the same tasks
	// running the same code: task key → TaskCode (see SubmitCode).
	Code map[string]string
}

func (l Like) String() string {
	switch {
	case l.JobID != 0:
		return fmt.Sprintf("job %d", l.JobID)
	case l.NamePrefix:
		return fmt.Sprintf("one-time runs named %q…", l.RunName)
	}
	return fmt.Sprintf("one-time runs named %q", l.RunName)
}

// History is how long the recent successful runs like this one took.
type History struct {
	Like Like
	// Durations of the successful runs found, newest first (start_time to
	// end_time, at most HistoryRuns of them).
	Durations []time.Duration
	// Err is why the lookup failed (then there is no prediction).
	Err error
}

// lookedUp reports whether h came from LookUp (rather than being left
// unset).
func (h History) lookedUp() bool {
	return h.Like.JobID != 0 || h.Like.RunName != "" || h.Like.Code != nil || h.Err != nil
}

// HistoryRuns is how many earlier successful runs LookUp keeps.
const HistoryRuns = 10

// Lookup bounds: runs/list returns at most 25 runs a page (ListRunsRequest
// in databricks-sdk-go v0.81.0 service/jobs/model.go: "greater than 0 and
// less than 25"; the Jobs API 2.2 reference accepts 25). A job's runs fit on
// one page; one-time runs of the whole workspace are read for at most
// submitPages pages, newest first.
const (
	listLimit   = 25
	submitPages = 4
)

// RunLister lists runs (*jobs.JobsAPI has it).
type RunLister interface {
	ListRuns(ctx context.Context, request jobs.ListRunsRequest) listing.Iterator[jobs.BaseRun]
}

// LookUp reads the durations of the recent successful runs like this one:
// the job's completed runs (runs/list job_id, completed_only), or the
// workspace's completed one-time runs (run_type SUBMIT_RUN) with the name
// and code of like. A failed lookup is reported in History.Err, not
// returned: the wait then goes on without a prediction.
func LookUp(ctx context.Context, runs RunLister, like Like) History {
	h := History{Like: like}
	req := jobs.ListRunsRequest{CompletedOnly: true, Limit: listLimit}
	maxRuns := listLimit
	if like.JobID != 0 {
		req.JobId = like.JobID
	} else {
		req.RunType = jobs.RunTypeSubmitRun
		req.ExpandTasks = like.Code != nil
		maxRuns = submitPages * listLimit
	}
	it := runs.ListRuns(ctx, req)
	// HasNext is also true when a page request failed; Next then returns
	// the error (listing.Iterator in databricks-sdk-go).
	for seen := 0; seen < maxRuns && len(h.Durations) < HistoryRuns && it.HasNext(ctx); seen++ {
		run, err := it.Next(ctx)
		if err != nil {
			h.Err = fmt.Errorf("listing the earlier runs of %s: %w", like, err)
			h.Durations = nil
			return h
		}
		if d, ok := like.duration(run); ok {
			h.Durations = append(h.Durations, d)
		}
	}
	return h
}

// duration is how long run took, if it is a successful run like l and was
// never repaired (a repaired run's end_time is that of its last repair).
func (l Like) duration(run jobs.BaseRun) (time.Duration, bool) {
	if run.State == nil || run.State.LifeCycleState != jobs.RunLifeCycleStateTerminated ||
		run.State.ResultState != jobs.RunResultStateSuccess || run.StartTime == 0 || run.EndTime <= run.StartTime {
		return 0, false
	}
	for _, r := range run.RepairHistory {
		if r.Type == jobs.RepairHistoryItemTypeRepair {
			return 0, false
		}
	}
	if l.JobID == 0 { // runs/list already kept the job's runs or the one-time runs
		if l.NamePrefix && !strings.HasPrefix(run.RunName, l.RunName) || !l.NamePrefix && run.RunName != l.RunName {
			return 0, false
		}
		if l.Code != nil && !maps.Equal(l.Code, runCode(run.Tasks)) {
			return 0, false
		}
	}
	return time.Duration(run.EndTime-run.StartTime) * time.Millisecond, true
}

// TaskCode names the code a task runs: the notebook path, the Python file,
// or the wheel's package and entry point ("" for other kinds of task).
func TaskCode(nb *jobs.NotebookTask, py *jobs.SparkPythonTask, whl *jobs.PythonWheelTask) string {
	switch {
	case nb != nil:
		return "notebook " + nb.NotebookPath
	case py != nil:
		return "python " + py.PythonFile
	case whl != nil:
		return "wheel " + whl.PackageName + ":" + whl.EntryPoint
	}
	return ""
}

// SubmitCode is Like.Code for a runs/submit request's tasks.
func SubmitCode(tasks []jobs.SubmitTask) map[string]string {
	code := make(map[string]string, len(tasks))
	for _, t := range tasks {
		code[t.TaskKey] = TaskCode(t.NotebookTask, t.SparkPythonTask, t.PythonWheelTask)
	}
	return code
}

func runCode(tasks []jobs.RunTask) map[string]string {
	code := make(map[string]string, len(tasks))
	for _, t := range tasks {
		code[t.TaskKey] = TaskCode(t.NotebookTask, t.SparkPythonTask, t.PythonWheelTask)
	}
	return code
}

// Prediction is when a run is expected to end, counted from its start, and
// the polling schedule that follows from it.
type Prediction struct {
	Runs                      int           // earlier runs it is made from
	Shortest, Median, Longest time.Duration // how long they took
	// From and To bound the dense window: the earlier durations widened by
	// a margin (a quarter of their spread, at least 2 % of the median and
	// at least 2 s) for a run a little faster or slower than all of them.
	From, To time.Duration
	// Dense is the interval inside the window: every second, or 60 polls
	// spread over a window wider than a minute, at most LongInterval.
	Dense time.Duration
}

// Schedule bounds of Prediction.Interval.
const (
	// MinDense is the densest polling, inside the expected window.
	MinDense = time.Second
	// MaxSparse is the sparsest polling, long before the expected end.
	MaxSparse = 30 * time.Second
	// firstInterval is the first pause (as Adaptive's): a run that fails at
	// once is noticed at once.
	firstInterval = 250 * time.Millisecond
	// approach: the interval outside the window is a quarter of the
	// distance to it (and of the run's age at the start), so a run ending x
	// outside the window is noticed within about x/4.
	approach   = 4
	windowPoll = 90
)

// Predict makes the prediction, false without history.
func (h History) Predict() (Prediction, bool) {
	if len(h.Durations) == 0 {
		return Prediction{}, false
	}
	s := slices.Clone(h.Durations)
	slices.Sort(s)
	p := Prediction{Runs: len(s), Shortest: s[0], Longest: s[len(s)-1], Median: s[len(s)/2]}
	if len(s)%2 == 0 {
		p.Median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	margin := max(2*time.Second, p.Median/50, (p.Longest-p.Shortest)/4)
	p.From = max(0, p.Shortest-margin)
	p.To = p.Longest + margin
	p.Dense = min(LongInterval, max(MinDense, (p.To-p.From)/windowPoll))
	return p, true
}

// Interval is the pause before the next poll of a run that is age old:
//
//	before the window  a quarter of the run's age and of the time left to
//	                   the window (250 ms at first, at most MaxSparse)
//	in the window      Dense (1 s for windows up to a minute)
//	after the window   a quarter of the time since the window ended, from
//	                   Dense up to LongInterval (Adaptive's long interval)
//
// A pause before the window never reaches past its start, so the first
// poll inside it comes at most Dense after the window opens.
func (p Prediction) Interval(age time.Duration) time.Duration {
	switch {
	case age < p.From:
		early := max(firstInterval, age/approach)
		near := max(p.Dense, (p.From-age)/approach)
		return min(early, near, MaxSparse)
	case age < p.To:
		return p.Dense
	default:
		return min(max(p.Dense, (age-p.To)/approach), LongInterval)
	}
}

// String is the log line for the wait: the prediction, or why there is
// none.
func (h History) String() string {
	p, ok := h.Predict()
	switch {
	case h.Err != nil:
		return fmt.Sprintf("No prediction of the run's end (%v): polling on the adaptive schedule.", h.Err)
	case !ok:
		return fmt.Sprintf("No earlier successful run of %s: polling on the adaptive schedule.", h.Like)
	}
	poll := fmt.Sprintf("polling every %s from %s to %s into the run, sparsely before.", p.Dense, p.From.Round(time.Second), p.To.Round(time.Second))
	if p.Runs == 1 {
		return fmt.Sprintf("The one earlier successful run of %s took %s: %s", h.Like, p.Median.Round(time.Second), poll)
	}
	took := p.Shortest.Round(time.Second).String()
	if p.Longest.Round(time.Second) != p.Shortest.Round(time.Second) {
		took += "–" + p.Longest.Round(time.Second).String()
	}
	return fmt.Sprintf("Earlier runs took %s (%d successful runs of %s, median %s): %s", took, p.Runs, h.Like, p.Median.Round(time.Second), poll)
}
