package emulator_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

const trainNotebook = "/Repos/QA/azure-databricks-mlops/notebooks/train"

func TestJobsCRUDThroughSDK(t *testing.T) {
	ws, _ := start(t, emulator.Options{})
	api := jobs.NewJobs(ws.Client(t))
	c := ctx(t)

	created, err := api.Create(c, jobs.CreateJob{Name: "train-model-churn", MaxConcurrentRuns: 1, Tasks: []jobs.Task{
		{TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: trainNotebook}},
	}})
	require.NoError(t, err)
	for i := range 3 {
		_, err := api.Create(c, jobs.CreateJob{Name: "other-" + string(rune('a'+i))})
		require.NoError(t, err)
	}

	all, err := api.ListAll(c, jobs.ListJobsRequest{Limit: 2})
	require.NoError(t, err)
	assert.Len(t, all, 4, "pagination walks every page")
	byName, err := api.ListAll(c, jobs.ListJobsRequest{Name: "TRAIN-model-churn"})
	require.NoError(t, err)
	require.Len(t, byName, 1, "name filter is exact and case-insensitive")
	assert.Equal(t, created.JobId, byName[0].JobId)

	require.NoError(t, api.Reset(c, jobs.ResetJob{JobId: created.JobId, NewSettings: jobs.JobSettings{Name: "train-model-churn", TimeoutSeconds: 600,
		Tasks: []jobs.Task{{TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: trainNotebook}}}}}))
	require.NoError(t, api.Update(c, jobs.UpdateJob{JobId: created.JobId, NewSettings: &jobs.JobSettings{
		Tasks: []jobs.Task{{TaskKey: "evaluate", DependsOn: []jobs.TaskDependency{{TaskKey: "train"}}, NotebookTask: &jobs.NotebookTask{NotebookPath: "/x/eval"}}}}}))
	job, err := api.GetByJobId(c, created.JobId)
	require.NoError(t, err)
	assert.Equal(t, 600, job.Settings.TimeoutSeconds)
	require.Len(t, job.Settings.Tasks, 2, "update merges tasks by task_key")

	require.NoError(t, api.DeleteByJobId(c, created.JobId))
	_, err = api.GetByJobId(c, created.JobId)
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
}

func TestRunLifecycleFollowsTheClock(t *testing.T) {
	ws, clock := start(t, emulator.Options{})
	ws.OnNotebook(trainNotebook, emulator.Behaviour{Duration: 10 * time.Minute, NotebookOutput: `{"ok":true}`})
	api := jobs.NewJobs(ws.Client(t))
	c := ctx(t)

	job, err := api.Create(c, jobs.CreateJob{Name: "train", Tasks: []jobs.Task{
		{TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: trainNotebook}},
	}})
	require.NoError(t, err)
	wait, err := api.RunNow(c, jobs.RunNow{JobId: job.JobId, IdempotencyToken: "build-1", NotebookParams: map[string]string{"env": "dev"}})
	require.NoError(t, err)
	again, err := api.RunNow(c, jobs.RunNow{JobId: job.JobId, IdempotencyToken: "build-1"})
	require.NoError(t, err)
	assert.Equal(t, wait.RunId, again.RunId, "idempotency_token returns the same run")

	state := func() (jobs.RunLifeCycleState, jobs.RunResultState, *jobs.Run) {
		run, err := api.GetRun(c, jobs.GetRunRequest{RunId: wait.RunId})
		require.NoError(t, err)
		return run.State.LifeCycleState, run.State.ResultState, run
	}
	life, _, run := state()
	assert.Equal(t, jobs.RunLifeCycleStatePending, life)
	assert.Contains(t, run.RunPageUrl, "#job/")
	require.Len(t, run.Tasks, 1)
	taskRunID := run.Tasks[0].RunId
	assert.NotEqual(t, wait.RunId, taskRunID)

	clock.Advance(6 * time.Second)
	life, _, _ = state()
	assert.Equal(t, jobs.RunLifeCycleStateRunning, life)
	clock.Advance(10 * time.Minute)
	life, _, _ = state()
	assert.Equal(t, jobs.RunLifeCycleStateTerminating, life)
	clock.Advance(3 * time.Second)
	life, result, run := state()
	assert.Equal(t, jobs.RunLifeCycleStateTerminated, life)
	assert.Equal(t, jobs.RunResultStateSuccess, result)
	assert.Positive(t, run.EndTime)

	out, err := api.GetRunOutput(c, jobs.GetRunOutputRequest{RunId: taskRunID})
	require.NoError(t, err)
	require.NotNil(t, out.NotebookOutput)
	assert.JSONEq(t, `{"ok":true}`, out.NotebookOutput.Result)
	_, err = api.GetRunOutput(c, jobs.GetRunOutputRequest{RunId: wait.RunId})
	assert.ErrorIs(t, err, apierr.ErrInvalidParameterValue, "get-output takes the task run id")

	runs, err := api.ListRunsAll(c, jobs.ListRunsRequest{JobId: job.JobId, CompletedOnly: true})
	require.NoError(t, err)
	assert.Len(t, runs, 1)
	assert.Len(t, ws.RequestsTo(http.MethodPost, "/api/2.2/jobs/run-now"), 2)
}

