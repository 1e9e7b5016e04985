package batchscore_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/examples/notebooks"
	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/batchscore"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/tasks"
)

func TestFirstRunCreatesSecondRunUpdatesTheSameJob(t *testing.T) {
	eachMode(t, testFirstRunCreatesSecondRunUpdatesTheSameJob)
}

func testFirstRunCreatesSecondRunUpdatesTheSameJob(t *testing.T, newW func(*testing.T) *world) {
	w := newW(t)

	first := w.run(t, inputs())
	require.Equal(t, agent.Succeeded, first.Result, first.Stdout)
	all := w.jobs(t)
	require.Len(t, all, 1)
	jobID := all[0].JobId
	assert.Equal(t, strconv.FormatInt(jobID, 10), first.Outputs["jobId"])
	assert.Len(t, w.ws.RequestsTo("POST", "/api/2.2/jobs/create"), 1)
	assert.Empty(t, w.ws.RequestsTo("POST", "/api/2.2/jobs/reset"))
	assert.Len(t, w.imports(), 1, "the shipped notebook is uploaded the first time")
	src, err := base64.StdEncoding.DecodeString(w.notebookSource(t, shippedPath))
	require.NoError(t, err)
	assert.Equal(t, string(notebooks.BatchScore), string(src))

	second := w.run(t, inputs("idColumns", "CodigoCliente,Email"))
	require.Equal(t, agent.Succeeded, second.Result, second.Stdout)
	all = w.jobs(t)
	require.Len(t, all, 1, "the second run updates the job instead of piling up a new one")
	assert.Equal(t, jobID, all[0].JobId)
	assert.Equal(t, first.Outputs["jobId"], second.Outputs["jobId"])
	assert.Len(t, w.ws.RequestsTo("POST", "/api/2.2/jobs/create"), 1)
	assert.Len(t, w.ws.RequestsTo("POST", "/api/2.2/jobs/reset"), 1)
	assert.Len(t, w.imports(), 1, "an unchanged notebook is not uploaded again")
	assert.Equal(t, "CodigoCliente,Email", jobParam(w.job(t, jobID), "id_columns"), "reset carries the new settings")
	assert.NotEqual(t, first.Outputs["runId"], second.Outputs["runId"])
	assert.Equal(t, "0", first.Outputs["tableVersion"])
	assert.Equal(t, "1", second.Outputs["tableVersion"])
	// The job's first run predicts the second's end.
	assert.Contains(t, first.Stdout, fmt.Sprintf("No earlier successful run of job %d: polling on the adaptive schedule.", jobID))
	assert.Contains(t, second.Stdout, fmt.Sprintf("The one earlier successful run of job %d took 4m7s: polling every 1s from 4m2s to 4m12s into the run", jobID))

	// Someone edits the workspace copy: the task puts the shipped one back.
	w.ws.AddNotebook(shippedPath, "# Databricks notebook source\nprint('edited by hand')\n")
	third := w.run(t, inputs())
	require.Equal(t, agent.Succeeded, third.Result, third.Stdout)
	assert.Len(t, w.imports(), 2, "a notebook that differs is uploaded again")
	src, err = base64.StdEncoding.DecodeString(w.notebookSource(t, shippedPath))
	require.NoError(t, err)
	assert.Equal(t, string(notebooks.BatchScore), string(src))
	assert.Len(t, w.jobs(t), 1)

	if w.exe == "" {
		// A new release of Brickferry ships a changed notebook.
		changed := append([]byte(nil), notebooks.BatchScore...)
		changed = append(changed, "\n# a new release of the notebook\n"...)
		fourth := w.runWith(t, inputs(), changed)
		require.Equal(t, agent.Succeeded, fourth.Result, fourth.Stdout)
		assert.Len(t, w.imports(), 3, "a changed notebook is uploaded again")
		fifth := w.runWith(t, inputs(), changed)
		require.Equal(t, agent.Succeeded, fifth.Result, fifth.Stdout)
		assert.Len(t, w.imports(), 3)
	}
}

func jobParam(j *jobs.Job, name string) string {
	for _, p := range j.Settings.Parameters {
		if p.Name == name {
			return p.Default
		}
	}
	return "<unset>"
}

func TestOutputsSummaryAndJobSettings(t *testing.T) { eachMode(t, testOutputsSummaryAndJobSettings) }

