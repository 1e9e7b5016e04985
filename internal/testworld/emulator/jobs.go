package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
)

// Jobs API 2.2 (https://docs.databricks.com/api/workspace/jobs).
//
// A run is a set of task runs. Tasks without dependencies start when the run
// is created; a task starts when all tasks it depends on succeeded and ends
// UPSTREAM_FAILED otherwise. Each task run is PENDING for
// Options.RunPending, RUNNING for its Behaviour's Duration, TERMINATING for
// Options.RunTerminating, then TERMINATED (or INTERNAL_ERROR / SKIPPED). A
// task waiting for upstream tasks is BLOCKED. The parent run's state is
// derived from its tasks. All of it is computed from the workspace clock when
// a request arrives.

type jobsState struct {
	jobs     map[int64]*jobs.Job
	runs     map[int64]*jobRun
	taskRuns map[int64]*taskRun
	idem     map[string]int64 // idempotency_token → run id
}

func newJobsState() jobsState {
	return jobsState{jobs: map[int64]*jobs.Job{}, runs: map[int64]*jobRun{}, taskRuns: map[int64]*taskRun{}, idem: map[string]int64{}}
}

type jobRun struct {
	id          int64
	jobID       int64
	name        string
	runType     jobs.RunType
	numberInJob int64
	created     time.Time
	timeout     time.Duration
	tasks       []*taskRun
	params      map[string]string // notebook_params / job_parameters
	jobParams   []jobs.JobParameter
	overriding  *jobs.RunParameters
	cancelledAt time.Time
	repairs     []runRepair // runs/repair calls, oldest first (deployjobs.go)
}

type taskRun struct {
	id     int64
	parent *jobRun
	spec   jobs.RunTask // static fields of the task (key, notebook_task, clusters, depends_on)
	beh    Behaviour
	known  bool // a behaviour was scripted for it

	scheduled bool
	notBefore time.Time // a repaired task starts no earlier than its repair
	pendingAt time.Time // enters PENDING (after upstream tasks)
	runningAt time.Time
	doneAt    time.Time // leaves RUNNING
	endAt     time.Time // TERMINATED

	finished bool // outcome decided (action ran or task cancelled/skipped)
	life     jobs.RunLifeCycleState
	result   jobs.RunResultState
	message  string
	output   string
	trunc    bool
	err      string
	trace    string
}

func (ws *Workspace) jobsRoutes() {
	handle(ws, "POST /api/2.2/jobs/create", func(r *http.Request, req *jobs.CreateJob) (any, *apiError) {
		var settings jobs.JobSettings
		if err := convert(req, &settings); err != nil {
			return nil, invalidParam("%v", err)
		}
		if aerr := validateSettings(&settings); aerr != nil {
			return nil, aerr
		}
		id := ws.ids.take()
		ws.jobs.jobs[id] = &jobs.Job{JobId: id, CreatedTime: millis(ws.clock.Now()), CreatorUserName: ws.UserName, RunAsUserName: ws.UserName, Settings: &settings}
		return &jobs.CreateResponse{JobId: id}, nil
	})
	handle(ws, "POST /api/2.2/jobs/reset", func(r *http.Request, req *jobs.ResetJob) (any, *apiError) {
		job, aerr := ws.job(req.JobId)
		if aerr != nil {
			return nil, aerr
		}
		settings := req.NewSettings
		if aerr := validateSettings(&settings); aerr != nil {
			return nil, aerr
		}
		job.Settings = &settings
		return nil, nil
	})
	handle(ws, "POST /api/2.2/jobs/update", ws.updateJob)
	handle(ws, "GET /api/2.2/jobs/get", func(r *http.Request, req *jobs.GetJobRequest) (any, *apiError) {
		job, aerr := ws.job(req.JobId)
		if aerr != nil {
			return nil, aerr
		}
		var out jobs.Job
		_ = convert(job, &out)
		return &out, nil
	})
	handle(ws, "GET /api/2.2/jobs/list", ws.listJobs)
	handle(ws, "POST /api/2.2/jobs/delete", func(r *http.Request, req *jobs.DeleteJob) (any, *apiError) {
		if _, aerr := ws.job(req.JobId); aerr != nil {
			return nil, aerr
		}
		delete(ws.jobs.jobs, req.JobId)
		return nil, nil
	})
	handle(ws, "POST /api/2.2/jobs/run-now", ws.runNow)
	handle(ws, "POST /api/2.2/jobs/runs/submit", ws.submitRun)
	handle(ws, "GET /api/2.2/jobs/runs/get", func(r *http.Request, req *jobs.GetRunRequest) (any, *apiError) {
		run, ok := ws.jobs.runs[req.RunId]
		if !ok {
			if tr, isTask := ws.jobs.taskRuns[req.RunId]; isTask {
				return ws.taskRunAsRun(tr, ws.clock.Now()), nil
			}
			return nil, invalidParam("Run %d does not exist.", req.RunId)
		}
		return ws.runView(run, ws.clock.Now()), nil
	})
	handle(ws, "GET /api/2.2/jobs/runs/get-output", ws.runOutput)
	handle(ws, "POST /api/2.2/jobs/runs/cancel", func(r *http.Request, req *jobs.CancelRun) (any, *apiError) {
		run, ok := ws.jobs.runs[req.RunId]
		if !ok {
			return nil, invalidParam("Run %d does not exist.", req.RunId)
		}
		ws.cancelRun(run, ws.clock.Now())
		return nil, nil
	})
	handle(ws, "GET /api/2.2/jobs/runs/list", ws.listRuns)
}