func TestRunOutcomesAreScripted(t *testing.T) {
	ws, clock := start(t, emulator.Options{})
	api := jobs.NewJobs(ws.Client(t))
	c := ctx(t)
	cases := []struct {
		name    string
		beh     emulator.Behaviour
		life    jobs.RunLifeCycleState
		result  jobs.RunResultState
		wantErr string
	}{
		{"success", emulator.Behaviour{}, jobs.RunLifeCycleStateTerminated, jobs.RunResultStateSuccess, ""},
		{"failed", emulator.Behaviour{Outcome: emulator.Failed, Error: "ValueError: bad data", ErrorTrace: "trace"}, jobs.RunLifeCycleStateTerminated, jobs.RunResultStateFailed, "ValueError: bad data"},
		{"timedout", emulator.Behaviour{Outcome: emulator.TimedOut}, jobs.RunLifeCycleStateTerminated, jobs.RunResultStateTimedout, ""},
		{"canceled", emulator.Behaviour{Outcome: emulator.Canceled}, jobs.RunLifeCycleStateTerminated, jobs.RunResultStateCanceled, ""},
		{"internal", emulator.Behaviour{Outcome: emulator.InternalError}, jobs.RunLifeCycleStateInternalError, jobs.RunResultStateFailed, ""},
		{"skipped", emulator.Behaviour{Outcome: emulator.Skipped}, jobs.RunLifeCycleStateSkipped, "", ""},
		{"action error", emulator.Behaviour{Action: func(*emulator.TaskContext) error { return errors.New("boom") }}, jobs.RunLifeCycleStateTerminated, jobs.RunResultStateFailed, "boom"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws.OnTask(tc.name, tc.beh)
			sub, err := api.Submit(c, jobs.SubmitRun{RunName: tc.name, Tasks: []jobs.SubmitTask{{TaskKey: tc.name, NotebookTask: &jobs.NotebookTask{NotebookPath: "/nb"}}}})
			require.NoError(t, err)
			clock.Advance(time.Hour)
			run, err := api.GetRun(c, jobs.GetRunRequest{RunId: sub.RunId})
			require.NoError(t, err)
			assert.Equal(t, tc.life, run.State.LifeCycleState)
			assert.Equal(t, tc.result, run.State.ResultState)
			out, err := api.GetRunOutput(c, jobs.GetRunOutputRequest{RunId: run.Tasks[0].RunId})
			require.NoError(t, err)
			assert.Contains(t, out.Error, tc.wantErr)
		})
	}

	t.Run("missing notebook fails the task", func(t *testing.T) {
		sub, err := api.Submit(c, jobs.SubmitRun{Tasks: []jobs.SubmitTask{{TaskKey: "unscripted", NotebookTask: &jobs.NotebookTask{NotebookPath: "/does/not/exist"}}}})
		require.NoError(t, err)
		clock.Advance(time.Hour)
		run, err := api.GetRun(c, jobs.GetRunRequest{RunId: sub.RunId})
		require.NoError(t, err)
		assert.Equal(t, jobs.RunResultStateFailed, run.State.ResultState)
	})

	t.Run("upstream failure and cancel", func(t *testing.T) {
		chain := submitFailingChain(t, ws, api, "a", "b")
		run, err := api.GetRun(c, jobs.GetRunRequest{RunId: chain})
		require.NoError(t, err)
		assert.Equal(t, jobs.RunLifeCycleStateBlocked, run.Tasks[1].State.LifeCycleState)
		clock.Advance(time.Hour)
		run, err = api.GetRun(c, jobs.GetRunRequest{RunId: chain})
		require.NoError(t, err)
		assert.Equal(t, jobs.RunResultStateUpstreamFailed, run.Tasks[1].State.ResultState)

		ws.OnTask("slow", emulator.Behaviour{Duration: time.Hour})
		sub, err := api.Submit(c, jobs.SubmitRun{Tasks: []jobs.SubmitTask{{TaskKey: "slow", NotebookTask: &jobs.NotebookTask{NotebookPath: "/nb"}}}})
		require.NoError(t, err)
		clock.Advance(time.Minute)
		_, err = api.CancelRun(c, jobs.CancelRun{RunId: sub.RunId})
		require.NoError(t, err)
		run, err = api.GetRun(c, jobs.GetRunRequest{RunId: sub.RunId})
		require.NoError(t, err)
		assert.Equal(t, jobs.RunLifeCycleStateTerminating, run.State.LifeCycleState)
		clock.Advance(time.Minute)
		run, err = api.GetRun(c, jobs.GetRunRequest{RunId: sub.RunId})
		require.NoError(t, err)
		assert.Equal(t, jobs.RunResultStateCanceled, run.State.ResultState)
	})

	t.Run("timeout_seconds turns a long task into TIMEDOUT", func(t *testing.T) {
		ws.OnTask("long", emulator.Behaviour{Duration: time.Hour})
		sub, err := api.Submit(c, jobs.SubmitRun{TimeoutSeconds: 60, Tasks: []jobs.SubmitTask{{TaskKey: "long", NotebookTask: &jobs.NotebookTask{NotebookPath: "/nb"}}}})
		require.NoError(t, err)
		clock.Advance(5 * time.Minute)
		run, err := api.GetRun(c, jobs.GetRunRequest{RunId: sub.RunId})
		require.NoError(t, err)
		assert.Equal(t, jobs.RunResultStateTimedout, run.State.ResultState)
	})
}