func testOutputsSummaryAndJobSettings(t *testing.T, newW func(*testing.T) *world) {
	w := newW(t)
	res := w.run(t, inputs())
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)

	runID := res.Outputs["runId"]
	require.NotEmpty(t, runID)
	assert.Contains(t, res.Outputs["runUrl"], "/run/"+runID)
	assert.Equal(t, "9960", res.Outputs["rowsWritten"])
	assert.Equal(t, "main.ml.churn_predictions", res.Outputs["outputTable"])
	assert.Equal(t, "0", res.Outputs["tableVersion"])
	assert.Equal(t, "3", res.Outputs["modelVersion"])

	require.Len(t, res.Summaries, 1)
	for _, md := range res.Summaries {
		assert.Contains(t, md, "churn-batch-score")
		assert.Contains(t, md, res.Outputs["runUrl"])
		assert.Contains(t, md, "models:/churn/Production → version 3")
		assert.Contains(t, md, "| Output table | main.ml.churn_predictions (")
		assert.Contains(t, md, "| Rows written | 9960 |")
		assert.Contains(t, md, "| Delta version | 0 |")
	}

	id, _ := strconv.ParseInt(res.Outputs["jobId"], 10, 64)
	s := w.job(t, id).Settings
	require.Len(t, s.Tasks, 1)
	assert.Equal(t, shippedPath, s.Tasks[0].NotebookTask.NotebookPath)
	assert.Equal(t, "score_cluster", s.Tasks[0].JobClusterKey)
	require.Len(t, s.JobClusters, 1)
	assert.Equal(t, "17.3.x-cpu-ml-scala2.13", s.JobClusters[0].NewCluster.SparkVersion)
	assert.Equal(t, 2, s.JobClusters[0].NewCluster.NumWorkers)
	assert.Nil(t, s.Schedule)
	assert.Equal(t, 1, s.MaxConcurrentRuns)
	assert.Equal(t, map[string]string{
		"model_uri": "models:/churn/Production", "input_table": "main.ml.customers", "id_columns": "CodigoCliente",
		"output_table": "main.ml.churn_predictions", "write_mode": "overwrite",
	}, params(s.Parameters))

	rn := w.runNows()
	require.Len(t, rn, 1)
	assert.Equal(t, params(s.Parameters), rn[0].JobParameters, "run-now passes this pipeline's parameters")
	assert.True(t, strings.HasPrefix(rn[0].IdempotencyToken, "brickferry-score-"), rn[0].IdempotencyToken)
	assert.LessOrEqual(t, len(rn[0].IdempotencyToken), 64)
}

func params(defs []jobs.JobParameterDefinition) map[string]string {
	m := map[string]string{}
	for _, d := range defs {
		m[d.Name] = d.Default
	}
	return m
}

func TestWriteModesArePassedThrough(t *testing.T) { eachMode(t, testWriteModesArePassedThrough) }

func testWriteModesArePassedThrough(t *testing.T, newW func(*testing.T) *world) {
	for _, tc := range []struct {
		name   string
		inputs map[string]string
		want   map[string]string
	}{
		{"overwrite", inputs("writeMode", "overwrite"), map[string]string{"write_mode": "overwrite"}},
		{"append", inputs("writeMode", "Append"), map[string]string{"write_mode": "append"}},
		{"merge", inputs("writeMode", "merge", "mergeKeys", "CodigoCliente", "idColumns", "CodigoCliente, Fecha"),
			map[string]string{"write_mode": "merge", "merge_keys": "CodigoCliente", "id_columns": "CodigoCliente,Fecha"}},
		{"files", inputs("inputType", "path", "inputPath", "/Volumes/main/ml/raw/customers", "inputFormat", "parquet", "featureColumns", "Edad,Saldo"),
			map[string]string{"input_path": "/Volumes/main/ml/raw/customers", "input_format": "parquet", "feature_columns": "Edad,Saldo", "input_table": "<unset>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newW(t)
			res := w.run(t, tc.inputs)
			require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
			rn := w.runNows()
			require.Len(t, rn, 1)
			id, _ := strconv.ParseInt(res.Outputs["jobId"], 10, 64)
			job := w.job(t, id)
			for k, v := range tc.want {
				got, ok := rn[0].JobParameters[k]
				if !ok {
					got = "<unset>"
				}
				assert.Equal(t, v, got, "run-now %s", k)
				assert.Equal(t, v, jobParam(job, k), "job parameter %s", k)
			}
		})
	}
}

func TestSchedule(t *testing.T) { eachMode(t, testSchedule) }