// convert copies between SDK types with the same JSON shape.
func convert(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}

func validateSettings(s *jobs.JobSettings) *apiError {
	keys := map[string]bool{}
	for _, t := range s.Tasks {
		if t.TaskKey == "" {
			return invalidParam("Task key must be specified for every task.")
		}
		if keys[t.TaskKey] {
			return invalidParam("Task key %s is not unique.", t.TaskKey)
		}
		keys[t.TaskKey] = true
	}
	for _, t := range s.Tasks {
		for _, d := range t.DependsOn {
			if !keys[d.TaskKey] {
				return invalidParam("Task %s depends on %s which is not defined in the job.", t.TaskKey, d.TaskKey)
			}
		}
		if t.NotebookTask != nil && t.NotebookTask.NotebookPath == "" {
			return invalidParam("Missing required field: notebook_task.notebook_path in task %s", t.TaskKey)
		}
	}
	if s.MaxConcurrentRuns < 0 {
		return invalidParam("max_concurrent_runs must be non-negative")
	}
	return nil
}

func (ws *Workspace) job(id int64) (*jobs.Job, *apiError) {
	job, ok := ws.jobs.jobs[id]
	if !ok {
		// Databricks answers 400 INVALID_PARAMETER_VALUE "Job N does not
		// exist."; the SDK maps it to apierr.ErrResourceDoesNotExist
		// (apierr/error_overrides.go).
		return nil, invalidParam("Job %d does not exist.", id)
	}
	return job, nil
}

// updateJob merges new_settings into the job: top-level fields are
// replaced, tasks and job_clusters are merged by key, fields_to_remove drops
// top-level fields or "tasks/<key>" / "job_clusters/<key>".
func (ws *Workspace) updateJob(r *http.Request, req *jobs.UpdateJob) (any, *apiError) {
	job, aerr := ws.job(req.JobId)
	if aerr != nil {
		return nil, aerr
	}
	var cur, upd map[string]json.RawMessage
	_ = convert(job.Settings, &cur)
	if req.NewSettings != nil {
		_ = convert(req.NewSettings, &upd)
	}
	if cur == nil {
		cur = map[string]json.RawMessage{}
	}
	for k, v := range upd {
		if k == "tasks" || k == "job_clusters" {
			cur[k] = mergeByKey(cur[k], v, map[string]string{"tasks": "task_key", "job_clusters": "job_cluster_key"}[k])
			continue
		}
		cur[k] = v
	}
	for _, f := range req.FieldsToRemove {
		list, key, nested := strings.Cut(f, "/")
		if !nested {
			delete(cur, f)
			continue
		}
		cur[list] = removeByKey(cur[list], key, map[string]string{"tasks": "task_key", "job_clusters": "job_cluster_key"}[list])
	}
	var settings jobs.JobSettings
	if err := convert(cur, &settings); err != nil {
		return nil, invalidParam("%v", err)
	}
	if aerr := validateSettings(&settings); aerr != nil {
		return nil, aerr
	}
	job.Settings = &settings
	return nil, nil
}

func mergeByKey(cur, upd json.RawMessage, keyField string) json.RawMessage {
	var a, b []map[string]any
	_ = json.Unmarshal(cur, &a)
	_ = json.Unmarshal(upd, &b)
	for _, nb := range b {
		replaced := false
		for i, na := range a {
			if na[keyField] == nb[keyField] {
				a[i] = nb
				replaced = true
			}
		}
		if !replaced {
			a = append(a, nb)
		}
	}
	out, _ := json.Marshal(a)
	return out
}

func removeByKey(cur json.RawMessage, key, keyField string) json.RawMessage {
	var a []map[string]any
	_ = json.Unmarshal(cur, &a)
	var kept []map[string]any
	for _, n := range a {
		if n[keyField] != key {
			kept = append(kept, n)
		}
	}
	out, _ := json.Marshal(kept)
	return out
}