// submitFailingChain submits a run of two notebook tasks, first, scripted to
// fail, and second, which depends on it, and returns the run id.
func submitFailingChain(t *testing.T, ws *emulator.Workspace, api *jobs.JobsAPI, first, second string) (runID int64) {
	t.Helper()
	ws.OnTask(first, emulator.Behaviour{Outcome: emulator.Failed})
	ws.OnTask(second, emulator.Behaviour{})
	sub, err := api.Submit(ctx(t), jobs.SubmitRun{Tasks: []jobs.SubmitTask{
		{TaskKey: first, NotebookTask: &jobs.NotebookTask{NotebookPath: "/nb"}},
		{TaskKey: second, DependsOn: []jobs.TaskDependency{{TaskKey: first}}, NotebookTask: &jobs.NotebookTask{NotebookPath: "/nb"}},
	}})
	require.NoError(t, err)
	return sub.RunId
}

// TestRepairRun: runs/repair re-runs the tasks named (and those after them)
// of a run that has ended, and refuses rerun_tasks together with
// rerun_all_failed_tasks (SDK doc: only one of them can be used).
func TestRepairRun(t *testing.T) {
	ws, clock := start(t, emulator.Options{})
	api := jobs.NewJobs(ws.Client(t))
	c := ctx(t)
	runID := submitFailingChain(t, ws, api, "check", "deploy")
	_, err := api.RepairRun(c, jobs.RepairRun{RunId: runID, RerunTasks: []string{"check"}})
	require.ErrorIs(t, err, apierr.ErrInvalidState, "a run that has not ended")
	clock.Advance(time.Hour)

	_, err = api.RepairRun(c, jobs.RepairRun{RunId: runID, RerunTasks: []string{"check"}, RerunAllFailedTasks: true})
	require.ErrorIs(t, err, apierr.ErrInvalidParameterValue, "rerun_tasks and rerun_all_failed_tasks together")
	ws.OnTask("check", emulator.Behaviour{})
	_, err = api.RepairRun(c, jobs.RepairRun{RunId: runID, RerunTasks: []string{"check"}, RerunDependentTasks: true})
	require.NoError(t, err)
	clock.Advance(time.Hour)
	run, err := api.GetRun(c, jobs.GetRunRequest{RunId: runID})
	require.NoError(t, err)
	assert.Equal(t, jobs.RunResultStateSuccess, run.State.ResultState, "both tasks ran again and succeeded")
}