func testSchedule(t *testing.T, newW func(*testing.T) *world) {
	w := newW(t)
	res := w.run(t, inputs("scheduleCron", "0 0 2 * * ?", "scheduleTimeZone", "Europe/Madrid"))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	id, _ := strconv.ParseInt(res.Outputs["jobId"], 10, 64)
	s := w.job(t, id).Settings.Schedule
	require.NotNil(t, s)
	assert.Equal(t, jobs.CronSchedule{QuartzCronExpression: "0 0 2 * * ?", TimezoneId: "Europe/Madrid", PauseStatus: jobs.PauseStatusUnpaused}, *s)

	res = w.run(t, inputs("scheduleCron", "0 30 6 ? * MON-FRI", "schedulePaused", "true"))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	s = w.job(t, id).Settings.Schedule
	require.NotNil(t, s)
	assert.Equal(t, jobs.CronSchedule{QuartzCronExpression: "0 30 6 ? * MON-FRI", TimezoneId: "UTC", PauseStatus: jobs.PauseStatusPaused}, *s)
	for _, md := range res.Summaries {
		assert.Contains(t, md, "| Schedule | 0 30 6 ? * MON-FRI (UTC), paused |")
	}

	// An empty cron would remove the schedule: refused, the job unchanged,
	// unless the step allows it.
	w.ws.ResetRequests()
	res = w.run(t, inputs())
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "its schedule (or trigger) would be removed")
	assert.Contains(t, res.Errors[0], "allowJobTakeover: true")
	assert.Contains(t, res.Stdout, `- schedule.quartz_cron_expression: "0 30 6 ? * MON-FRI"`)
	assert.NotNil(t, w.job(t, id).Settings.Schedule)
	assert.Empty(t, w.ws.RequestsTo("POST", "/api/2.2/jobs/reset"))
	assert.Empty(t, w.runNows())

	res = w.run(t, inputs("allowJobTakeover", "true"))
	require.Equal(t, agent.SucceededWithIssues, res.Result, res.Stdout)
	assert.Contains(t, strings.Join(res.Warnings, "\n"), "allowJobTakeover is true")
	assert.Nil(t, w.job(t, id).Settings.Schedule, "the schedule removed when the step allows it")
	assert.Len(t, w.jobs(t), 1)
}

func TestSQLCheck(t *testing.T) { eachMode(t, testSQLCheck) }

func testSQLCheck(t *testing.T, newW func(*testing.T) *world) {
	w := newW(t)
	res := w.run(t, inputs("sqlWarehouseId", "abc123def456"))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	stmts := w.ws.RequestsTo("POST", "/api/2.0/sql/statements/")
	require.Len(t, stmts, 2)
	assert.Contains(t, string(stmts[0].Raw), `SELECT COUNT(*) FROM main.ml.churn_predictions`)
	assert.Contains(t, string(stmts[0].Raw), `"warehouse_id":"abc123def456"`)
	assert.Contains(t, string(stmts[1].Raw), `DESCRIBE HISTORY main.ml.churn_predictions LIMIT 1`)
	assert.Contains(t, res.Stdout, "SELECT COUNT(*) FROM main.ml.churn_predictions = 9960; latest Delta version 0")
	for _, md := range res.Summaries {
		assert.Contains(t, md, "COUNT(*) = 9960, latest version 0")
	}
	assert.Equal(t, "0", res.Outputs["tableVersion"])
}

func TestSQLCheckFindsATableThatDoesNotMatch(t *testing.T) {
	eachMode(t, testSQLCheckFindsATableThatDoesNotMatch)
}

func testSQLCheckFindsATableThatDoesNotMatch(t *testing.T, newW func(*testing.T) *world) {
	w := newW(t)
	// The notebook claims more rows than the table holds.
	w.exit = func(tc *emulator.TaskContext, v int64) string {
		return `{"rows_written": 12000, "output_table": "main.ml.churn_predictions", "table_version": 0, "model_version": "3"}`
	}
	res := w.run(t, inputs("sqlWarehouseId", "abc123def456"))
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "has 9960 rows after an overwrite with 12000 rows")

	// An unknown table fails the statement, as a warehouse does.
	w.exit = func(tc *emulator.TaskContext, v int64) string {
		return `{"rows_written": 9960, "output_table": "main.ml.elsewhere", "table_version": 0}`
	}
	res = w.run(t, inputs("sqlWarehouseId", "abc123def456"))
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Contains(t, res.Errors[0], "TABLE_OR_VIEW_NOT_FOUND")
}

func TestZeroRowsFailWithTheRunURL(t *testing.T) { eachMode(t, testZeroRowsFailWithTheRunURL) }

func testZeroRowsFailWithTheRunURL(t *testing.T, newW func(*testing.T) *world) {
	w := newW(t)
	w.setRows(0)
	res := w.run(t, inputs())
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "wrote 0 row(s) to main.ml.churn_predictions, fewer than the minimum of 1")
	assert.Contains(t, res.Errors[0], res.Outputs["runUrl"])
	assert.Contains(t, res.Errors[0], "/run/"+res.Outputs["runId"])

	ok := w.run(t, inputs("minRows", "0"))
	require.Equal(t, agent.Succeeded, ok.Result, ok.Stdout)
	assert.Equal(t, "0", ok.Outputs["rowsWritten"])

	w.setRows(50)
	few := w.run(t, inputs("minRows", "100"))
	require.Equal(t, agent.Failed, few.Result)
	assert.Contains(t, few.Errors[0], "wrote 50 row(s)")
}