// listJobs pages through jobs, most recently created first, with the exact
// (case-insensitive) name filter of the Jobs API. Page tokens are opaque
// offsets.
func (ws *Workspace) listJobs(r *http.Request, req *jobs.ListJobsRequest) (any, *apiError) {
	var ids []int64
	for id, j := range ws.jobs.jobs {
		if req.Name == "" || strings.EqualFold(j.Settings.Name, req.Name) {
			ids = append(ids, id)
		}
	}
	pg, aerr := pageIDs(ids, req.PageToken, req.Offset, req.Limit, 100, func(id int64) jobs.BaseJob {
		j := ws.jobs.jobs[id]
		base := jobs.BaseJob{JobId: id, CreatedTime: j.CreatedTime, CreatorUserName: j.CreatorUserName}
		var s jobs.JobSettings
		_ = convert(j.Settings, &s)
		if !req.ExpandTasks {
			s.Tasks, s.JobClusters = nil, nil
		}
		base.Settings = &s
		return base
	})
	if aerr != nil {
		return nil, aerr
	}
	return &jobs.ListJobsResponse{Jobs: pg.items, HasMore: pg.hasMore, NextPageToken: pg.next, PrevPageToken: pg.prev}, nil
}

// idPage is one page of a Jobs API list.
type idPage[T any] struct {
	items      []T
	hasMore    bool
	next, prev string
}

// pageIDs pages ids the way the Jobs API list routes do: newest (highest
// id) first, limit items a page (0 means 20; outside 1..maxLimit is
// refused), page tokens are opaque offsets, and the older offset parameter
// counts when there is no token. item turns an id of the page into what the
// list shows.
func pageIDs[T any](ids []int64, token string, offset, limit, maxLimit int, item func(id int64) T) (idPage[T], *apiError) {
	if limit == 0 {
		limit = 20
	}
	if limit < 0 || limit > maxLimit {
		return idPage[T]{}, invalidParam("The limit must be between 1 and %d, got %d", maxLimit, limit)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] > ids[j] })
	start, aerr := pageStart(token, offset, len(ids))
	if aerr != nil {
		return idPage[T]{}, aerr
	}
	end := min(start+limit, len(ids))
	var pg idPage[T]
	for _, id := range ids[start:end] {
		pg.items = append(pg.items, item(id))
	}
	if end < len(ids) {
		pg.hasMore, pg.next = true, pageToken(end)
	}
	if start > 0 {
		pg.prev = pageToken(max(0, start-limit))
	}
	return pg, nil
}

func pageToken(offset int) string { return "o" + strconv.Itoa(offset) }

func pageStart(token string, offset, n int) (int, *apiError) {
	if token == "" {
		return min(offset, n), nil
	}
	v, err := strconv.Atoi(strings.TrimPrefix(token, "o"))
	if err != nil || !strings.HasPrefix(token, "o") || v < 0 || v > n {
		return 0, invalidParam("Invalid page token %q", token)
	}
	return v, nil
}

// runNow honours idempotency_token: a token already used returns the run it
// started instead of starting a second one (Jobs API run-now and submit).
func (ws *Workspace) runNow(r *http.Request, req *jobs.RunNow) (any, *apiError) {
	if req.IdempotencyToken != "" {
		if id, ok := ws.jobs.idem[req.IdempotencyToken]; ok {
			run := ws.jobs.runs[id]
			return &jobs.RunNowResponse{RunId: id, NumberInJob: run.numberInJob}, nil
		}
	}
	job, aerr := ws.job(req.JobId)
	if aerr != nil {
		return nil, aerr
	}
	s := job.Settings
	params := map[string]string{}
	var jobParams []jobs.JobParameter
	for _, p := range s.Parameters {
		params[p.Name] = p.Default
	}
	for k, v := range req.NotebookParams {
		params[k] = v
	}
	for k, v := range req.JobParameters {
		params[k] = v
	}
	for _, p := range s.Parameters {
		jobParams = append(jobParams, jobs.JobParameter{Name: p.Name, Default: p.Default, Value: params[p.Name]})
	}
	var tasks []jobs.RunTask
	for _, t := range s.Tasks {
		if len(req.Only) > 0 && !contains(req.Only, t.TaskKey) {
			continue
		}
		var rt jobs.RunTask
		if err := convert(t, &rt); err != nil {
			return nil, invalidParam("%v", err)
		}
		rt.DependsOn = filterDeps(rt.DependsOn, req.Only)
		tasks = append(tasks, rt)
	}
	if len(tasks) == 0 {
		return nil, invalidParam("Job %d has no tasks to run.", req.JobId)
	}
	run := ws.startRun(job.JobId, s.Name, jobs.RunTypeJobRun, tasks, params, time.Duration(s.TimeoutSeconds)*time.Second)
	run.jobParams = jobParams
	if len(req.NotebookParams) > 0 {
		run.overriding = &jobs.RunParameters{NotebookParams: req.NotebookParams}
	}
	if req.IdempotencyToken != "" {
		ws.jobs.idem[req.IdempotencyToken] = run.id
	}
	return &jobs.RunNowResponse{RunId: run.id, NumberInJob: run.numberInJob}, nil
}