func TestSubmitIdempotencyAndWaiter(t *testing.T) {
	// The SDK's waiter polls runs/get; on a real clock with tiny durations it
	// returns once the run is TERMINATED.
	ws := emulator.Start(t, emulator.Options{RunPending: 10 * time.Millisecond, RunTerminating: 10 * time.Millisecond})
	ws.OnTask("t", emulator.Behaviour{Duration: 20 * time.Millisecond})
	api := jobs.NewJobs(ws.Client(t))
	c := ctx(t)
	req := jobs.SubmitRun{RunName: "once", IdempotencyToken: "tok-1", Tasks: []jobs.SubmitTask{{TaskKey: "t", NotebookTask: &jobs.NotebookTask{NotebookPath: "/nb"}}}}
	first, err := api.Submit(c, req)
	require.NoError(t, err)
	second, err := api.Submit(c, req)
	require.NoError(t, err)
	assert.Equal(t, first.RunId, second.RunId)
	run, err := first.GetWithTimeout(20 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, jobs.RunResultStateSuccess, run.State.ResultState)
	all, err := api.ListRunsAll(c, jobs.ListRunsRequest{RunType: jobs.RunTypeSubmitRun})
	require.NoError(t, err)
	assert.Len(t, all, 1, "the second submit started no run")
}

// TestListRunsFiltersAsTheJobsAPI checks runs/list's filters (the ones
// runwait.LookUp relies on) against ListRunsRequest's documented meaning.
func TestListRunsFiltersAsTheJobsAPI(t *testing.T) {
	ws, clock := start(t, emulator.Options{})
	ws.OnNotebook(trainNotebook, emulator.Behaviour{Duration: time.Minute})
	api := jobs.NewJobs(ws.Client(t))
	c := ctx(t)
	job, err := api.Create(c, jobs.CreateJob{Name: "train", Tasks: []jobs.Task{{TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: trainNotebook}}}})
	require.NoError(t, err)
	other, err := api.Create(c, jobs.CreateJob{Name: "other", Tasks: []jobs.Task{{TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: trainNotebook}}}})
	require.NoError(t, err)

	var jobRuns []int64 // oldest first
	var starts []int64
	for range 3 {
		r, err := api.RunNow(c, jobs.RunNow{JobId: job.JobId})
		require.NoError(t, err)
		jobRuns = append(jobRuns, r.RunId)
		starts = append(starts, clock.Now().UnixMilli())
		clock.Advance(time.Hour)
	}
	_, err = api.RunNow(c, jobs.RunNow{JobId: other.JobId})
	require.NoError(t, err)
	sub, err := api.Submit(c, jobs.SubmitRun{RunName: "once", Tasks: []jobs.SubmitTask{{TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: trainNotebook}}}})
	require.NoError(t, err)
	clock.Advance(time.Hour)
	active, err := api.RunNow(c, jobs.RunNow{JobId: job.JobId}) // still running
	require.NoError(t, err)

	ids := func(req jobs.ListRunsRequest) []int64 {
		t.Helper()
		runs, err := api.ListRunsAll(c, req)
		require.NoError(t, err)
		var out []int64
		for _, r := range runs {
			out = append(out, r.RunId)
		}
		return out
	}
	assert.Equal(t, []int64{active.RunId, jobRuns[2], jobRuns[1], jobRuns[0]}, ids(jobs.ListRunsRequest{JobId: job.JobId}), "the job's runs, most recently started first")
	assert.Equal(t, []int64{jobRuns[2], jobRuns[1], jobRuns[0]}, ids(jobs.ListRunsRequest{JobId: job.JobId, CompletedOnly: true}))
	assert.Equal(t, []int64{active.RunId}, ids(jobs.ListRunsRequest{JobId: job.JobId, ActiveOnly: true}))
	assert.Equal(t, []int64{sub.RunId}, ids(jobs.ListRunsRequest{RunType: jobs.RunTypeSubmitRun}))
	assert.Len(t, ids(jobs.ListRunsRequest{RunType: jobs.RunTypeJobRun}), 5)
	assert.Equal(t, []int64{jobRuns[2], jobRuns[1]}, ids(jobs.ListRunsRequest{JobId: job.JobId, StartTimeFrom: starts[1], StartTimeTo: starts[2]}), "both bounds inclusive")

	_, err = api.ListRunsAll(c, jobs.ListRunsRequest{ActiveOnly: true, CompletedOnly: true})
	assert.ErrorIs(t, err, apierr.ErrInvalidParameterValue)
	_, err = api.ListRunsAll(c, jobs.ListRunsRequest{Limit: 26})
	assert.ErrorIs(t, err, apierr.ErrInvalidParameterValue)
	page, err := api.ListRuns(c, jobs.ListRunsRequest{Limit: 2}).Next(c)
	require.NoError(t, err)
	assert.Empty(t, page.Tasks, "no task details without expand_tasks")
	expanded, err := api.ListRuns(c, jobs.ListRunsRequest{Limit: 2, ExpandTasks: true}).Next(c)
	require.NoError(t, err)
	require.Len(t, expanded.Tasks, 1)
	assert.Equal(t, trainNotebook, expanded.Tasks[0].NotebookTask.NotebookPath)
	assert.Len(t, ids(jobs.ListRunsRequest{Limit: 2}), 6, "paging walks every run")
}