func TestExitValues(t *testing.T) { eachMode(t, testExitValues) }

func testExitValues(t *testing.T, newW func(*testing.T) *world) {
	for _, tc := range []struct {
		name, exit string
		want       map[string]string
		problem    string
	}{
		{name: "strings for numbers", exit: `{"rows_written": "42", "output_table": "main.ml.p", "table_version": "7", "model_version": 5}`,
			want: map[string]string{"rowsWritten": "42", "outputTable": "main.ml.p", "tableVersion": "7", "modelVersion": "5"}},
		{name: "only rows", exit: `{"rows_written": 42}`,
			want: map[string]string{"rowsWritten": "42", "outputTable": "main.ml.churn_predictions", "tableVersion": "", "modelVersion": "3"}},
		{name: "none", exit: ``, problem: "returned no exit value"},
		{name: "not JSON", exit: `done`, problem: "not a JSON object"},
		{name: "no rows", exit: `{"output_table": "x.y"}`, problem: "has no rows_written"},
		{name: "bad rows", exit: `{"rows_written": 1.5}`, problem: "rows_written: 1.5 is not a whole number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newW(t)
			w.exit = func(*emulator.TaskContext, int64) string { return tc.exit }
			res := w.run(t, inputs())
			if tc.problem != "" {
				require.Equal(t, agent.Failed, res.Result, res.Stdout)
				assert.Contains(t, res.Errors[0], tc.problem)
				assert.Contains(t, res.Errors[0], res.Outputs["runUrl"])
				return
			}
			require.Contains(t, []agent.Result{agent.Succeeded, agent.SucceededWithIssues}, res.Result, res.Stdout)
			for k, v := range tc.want {
				assert.Equal(t, v, res.Outputs[k], k)
			}
		})
	}
}

func TestFailedRunReportsTheNotebookError(t *testing.T) {
	eachMode(t, testFailedRunReportsTheNotebookError)
}

func testFailedRunReportsTheNotebookError(t *testing.T, newW func(*testing.T) *world) {
	w := newW(t)
	w.ws.OnNotebook(shippedPath, emulator.Behaviour{Duration: time.Minute, Outcome: emulator.Failed,
		Error: "ParameterError: model churn has no version in stage Production", ErrorTrace: "Traceback ...\n##vso[task.complete result=Succeeded]"})
	res := w.run(t, inputs())
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "the scoring run ended TERMINATED/FAILED")
	assert.Contains(t, res.Errors[0], "model churn has no version in stage Production")
	assert.Contains(t, res.Errors[0], "/run/"+res.Outputs["runId"])
	assert.Contains(t, res.Stdout, "Traceback ...")
	assert.NotContains(t, res.Stdout, "##vso[task.complete result=Succeeded]")
}

func TestOwnNotebook(t *testing.T) { eachMode(t, testOwnNotebook) }

func testOwnNotebook(t *testing.T, newW func(*testing.T) *world) {
	w := newW(t)
	w.ws.AddNotebook("/Repos/mlops/churn/score", "# Databricks notebook source\nprint(1)\n")
	w.onNotebook("/Repos/mlops/churn/score")
	res := w.run(t, inputs("notebookSource", "workspace", "notebookPath", "/Repos/mlops/churn/score", "notebookParameters", "threshold=0.4\n# comment\nsegment=retail"))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Empty(t, w.imports(), "nothing is uploaded for the user's own notebook")
	rn := w.runNows()
	require.Len(t, rn, 1)
	assert.Equal(t, "0.4", rn[0].JobParameters["threshold"])
	assert.Equal(t, "retail", rn[0].JobParameters["segment"])
	assert.Equal(t, "models:/churn/Production", rn[0].JobParameters["model_uri"], "the same parameters as the shipped notebook")

	missing := w.run(t, inputs("notebookSource", "workspace", "notebookPath", "/Repos/mlops/churn/scroe"))
	require.Equal(t, agent.Failed, missing.Result)
	assert.Contains(t, missing.Errors[0], "input notebookPath: there is no notebook /Repos/mlops/churn/scroe in the workspace")
	assert.Len(t, w.jobs(t), 1, "no job points at a missing notebook")
	assert.Equal(t, "/Repos/mlops/churn/score", w.jobs(t)[0].Settings.Tasks[0].NotebookTask.NotebookPath, "the job is unchanged")
}