func filterDeps(deps []jobs.TaskDependency, only []string) []jobs.TaskDependency {
	if len(only) == 0 {
		return deps
	}
	var out []jobs.TaskDependency
	for _, d := range deps {
		if contains(only, d.TaskKey) {
			out = append(out, d)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (ws *Workspace) submitRun(r *http.Request, req *jobs.SubmitRun) (any, *apiError) {
	if req.IdempotencyToken != "" {
		if id, ok := ws.jobs.idem[req.IdempotencyToken]; ok {
			return &jobs.SubmitRunResponse{RunId: id}, nil
		}
	}
	if len(req.Tasks) == 0 {
		return nil, invalidParam("At least one task is required.")
	}
	var settings jobs.JobSettings
	var tasks []jobs.RunTask
	for _, t := range req.Tasks {
		var task jobs.Task
		_ = convert(t, &task)
		settings.Tasks = append(settings.Tasks, task)
		var rt jobs.RunTask
		if err := convert(t, &rt); err != nil {
			return nil, invalidParam("%v", err)
		}
		tasks = append(tasks, rt)
	}
	if aerr := validateSettings(&settings); aerr != nil {
		return nil, aerr
	}
	// A one-time run still belongs to a (hidden) job id in Databricks.
	jobID := ws.ids.take()
	run := ws.startRun(jobID, req.RunName, jobs.RunTypeSubmitRun, tasks, map[string]string{}, time.Duration(req.TimeoutSeconds)*time.Second)
	if req.IdempotencyToken != "" {
		ws.jobs.idem[req.IdempotencyToken] = run.id
	}
	return &jobs.SubmitRunResponse{RunId: run.id}, nil
}

func (ws *Workspace) startRun(jobID int64, name string, typ jobs.RunType, tasks []jobs.RunTask, params map[string]string, timeout time.Duration) *jobRun {
	var n int64 = 1
	for _, r := range ws.jobs.runs {
		if r.jobID == jobID {
			n++
		}
	}
	run := &jobRun{id: ws.ids.take(), jobID: jobID, name: name, runType: typ, numberInJob: n, created: ws.clock.Now(), params: params, timeout: timeout}
	if run.name == "" {
		run.name = "Untitled"
	}
	for _, spec := range tasks {
		tr := &taskRun{id: ws.ids.take(), parent: run, spec: spec}
		nb := ""
		if spec.NotebookTask != nil {
			nb = spec.NotebookTask.NotebookPath
		}
		tr.beh, tr.known = ws.behaviours.lookup(spec.TaskKey, nb)
		run.tasks = append(run.tasks, tr)
		ws.jobs.taskRuns[tr.id] = tr
	}
	ws.jobs.runs[run.id] = run
	ws.advanceRuns(ws.clock.Now())
	return run
}

// advanceRuns moves every run's tasks through their life cycle up to now,
// running scripted actions at the moment a task stops RUNNING.
func (ws *Workspace) advanceRuns(now time.Time) {
	ids := make([]int64, 0, len(ws.jobs.runs))
	for id := range ws.jobs.runs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		run := ws.jobs.runs[id]
		for progress := true; progress; {
			progress = false
			for _, t := range run.tasks {
				if ws.stepTask(t, now) {
					progress = true
				}
			}
		}
	}
}

// stepTask advances one task run; it reports whether anything changed.
func (ws *Workspace) stepTask(t *taskRun, now time.Time) bool {
	run := t.parent
	if t.finished {
		return false
	}
	if !t.scheduled {
		start := run.created
		if t.notBefore.After(start) {
			start = t.notBefore
		}
		for _, d := range t.spec.DependsOn {
			up := run.task(d.TaskKey)
			if up == nil {
				continue
			}
			if !up.finished || now.Before(up.endAt) {
				return false // BLOCKED
			}
			if up.result != jobs.RunResultStateSuccess {
				t.scheduled, t.finished = true, true
				t.pendingAt, t.runningAt, t.doneAt, t.endAt = up.endAt, up.endAt, up.endAt, up.endAt
				t.life, t.result = jobs.RunLifeCycleStateTerminated, jobs.RunResultStateUpstreamFailed
				t.message = "Upstream task failed."
				return true
			}
			if up.endAt.After(start) {
				start = up.endAt
			}
		}
		if !run.cancelledAt.IsZero() && !run.cancelledAt.After(start) {
			t.scheduled, t.finished = true, true
			t.pendingAt, t.runningAt, t.doneAt, t.endAt = run.cancelledAt, run.cancelledAt, run.cancelledAt, run.cancelledAt
			t.life, t.result, t.message = jobs.RunLifeCycleStateTerminated, jobs.RunResultStateCanceled, "Run cancelled."
			return true
		}
		d := t.beh.Duration
		if d == 0 {
			d = ws.opts.RunDuration
		}
		t.scheduled = true
		t.pendingAt = start
		t.runningAt = start.Add(ws.opts.RunPending)
		if t.beh.Outcome == Skipped {
			t.runningAt, d = start, 0
		}
		t.doneAt = t.runningAt.Add(d)
		t.endAt = t.doneAt.Add(ws.opts.RunTerminating)
		if timeout := t.timeout(); timeout > 0 && d > timeout && t.beh.Outcome != Skipped {
			t.doneAt = t.runningAt.Add(timeout)
			t.endAt = t.doneAt.Add(ws.opts.RunTerminating)
			t.beh.Outcome = TimedOut
			t.beh.Train, t.beh.Score, t.beh.Action = nil, nil, nil
		}
		return true
	}
	if now.Before(t.doneAt) {
		return false
	}
	ws.finishTask(t)
	return true
}

func (t *taskRun) timeout() time.Duration {
	if t.spec.TimeoutSeconds > 0 {
		return time.Duration(t.spec.TimeoutSeconds) * time.Second
	}
	return t.parent.timeout
}

func (r *jobRun) task(key string) *taskRun {
	for _, t := range r.tasks {
		if t.spec.TaskKey == key {
			return t
		}
	}
	return nil
}

// finishTask decides the outcome of a task that stopped running: scripted
// actions run now (their error fails the task).
func (ws *Workspace) finishTask(t *taskRun) {
	t.finished = true
	b := t.beh
	t.output, t.trunc = b.NotebookOutput, b.Truncated
	nb := ""
	if t.spec.NotebookTask != nil {
		nb = t.spec.NotebookTask.NotebookPath
	}
	outcome := b.Outcome
	if outcome == "" {
		outcome = Success
	}
	if nb != "" && !t.known && t.spec.NotebookTask.Source != jobs.SourceGit {
		if o, ok := ws.notebooks.objects[nb]; !ok || o.info.ObjectType != "NOTEBOOK" {
			outcome = Failed
			b.Error = fmt.Sprintf("Unable to access the notebook \"%s\". Either it does not exist, or the identity used to run this job, %s, lacks the required permissions.", nb, ws.UserName)
		}
	}
	if outcome == Success {
		if err := ws.runActions(t, nb); err != nil {
			outcome = Failed
			b.Error = err.Error()
			b.ErrorTrace = "Traceback (most recent call last):\n  File \"" + nb + "\", line 1, in <module>\n" + err.Error()
		}
	}
	if len(t.output) > maxNotebookOutput {
		t.output, t.trunc = t.output[:maxNotebookOutput], true
	}
	t.life = jobs.RunLifeCycleStateTerminated
	switch outcome {
	case Success:
		t.result = jobs.RunResultStateSuccess
	case Failed:
		t.result = jobs.RunResultStateFailed
		t.err, t.trace = b.Error, b.ErrorTrace
		if t.err == "" {
			t.err = "Exception: notebook failed (scripted by the emulator)"
		}
		t.message = "Workload failed, see run output for details"
	case TimedOut:
		t.result = jobs.RunResultStateTimedout
		t.message = fmt.Sprintf("Run timed out after %s.", t.doneAt.Sub(t.runningAt))
	case Canceled:
		t.result = jobs.RunResultStateCanceled
		t.message = "Run cancelled."
	case InternalError:
		t.life, t.result = jobs.RunLifeCycleStateInternalError, jobs.RunResultStateFailed
		t.message = "An internal error occurred in the Jobs service. Please retry."
	case Skipped:
		t.life, t.result = jobs.RunLifeCycleStateSkipped, ""
		t.message = "This run was skipped."
		t.endAt = t.doneAt
	}
	if b.StateMessage != "" {
		t.message = b.StateMessage
	}
}

func (ws *Workspace) runActions(t *taskRun, nb string) error {
	b := t.beh
	if b.Train == nil && b.Score == nil && b.Action == nil {
		return nil
	}
	params := map[string]string{}
	if t.spec.NotebookTask != nil {
		for k, v := range t.spec.NotebookTask.BaseParameters {
			params[k] = v
		}
	}
	for k, v := range t.parent.params {
		params[k] = v
	}
	exit := t.output
	tc := &TaskContext{JobID: t.parent.jobID, RunID: t.parent.id, TaskRunID: t.id, TaskKey: t.spec.TaskKey, NotebookPath: nb, Params: params, Now: t.doneAt, ws: ws, exitValue: &exit}
	if b.Train != nil {
		id, err := tc.Train(*b.Train)
		if err != nil {
			return err
		}
		if b.NotebookOutput == "" {
			v, _ := json.Marshal(map[string]string{"mlflow_run_id": id})
			exit = string(v)
		}
	}
	if b.Score != nil {
		table := b.Score.Table
		if table == "" {
			table = params["output_table"]
		}
		if table == "" {
			return fmt.Errorf("Score: no table given (Score.Table or notebook parameter output_table)")
		}
		// Like the notebook: load the model first, then write the table.
		var name, version string
		if b.NotebookOutput == "" {
			var err error
			if name, version, err = ws.resolveModelURILocked(params["model_uri"]); err != nil {
				return err
			}
		}
		tc.WriteTable(table, b.Score.Rows)
		if b.NotebookOutput == "" {
			// The exit value of the shipped scoring notebook
			// (examples/notebooks/batch_score.py exit_value).
			v, _ := json.Marshal(map[string]any{
				"rows_written": b.Score.Rows, "output_table": table, "table_version": tc.TableVersion(table),
				"model_name": name, "model_version": version,
			})
			exit = string(v)
		}
	}
	if b.Action != nil {
		if err := b.Action(tc); err != nil {
			return err
		}
	}
	t.output = exit
	return nil
}

// cancelRun cancels every unfinished task: running ones go TERMINATING and
// end CANCELED after Options.RunTerminating, without their actions.
func (ws *Workspace) cancelRun(run *jobRun, now time.Time) {
	if run.done(now) || !run.cancelledAt.IsZero() {
		return
	}
	run.cancelledAt = now
	for _, t := range run.tasks {
		if t.finished {
			continue
		}
		t.finished = true
		if !t.scheduled {
			t.scheduled = true
			t.pendingAt, t.runningAt = now, now
		}
		if t.runningAt.After(now) {
			t.runningAt = now
		}
		t.doneAt, t.endAt = now, now.Add(ws.opts.RunTerminating)
		t.life, t.result, t.message = jobs.RunLifeCycleStateTerminated, jobs.RunResultStateCanceled, "Run cancelled."
		if t.pendingAt.Equal(now) {
			t.endAt = now
		}
	}
}

// state of one task at time now.
func (t *taskRun) state(now time.Time) (jobs.RunLifeCycleState, jobs.RunResultState, string) {
	switch {
	case !t.scheduled:
		return jobs.RunLifeCycleStateBlocked, "", "Waiting for upstream tasks."
	case now.Before(t.runningAt):
		return jobs.RunLifeCycleStatePending, "", "Waiting for cluster."
	case now.Before(t.doneAt):
		return jobs.RunLifeCycleStateRunning, "", "In run"
	case now.Before(t.endAt):
		return jobs.RunLifeCycleStateTerminating, "", "Terminating the cluster."
	}
	return t.life, t.result, t.message
}

func (r *jobRun) done(now time.Time) bool {
	for _, t := range r.tasks {
		if !t.finished || now.Before(t.endAt) {
			return false
		}
	}
	return true
}

// parentState derives the run's state from its tasks.
func (r *jobRun) parentState(now time.Time) (jobs.RunLifeCycleState, jobs.RunResultState, string) {
	if !r.done(now) {
		started, terminatingOnly := false, true
		for _, t := range r.tasks {
			life, _, _ := t.state(now)
			switch life {
			case jobs.RunLifeCycleStateRunning:
				started, terminatingOnly = true, false
			case jobs.RunLifeCycleStatePending, jobs.RunLifeCycleStateBlocked:
				terminatingOnly = false
			case jobs.RunLifeCycleStateTerminating:
				started = true
			default:
				started = true
			}
		}
		switch {
		case !r.cancelledAt.IsZero() || (started && terminatingOnly):
			return jobs.RunLifeCycleStateTerminating, "", ""
		case started:
			return jobs.RunLifeCycleStateRunning, "", ""
		}
		return jobs.RunLifeCycleStatePending, "", "Waiting for cluster."
	}
	if !r.cancelledAt.IsZero() {
		return jobs.RunLifeCycleStateTerminated, jobs.RunResultStateCanceled, "Run cancelled."
	}
	allSkipped, internal, failed, timedOut, canceled := true, false, false, false, false
	for _, t := range r.tasks {
		if t.life != jobs.RunLifeCycleStateSkipped {
			allSkipped = false
		}
		switch {
		case t.life == jobs.RunLifeCycleStateInternalError:
			internal = true
		case t.result == jobs.RunResultStateFailed || t.result == jobs.RunResultStateUpstreamFailed:
			failed = true
		case t.result == jobs.RunResultStateTimedout:
			timedOut = true
		case t.result == jobs.RunResultStateCanceled:
			canceled = true
		}
	}
	switch {
	case allSkipped:
		return jobs.RunLifeCycleStateSkipped, "", "This run was skipped."
	case internal:
		return jobs.RunLifeCycleStateInternalError, jobs.RunResultStateFailed, "An internal error occurred in the Jobs service. Please retry."
	case failed:
		return jobs.RunLifeCycleStateTerminated, jobs.RunResultStateFailed, "Workload failed, see run output for details"
	case timedOut:
		return jobs.RunLifeCycleStateTerminated, jobs.RunResultStateTimedout, "Run timed out."
	case canceled:
		return jobs.RunLifeCycleStateTerminated, jobs.RunResultStateCanceled, "Run cancelled."
	}
	return jobs.RunLifeCycleStateTerminated, jobs.RunResultStateSuccess, ""
}

func (ws *Workspace) runPageURL(jobID, runID int64) string {
	return fmt.Sprintf("%s/?o=%d#job/%d/run/%d", ws.url, ws.WorkspaceID, jobID, runID)
}

func (ws *Workspace) taskView(t *taskRun, now time.Time) jobs.RunTask {
	rt := t.spec
	rt.RunId = t.id
	rt.AttemptNumber = 0
	rt.RunPageUrl = ws.runPageURL(t.parent.jobID, t.id)
	life, result, msg := t.state(now)
	rt.State = &jobs.RunState{LifeCycleState: life, ResultState: result, StateMessage: msg, UserCancelledOrTimedout: result == jobs.RunResultStateCanceled || result == jobs.RunResultStateTimedout}
	rt.Status = statusV2(life, result, msg)
	if t.scheduled && !now.Before(t.pendingAt) {
		rt.StartTime = millis(t.pendingAt)
		rt.SetupDuration = millis(minTime(now, t.runningAt)) - millis(t.pendingAt)
		if !now.Before(t.runningAt) {
			rt.ExecutionDuration = millis(minTime(now, t.doneAt)) - millis(t.runningAt)
		}
		if !now.Before(t.doneAt) {
			rt.CleanupDuration = millis(minTime(now, t.endAt)) - millis(t.doneAt)
		}
		if !now.Before(t.endAt) && t.finished {
			rt.EndTime = millis(t.endAt)
		}
		rt.RunDuration = rt.SetupDuration + rt.ExecutionDuration + rt.CleanupDuration
	}
	return rt
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// statusV2 fills the newer RunStatus alongside the classic RunState.
func statusV2(life jobs.RunLifeCycleState, result jobs.RunResultState, msg string) *jobs.RunStatus {
	st := &jobs.RunStatus{}
	switch life {
	case jobs.RunLifeCycleStateBlocked:
		st.State = jobs.RunLifecycleStateV2StateBlocked
	case jobs.RunLifeCycleStatePending:
		st.State = jobs.RunLifecycleStateV2StatePending
	case jobs.RunLifeCycleStateRunning:
		st.State = jobs.RunLifecycleStateV2StateRunning
	case jobs.RunLifeCycleStateTerminating:
		st.State = jobs.RunLifecycleStateV2StateTerminating
	default:
		st.State = jobs.RunLifecycleStateV2StateTerminated
		code, typ := jobs.TerminationCodeCodeSuccess, jobs.TerminationTypeTypeSuccess
		switch {
		case life == jobs.RunLifeCycleStateInternalError:
			code, typ = jobs.TerminationCodeCodeInternalError, jobs.TerminationTypeTypeInternalError
		case life == jobs.RunLifeCycleStateSkipped:
			code, typ = jobs.TerminationCodeCodeSkipped, jobs.TerminationTypeTypeSuccess
		case result == jobs.RunResultStateCanceled:
			code, typ = jobs.TerminationCodeCodeCanceled, jobs.TerminationTypeTypeSuccess
		case result == jobs.RunResultStateFailed || result == jobs.RunResultStateUpstreamFailed || result == jobs.RunResultStateTimedout:
			code, typ = jobs.TerminationCodeCodeRunExecutionError, jobs.TerminationTypeTypeClientError
		}
		st.TerminationDetails = &jobs.TerminationDetails{Code: code, Type: typ, Message: msg}
	}
	return st
}

func (ws *Workspace) runView(run *jobRun, now time.Time) *jobs.Run {
	out := &jobs.Run{
		RunId: run.id, JobId: run.jobID, RunName: run.name, RunType: run.runType, NumberInJob: run.numberInJob,
		OriginalAttemptRunId: run.id, CreatorUserName: ws.UserName, StartTime: millis(run.created),
		RunPageUrl: ws.runPageURL(run.jobID, run.id), Trigger: jobs.TriggerTypeOneTime,
		JobParameters: run.jobParams, OverridingParameters: run.overriding,
	}
	var last time.Time
	for _, t := range run.tasks {
		tv := ws.taskView(t, now)
		out.Tasks = append(out.Tasks, tv)
		if t.endAt.After(last) {
			last = t.endAt
		}
	}
	life, result, msg := run.parentState(now)
	out.State = &jobs.RunState{LifeCycleState: life, ResultState: result, StateMessage: msg, UserCancelledOrTimedout: !run.cancelledAt.IsZero()}
	out.Status = statusV2(life, result, msg)
	if run.done(now) {
		out.EndTime = millis(last)
		out.RunDuration = millis(last) - millis(run.created)
	}
	if len(run.repairs) > 0 {
		// repair_history: the original attempt, then one item per repair
		// (databricks-sdk-go service/jobs Run.RepairHistory, RepairHistoryItem).
		out.RepairHistory = append(out.RepairHistory, jobs.RepairHistoryItem{Id: run.id, Type: jobs.RepairHistoryItemTypeOriginal, StartTime: millis(run.created)})
		for _, rp := range run.repairs {
			out.RepairHistory = append(out.RepairHistory, jobs.RepairHistoryItem{Id: rp.id, Type: jobs.RepairHistoryItemTypeRepair, StartTime: millis(rp.at), TaskRunIds: rp.taskRuns})
		}
	}
	return out
}

// taskRunAsRun answers runs/get for a task run id with a single-task view.
func (ws *Workspace) taskRunAsRun(t *taskRun, now time.Time) *jobs.Run {
	tv := ws.taskView(t, now)
	return &jobs.Run{
		RunId: t.id, JobId: t.parent.jobID, RunName: t.spec.TaskKey, RunType: jobs.RunTypeJobRun, JobRunId: t.parent.id,
		CreatorUserName: ws.UserName, StartTime: tv.StartTime, EndTime: tv.EndTime, SetupDuration: tv.SetupDuration,
		ExecutionDuration: tv.ExecutionDuration, CleanupDuration: tv.CleanupDuration, RunDuration: tv.RunDuration,
		RunPageUrl: tv.RunPageUrl, State: tv.State, Status: tv.Status, Tasks: []jobs.RunTask{tv},
	}
}

// runOutput answers runs/get-output, which takes a TASK run id; for a
// parent run id Databricks refuses with the message below.
func (ws *Workspace) runOutput(r *http.Request, req *jobs.GetRunOutputRequest) (any, *apiError) {
	if _, isParent := ws.jobs.runs[req.RunId]; isParent {
		return nil, invalidParam("Retrieving the output of runs with multiple tasks is not supported. Please retrieve the output of each individual task run instead.")
	}
	t, ok := ws.jobs.taskRuns[req.RunId]
	if !ok {
		return nil, invalidParam("Run %d does not exist.", req.RunId)
	}
	now := ws.clock.Now()
	out := &jobs.RunOutput{Metadata: ws.taskRunAsRun(t, now)}
	if t.finished && !now.Before(t.doneAt) {
		if t.spec.NotebookTask != nil && (t.result == jobs.RunResultStateSuccess || t.output != "") {
			out.NotebookOutput = &jobs.NotebookOutput{Result: t.output, Truncated: t.trunc}
			if t.output == "" {
				out.NotebookOutput.ForceSendFields = []string{"Result"}
			}
		}
		out.Error, out.ErrorTrace = t.err, t.trace
	}
	return out, nil
}

// listRuns answers runs/list: newest first, filtered by job_id, run_type,
// active_only / completed_only and start_time_from / start_time_to (both
// inclusive); SOURCES.md cites each rule.
func (ws *Workspace) listRuns(r *http.Request, req *jobs.ListRunsRequest) (any, *apiError) {
	if req.ActiveOnly && req.CompletedOnly {
		return nil, invalidParam("active_only and completed_only cannot both be true")
	}
	now := ws.clock.Now()
	var ids []int64
	for id, run := range ws.jobs.runs {
		if req.JobId != 0 && run.jobID != req.JobId {
			continue
		}
		if req.RunType != "" && run.runType != req.RunType {
			continue
		}
		done := run.done(now)
		if (req.ActiveOnly && done) || (req.CompletedOnly && !done) {
			continue
		}
		if req.StartTimeFrom != 0 && millis(run.created) < req.StartTimeFrom || req.StartTimeTo != 0 && millis(run.created) > req.StartTimeTo {
			continue
		}
		ids = append(ids, id)
	}
	pg, aerr := pageIDs(ids, req.PageToken, req.Offset, req.Limit, 25, func(id int64) jobs.BaseRun {
		var base jobs.BaseRun
		_ = convert(ws.runView(ws.jobs.runs[id], now), &base)
		if !req.ExpandTasks {
			base.Tasks = nil
		}
		return base
	})
	if aerr != nil {
		return nil, aerr
	}
	return &jobs.ListRunsResponse{Runs: pg.items, HasMore: pg.hasMore, NextPageToken: pg.next, PrevPageToken: pg.prev}, nil
}

func (ws *Workspace) bgCtx() context.Context { return context.Background() }