// TestRepairedRunListsItsRepairs: a repaired run's repair_history has the
// original run and each repair (RepairHistoryItem), in runs/get and
// runs/list.
func TestRepairedRunListsItsRepairs(t *testing.T) {
	ws, clock := start(t, emulator.Options{})
	ws.OnNotebook(trainNotebook, emulator.Behaviour{Duration: time.Minute, Outcome: emulator.Failed})
	api := jobs.NewJobs(ws.Client(t))
	c := ctx(t)
	job, err := api.Create(c, jobs.CreateJob{Name: "train", Tasks: []jobs.Task{{TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: trainNotebook}}}})
	require.NoError(t, err)
	started, err := api.RunNow(c, jobs.RunNow{JobId: job.JobId})
	require.NoError(t, err)
	clock.Advance(time.Hour)
	run, err := api.GetRun(c, jobs.GetRunRequest{RunId: started.RunId})
	require.NoError(t, err)
	assert.Empty(t, run.RepairHistory, "no repair, no history")

	ws.OnNotebook(trainNotebook, emulator.Behaviour{Duration: time.Minute})
	repair, err := api.RepairRun(c, jobs.RepairRun{RunId: started.RunId, RerunTasks: []string{"train"}})
	require.NoError(t, err)
	repairedAt := clock.Now()
	clock.Advance(time.Hour)
	run, err = api.GetRun(c, jobs.GetRunRequest{RunId: started.RunId})
	require.NoError(t, err)
	assert.Equal(t, jobs.RunResultStateSuccess, run.State.ResultState)
	require.Len(t, run.RepairHistory, 2)
	assert.Equal(t, jobs.RepairHistoryItemTypeOriginal, run.RepairHistory[0].Type)
	assert.Equal(t, run.StartTime, run.RepairHistory[0].StartTime)
	assert.Equal(t, jobs.RepairHistoryItemTypeRepair, run.RepairHistory[1].Type)
	assert.Equal(t, repair.Response.RepairId, run.RepairHistory[1].Id)
	assert.Equal(t, repairedAt.UnixMilli(), run.RepairHistory[1].StartTime)
	assert.Greater(t, run.EndTime, repairedAt.UnixMilli(), "end_time is the repair's")
	listed, err := api.ListRunsAll(c, jobs.ListRunsRequest{JobId: job.JobId})
	require.NoError(t, err)
	require.Len(t, listed, 1)
	assert.Len(t, listed[0].RepairHistory, 2)
}