func TestTwoJobsWithTheNameAreAnError(t *testing.T) { eachMode(t, testTwoJobsWithTheNameAreAnError) }

func testTwoJobsWithTheNameAreAnError(t *testing.T, newW func(*testing.T) *world) {
	w := newW(t)
	api := jobs.NewJobs(w.sdk(t))
	var ids []string
	for range 2 {
		j, err := api.Create(context.Background(), jobs.CreateJob{Name: "churn-batch-score"})
		require.NoError(t, err)
		ids = append(ids, strconv.FormatInt(j.JobId, 10))
	}
	// Same name in another case: the list filter matches it, the task does not.
	_, err := api.Create(context.Background(), jobs.CreateJob{Name: "Churn-Batch-Score"})
	require.NoError(t, err)
	w.ws.ResetRequests()
	res := w.run(t, inputs())
	require.Equal(t, agent.Failed, res.Result)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], `2 jobs are named "churn-batch-score" (job ids `+ids[0]+", "+ids[1]+")")
	assert.Empty(t, w.ws.RequestsTo("POST", "/api/2.2/jobs/reset"))
	assert.Empty(t, w.ws.RequestsTo("POST", "/api/2.2/jobs/create"))
	assert.Empty(t, w.runNows())
}

// TestJobCreateWithoutAClearAnswerLooksFirst: jobs/create is not idempotent.
// When it gets no clear answer the task looks for the job by name before
// creating it again: a create the workspace carried out (a 500 after the
// commit) is found and used; one it did not (a 500 before) is sent again.
// Either way the workspace ends with one job.
func TestJobCreateWithoutAClearAnswerLooksFirst(t *testing.T) {
	eachMode(t, testJobCreateWithoutAClearAnswerLooksFirst)
}

func testJobCreateWithoutAClearAnswerLooksFirst(t *testing.T, newW func(*testing.T) *world) {
	for _, tc := range []struct {
		fault   emulator.FaultKind
		creates int
	}{
		{emulator.Fault500AfterCommit, 1}, // the job exists: found, not created again
		{emulator.Fault500, 2},            // nothing was made: created again
	} {
		t.Run(string(tc.fault), func(t *testing.T) {
			w := newW(t)
			w.ws.SetFaults(emulator.FaultPlan{Rules: []emulator.FaultRule{
				{Prefix: "/api/2.2/jobs/create", Method: "POST", Rate: 1, Kinds: []emulator.FaultKind{tc.fault}, Limit: 1},
			}})
			res := w.run(t, inputs())
			require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
			all := w.jobs(t)
			require.Len(t, all, 1, "BatchScore created the job again after a jobs/create without a clear answer (%s) instead of finding the one it made", tc.fault)
			assert.Equal(t, strconv.FormatInt(all[0].JobId, 10), res.Outputs["jobId"], "the task reports the job it found")
			assert.Len(t, w.ws.RequestsTo("POST", "/api/2.2/jobs/create"), tc.creates,
				"jobs/create sent again only when the look-up after the %s found no job", tc.fault)
			assert.Len(t, w.runNows(), 1, "one scoring run")
		})
	}
}

func TestCancellationCancelsTheRun(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *agenttest.Result)
	go func() {
		done <- agenttest.Run{Task: "BatchScore", Inputs: inputs(), Env: w.nextPipelineRun()}.InProcessContext(ctx, t, w.registryWallClock(t))
	}()
	require.Eventually(t, func() bool { return len(w.ws.RequestsTo("GET", "/api/2.2/jobs/runs/get")) > 0 }, 10*time.Second, 5*time.Millisecond)
	cancel()
	var res *agenttest.Result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the task did not stop after cancellation")
	}
	assert.Equal(t, agent.Canceled, res.Result, res.Stdout)
	cancels := w.ws.RequestsTo("POST", "/api/2.2/jobs/runs/cancel")
	require.Len(t, cancels, 1)
	assert.Contains(t, string(cancels[0].Raw), res.Outputs["runId"])
}

func TestTimeoutCancelsTheRun(t *testing.T) {
	w := newWorld(t)
	w.ws.OnNotebook(shippedPath, emulator.Behaviour{Duration: 3 * time.Hour})
	res := w.run(t, inputs("timeoutMinutes", "30"))
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Contains(t, res.Errors[0], "did not finish within 30m0s; the run was cancelled")
	assert.Len(t, w.ws.RequestsTo("POST", "/api/2.2/jobs/runs/cancel"), 1)
}

// newExeWorld is a world whose task runs are the built brickferry executable,
// started as the agent starts it, connecting with the token method
// (agenttest.Run.WithToken) over https: the emulator serves
// it with a certificate of its own CA, given to the task as the agent's
// Agent.CAInfo.
func newExeWorld(t *testing.T) *world {
	t.Helper()
	ca, caFile := emulator.TestCA(t)
	// The workspace's clock starts at the agent's time, as a real
	// workspace's does. From a fixed date days in the past, every run's
	// start_time would look days old at the first runs/get, so the waiter
	// would take it for a run started by an earlier try of the step
	// (runwait's takenOver) and poll it every 9 s (LongInterval): nine
	// seconds of wall time per task run.
	w := startWorld(t, ca, time.Now())
	w.caFile = caFile
	w.exe = agenttest.Executable(t)
	w.host = w.ws.URL()
	return w
}

// agentRun is the task run as the agent would start it for this world.
func (w *world) agentRun(in map[string]string) agenttest.Run {
	env := w.nextPipelineRun()
	env["AGENT_CAINFO"] = w.caFile
	return agenttest.Run{Task: "BatchScore", Inputs: in, Env: env}.WithToken(w.host, w.ws.Token)
}

// tick moves the emulator's clock while a process runs on the wall clock:
// 5 simulated seconds every 5 ms, so a four-minute scoring run takes about
// a quarter of a second. The returned function stops it.
func (w *world) tick() func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				w.clock.Advance(5 * time.Second)
			}
		}
	}()
	return func() { close(stop); <-done }
}

// eachMode runs a scenario through the built executable (as the agent runs
// it, with auth wired) and in-process (fast, under the race detector).
func eachMode(t *testing.T, scenario func(t *testing.T, newW func(*testing.T) *world)) {
	t.Run("executable", func(t *testing.T) { scenario(t, newExeWorld) })
	t.Run("in-process", func(t *testing.T) { scenario(t, newWorld) })
}

// TestSIGINTCancelsTheRun: the agent cancels a step with SIGINT; the task
// cancels the Databricks run and ends Canceled.
func TestSIGINTCancelsTheRun(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT on Windows")
	}
	w := newExeWorld(t)
	w.ws.OnNotebook(shippedPath, emulator.Behaviour{Duration: 3 * time.Hour})
	p := w.agentRun(inputs()).Start(t, w.exe)
	require.Eventually(t, func() bool { return len(w.ws.RequestsTo("GET", "/api/2.2/jobs/runs/get")) >= 2 }, 20*time.Second, 10*time.Millisecond, p.Stdout())
	require.NoError(t, p.Cmd.Process.Signal(os.Interrupt))
	res := p.Finish(t)
	assert.Equal(t, 0, res.ExitCode)
	assert.Equal(t, agent.Canceled, res.Result, res.Stdout)
	assert.Equal(t, 1, res.Completions)
	cancels := w.ws.RequestsTo("POST", "/api/2.2/jobs/runs/cancel")
	require.Len(t, cancels, 1)
	assert.Contains(t, string(cancels[0].Raw), res.Outputs["runId"])
	assert.Contains(t, strings.Join(res.Warnings, "\n"), "was cancelled")
	run, err := jobs.NewJobs(w.sdk(t)).GetRun(context.Background(), jobs.GetRunRequest{RunId: mustInt(t, res.Outputs["runId"])})
	require.NoError(t, err)
	assert.NotEqual(t, jobs.RunLifeCycleStateRunning, run.State.LifeCycleState)
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err, s)
	return n
}

// TestBadInputsFailBeforeAnyRemoteCall: every bad input is reported with
// its label, and the workspace sees no request at all (no write, no read).
func TestBadInputsFailBeforeAnyRemoteCall(t *testing.T) {
	eachMode(t, testBadInputsFailBeforeAnyRemoteCall)
}

func testBadInputsFailBeforeAnyRemoteCall(t *testing.T, newW func(*testing.T) *world) {
	for _, tc := range []struct {
		name    string
		inputs  map[string]string
		problem string
	}{
		{"input table with four parts", inputs("inputTable", "a.b.c.d"), "'Input table' (inputTable): \"a.b.c.d\" is not a table name"},
		{"input table with a space", inputs("inputTable", "main.ml.cust omers"), "is not a table name"},
		{"output table with one part", inputs("outputTable", "predictions"), "'Output table' (outputTable): \"predictions\" has 1 part(s): write catalog.schema.table or schema.table"},
		{"output table with an empty part", inputs("outputTable", "main..p"), "is not a table name"},
		{"output table is the input", inputs("outputTable", "MAIN.ml.`customers`"), "is the input table"},
		{"run URI", inputs("modelUri", "runs:/0f1e2d/model"), "'Model URI' (modelUri): \"runs:/0f1e2d/model\" is not a models:/ URI"},
		{"URI without a stage", inputs("modelUri", "models:/churn"), "names no stage, alias or version"},
		{"unknown stage", inputs("modelUri", "models:/churn/Prod"), "\"Prod\" is neither a version number nor a stage"},
		{"latest", inputs("modelUri", "models:/churn/latest"), "rather than latest"},
		{"unexpanded variable", inputs("modelUri", "$(promote.modelUri)"), "the macro $(promote.modelUri) was not expanded"},
		{"bad alias", inputs("modelUri", "models:/main.ml.churn@champion!"), "the alias"},
		{"two-part model name", inputs("modelUri", "models:/ml.churn/3"), "the model name"},
		{"stage on a Unity Catalog model", inputs("modelUri", "models:/main.ml.churn/Production"),
			"'Model URI' (modelUri): \"models:/main.ml.churn/Production\": main.ml.churn is a Unity Catalog model, which has no stages: write models:/main.ml.churn@<alias>"},
		{"alias on a workspace registry model", inputs("modelUri", "models:/churn@champion"),
			"'Model URI' (modelUri): \"models:/churn@champion\": churn is a workspace model registry model, which has no aliases: write models:/churn/<stage> (one of None, Staging, Production, Archived)"},
		{"merge without keys", inputs("writeMode", "merge"), "'Merge keys' (mergeKeys): is required"},
		{"merge key not an id column", inputs("writeMode", "merge", "mergeKeys", "Email"), "\"Email\" is not one of the id columns (CodigoCliente)"},
		{"unknown write mode", inputs("writeMode", "upsert"), "\"upsert\" is not one of: append, merge, overwrite"},
		{"unix cron", inputs("scheduleCron", "0 2 * * *"), "has 5 fields like a Unix cron expression"},
		{"hour 25", inputs("scheduleCron", "0 0 25 * * ?"), "hours field \"25\": \"25\" is not a number from 0 to 23"},
		{"day of month and of week", inputs("scheduleCron", "0 0 2 * * MON"), "put ? in day-of-month or in day-of-week"},
		{"bad month name", inputs("scheduleCron", "0 0 2 ? JANUARY MON"), "month field"},
		{"unknown time zone", inputs("scheduleCron", "0 0 2 * * ?", "scheduleTimeZone", "Mars/Olympus"), "'Schedule time zone' (scheduleTimeZone): \"Mars/Olympus\" is not a time zone"},
		{"abbreviation", inputs("scheduleTimeZone", "CEST"), "\"CEST\" is not a time zone"},
		{"minimum rows not a number", inputs("minRows", "ten"), "'Minimum rows written' (minRows): \"ten\" is not a whole number"},
		{"negative minimum", inputs("minRows", "-1"), "\"-1\" is not a whole number"},
		{"timeout", inputs("timeoutMinutes", "soon"), "'Timeout (minutes)' (timeoutMinutes): \"soon\" is not a number of minutes"},
		{"workers", inputs("workers", "two"), "\"two\" is not a number of workers"},
		{"autoscale backwards", inputs("autoscale", "8-2"), "\"8-2\" is not a range of workers"},
		{"workers and autoscale", inputs("workers", "2", "autoscale", "2-8"), "cannot be combined with Workers"},
		{"existing cluster without id", inputs("compute", "existingCluster"), "'Cluster id' (clusterId): is required"},
		{"relative folder", inputs("notebookFolder", "Shared/brickferry"), "is not an absolute workspace path"},
		{"own notebook without path", inputs("notebookSource", "workspace"), "'Notebook path' (notebookPath): is required"},
		{"parameter the task sets", inputs("notebookParameters", "model_uri=models:/other/1"), "\"model_uri\" is set by the task"},
		{"warehouse id", inputs("sqlWarehouseId", "abc/def"), "is not a SQL warehouse id"},
		{"unexpanded warehouse variable", inputs("sqlWarehouseId", "$(sql-warehouse-id-prod)"), "'SQL warehouse id' (sqlWarehouseId): the macro $(sql-warehouse-id-prod) was not expanded"},
		{"job takeover not a boolean", inputs("allowJobTakeover", "maybe"), "'Allow taking over the job or removing its schedule' (allowJobTakeover): \"maybe\" is not a boolean"},
		{"files without a path", inputs("inputType", "path"), "'Input path' (inputPath): is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newW(t)
			res := w.run(t, tc.inputs)
			require.Equal(t, agent.Failed, res.Result, res.Stdout)
			require.NotEmpty(t, res.Errors)
			assert.Contains(t, strings.Join(res.Errors, "\n"), tc.problem)
			assert.Empty(t, w.ws.Requests(), "no request before the inputs are valid")
			assert.Zero(t, w.ws.Writes())
		})
	}
}

func TestEveryBadInputIsReportedAtOnce(t *testing.T) { eachMode(t, testEveryBadInputIsReportedAtOnce) }

func testEveryBadInputIsReportedAtOnce(t *testing.T, newW func(*testing.T) *world) {
	w := newW(t)
	res := w.run(t, inputs("inputTable", "a.b.c.d", "modelUri", "runs:/x/model", "writeMode", "merge",
		"scheduleCron", "* * * * *", "scheduleTimeZone", "Nowhere", "minRows", "x"))
	require.Equal(t, agent.Failed, res.Result)
	assert.Len(t, res.Errors, 6, strings.Join(res.Errors, "\n"))
	assert.Equal(t, "6 problems, see the errors above", res.Message)
	assert.Empty(t, w.ws.Requests())
}

func TestGoodInputs(t *testing.T) {
	def, err := tasks.Definition("BatchScore")
	require.NoError(t, err)
	read := func(kv map[string]string) (batchscore.Options, error) {
		env := agent.Env{}
		for k, v := range kv {
			env["INPUT_"+agent.VariableKey(k)] = v
		}
		in := def.InputsFrom(env)
		o := batchscore.ReadOptions(in)
		return o, in.Err()
	}
	o, err := read(inputs("outputTable", "`my-cat`.ml.`pred table`", "modelUri", "models:/main.ml.churn@champion",
		"scheduleCron", "0 0/15 8-18 ? * MON-FRI *", "scheduleTimeZone", "America/Argentina/Buenos_Aires",
		"compute", "newCluster", "autoscale", "1-4", "instancePoolId", "0101-120000-pool12-abcdefgh", "nodeType", "",
		"timeoutMinutes", "0.5", "minRows", "0"))
	require.NoError(t, err)
	assert.Equal(t, batchscore.ModelURI{URI: "models:/main.ml.churn@champion", Name: "main.ml.churn", Kind: "alias", Ref: "champion"}, o.Model)
	assert.Equal(t, "0 0/15 8-18 ? * MON-FRI *", o.Schedule.Cron)
	assert.Equal(t, "/Shared/brickferry/batch_score", o.NotebookPath)
	assert.True(t, o.Shipped)
	assert.Equal(t, int64(0), o.MinRows)
	assert.Equal(t, "new job cluster 17.3.x-cpu-ml-scala2.13, pool 0101-120000-pool12-abcdefgh, 1-4 workers", o.Compute.String())
	assert.Equal(t, 30, int(o.Timeout.Seconds()))
	s := o.JobSettings(agent.System{})
	require.Len(t, s.JobClusters, 1)
	nc := s.JobClusters[0].NewCluster
	assert.Equal(t, "0101-120000-pool12-abcdefgh", nc.InstancePoolId)
	assert.Equal(t, "0101-120000-pool12-abcdefgh", nc.DriverInstancePoolId)
	assert.Empty(t, nc.NodeTypeId)
	require.NotNil(t, nc.Autoscale)
	assert.Equal(t, 4, nc.Autoscale.MaxWorkers)

	for uri, want := range map[string]batchscore.ModelURI{
		"models:/churn/production": {Name: "churn", Kind: "stage", Ref: "Production"},
		"models:/churn/3":          {Name: "churn", Kind: "version", Ref: "3"},
		"models:/main.ml.churn/12": {Name: "main.ml.churn", Kind: "version", Ref: "12"},
	} {
		got, err := batchscore.ParseModelURI(uri)
		require.NoError(t, err, uri)
		want.URI = uri
		assert.Equal(t, want, got)
	}

	o, err = read(inputs("compute", "serverless", "notebookSource", "workspace", "notebookPath", "/Repos/x/score/"))
	require.NoError(t, err)
	assert.Equal(t, "/Repos/x/score", o.NotebookPath)
	s = o.JobSettings(agent.System{})
	assert.Empty(t, s.JobClusters)
	assert.Empty(t, s.Tasks[0].JobClusterKey)
	assert.Empty(t, s.Tasks[0].ExistingClusterId)

	o, err = read(inputs("compute", "existingCluster", "clusterId", "0101-120000-abcdefgh", "singleNode", "true"))
	require.NoError(t, err)
	s = o.JobSettings(agent.System{})
	assert.Equal(t, "0101-120000-abcdefgh", s.Tasks[0].ExistingClusterId)

	o, err = read(inputs("singleNode", "true"))
	require.NoError(t, err)
	nc = o.JobSettings(agent.System{}).JobClusters[0].NewCluster
	assert.Equal(t, "singleNode", nc.SparkConf["spark.databricks.cluster.profile"])
	assert.Equal(t, 0, nc.NumWorkers)
	assert.Contains(t, nc.ForceSendFields, "NumWorkers")
}
