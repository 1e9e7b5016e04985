package batchscore_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
)

// defaults are a step's inputs with no job name: the job is then named
// after the output table.
func defaults(outputTable string, extra ...string) map[string]string {
	in := inputs(extra...)
	delete(in, "jobName")
	in["outputTable"] = outputTable
	return in
}

// writesBeforeTheRun are the requests that change the job or upload the
// notebook.
func (w *world) writesBeforeTheRun() int {
	return len(w.ws.RequestsTo("POST", "/api/2.2/jobs/create")) + len(w.ws.RequestsTo("POST", "/api/2.2/jobs/reset")) + len(w.imports())
}

func TestTwoPipelinesWithDefaultSettingsKeepTwoJobs(t *testing.T) {
	eachMode(t, testTwoPipelinesWithDefaultSettingsKeepTwoJobs)
}

func testTwoPipelinesWithDefaultSettingsKeepTwoJobs(t *testing.T, newW func(*testing.T) *world) {
	w := newW(t)
	w.runAs("12", "churn-scoring")
	a := w.run(t, defaults("main.ml.churn_predictions", "scheduleCron", "0 0 2 * * ?"))
	require.Equal(t, agent.Succeeded, a.Result, a.Stdout)
	w.runAs("34", "churn-weekly")
	b := w.run(t, defaults("main.ml.churn_weekly", "scheduleCron", "0 0 3 ? * MON"))
	require.Equal(t, agent.Succeeded, b.Result, b.Stdout)

	all := w.jobs(t)
	require.Len(t, all, 2, "one job per output table")
	byName := map[string]*jobs.JobSettings{}
	for _, j := range all {
		byName[j.Settings.Name] = j.Settings
	}
	da, db := byName["brickferry-score-main.ml.churn_predictions"], byName["brickferry-score-main.ml.churn_weekly"]
	require.NotNil(t, da, "names: %v", byName)
	require.NotNil(t, db, "names: %v", byName)
	assert.Equal(t, "0 0 2 * * ?", da.Schedule.QuartzCronExpression, "the first pipeline's schedule is intact")
	assert.Equal(t, "0 0 3 ? * MON", db.Schedule.QuartzCronExpression)
	project := "6c1a5f3e-3d4b-4a5e-9b8e-0a1b2c3d4e5f" // agenttest's System.TeamProjectId
	assert.Equal(t, map[string]string{"brickferry-task": "BatchScore", "brickferry-pipeline-id": project + "/12", "brickferry-pipeline": "mlops/churn-scoring"}, da.Tags)
	assert.Equal(t, project+"/34", db.Tags["brickferry-pipeline-id"])
	assert.NotEqual(t, a.Outputs["jobId"], b.Outputs["jobId"])
}

func TestAnotherPipelinesJobIsLeftAlone(t *testing.T) {
	eachMode(t, testAnotherPipelinesJobIsLeftAlone)
}

func testAnotherPipelinesJobIsLeftAlone(t *testing.T, newW func(*testing.T) *world) {
	w := newW(t)
	w.runAs("12", "churn-scoring")
	first := w.run(t, defaults("main.ml.churn_predictions", "scheduleCron", "0 0 2 * * ?", "idColumns", "CodigoCliente"))
	require.Equal(t, agent.Succeeded, first.Result, first.Stdout)
	id := mustInt(t, first.Outputs["jobId"])
	before, err := w.job(t, id).Settings.MarshalJSON()
	require.NoError(t, err)

	// Another pipeline writes the same table with its own settings.
	w.runAs("34", "churn-adhoc")
	w.ws.ResetRequests()
	res := w.run(t, defaults("main.ml.churn_predictions", "idColumns", "Email"))
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	require.Len(t, res.Errors, 1)
	msg := res.Errors[0]
	assert.Contains(t, msg, `the job "brickferry-score-main.ml.churn_predictions" (`+first.Outputs["jobId"]+") was left unchanged")
	assert.Contains(t, msg, "it belongs to pipeline mlops/churn-scoring")
	assert.Contains(t, msg, "its schedule (or trigger) would be removed")
	assert.Contains(t, msg, "allowJobTakeover: true")
	for _, line := range []string{
		`~ parameters.id_columns: "CodigoCliente" → "Email"`,
		`- schedule.quartz_cron_expression: "0 0 2 * * ?"`,
		`~ tags.brickferry-pipeline-id: "6c1a5f3e-3d4b-4a5e-9b8e-0a1b2c3d4e5f/12" → "6c1a5f3e-3d4b-4a5e-9b8e-0a1b2c3d4e5f/34"`,
	} {
		assert.Contains(t, res.Stdout, line, "the diff is in the log")
	}
	after, err := w.job(t, id).Settings.MarshalJSON()
	require.NoError(t, err)
	assert.JSONEq(t, string(before), string(after), "the job is unchanged")
	assert.Zero(t, w.writesBeforeTheRun())
	assert.Empty(t, w.runNows())

	// Allowed: the job changes hands.
	res = w.run(t, defaults("main.ml.churn_predictions", "idColumns", "Email", "allowJobTakeover", "true"))
	require.Equal(t, agent.SucceededWithIssues, res.Result, res.Stdout)
	s := w.job(t, id).Settings
	assert.Equal(t, "6c1a5f3e-3d4b-4a5e-9b8e-0a1b2c3d4e5f/34", s.Tags["brickferry-pipeline-id"])
	assert.Nil(t, s.Schedule)
	assert.Len(t, w.jobs(t), 1)
}

// TestAJobMadeByHandIsLeftAlone: a job of the same name that the task did
// not make is not reset.
func TestAJobMadeByHandIsLeftAlone(t *testing.T) {
	w := newWorld(t)
	made, err := jobs.NewJobs(w.sdk(t)).Create(context.Background(), jobs.CreateJob{Name: "brickferry-score-main.ml.churn_predictions",
		Tasks: []jobs.Task{{TaskKey: "nightly", NotebookTask: &jobs.NotebookTask{NotebookPath: "/Users/ana/score"}}}})
	require.NoError(t, err)
	w.ws.ResetRequests()
	res := w.run(t, defaults("main.ml.churn_predictions"))
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Contains(t, res.Errors[0], "it was not made by the BatchScore task")
	assert.Contains(t, res.Stdout, `- tasks.nightly.notebook_task.notebook_path: "/Users/ana/score"`)
	assert.Contains(t, res.Stdout, `+ tasks.score.notebook_task.notebook_path: "/Shared/brickferry/batch_score"`)
	assert.Zero(t, w.writesBeforeTheRun())
	assert.Equal(t, "nightly", w.job(t, made.JobId).Settings.Tasks[0].TaskKey)
}

func TestModelTypoLeavesTheJobUnchanged(t *testing.T) {
	eachMode(t, testModelTypoLeavesTheJobUnchanged)
}

func testModelTypoLeavesTheJobUnchanged(t *testing.T, newW func(*testing.T) *world) {
	w := newW(t)
	ok := w.run(t, inputs("scheduleCron", "0 0 2 * * ?"))
	require.Equal(t, agent.Succeeded, ok.Result, ok.Stdout)
	id := mustInt(t, ok.Outputs["jobId"])
	before, err := w.job(t, id).Settings.MarshalJSON()
	require.NoError(t, err)
	w.ws.FailRegistration("broken", "the model files are missing")
	w.registerModel(t, "broken", 1, "")

	for _, tc := range []struct{ uri, problem string }{
		{"models:/chrun/Production", "input modelUri: registered model chrun not found in the workspace model registry"},
		{"models:/churn/Staging", "input modelUri: no version of churn is in stage Staging"},
		{"models:/churn/7", "input modelUri: version 7 of churn not found"},
		{"models:/broken/1", "input modelUri: version 1 of broken is FAILED_REGISTRATION (the model files are missing), not READY"},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			w.ws.ResetRequests()
			res := w.run(t, inputs("modelUri", tc.uri, "scheduleCron", "0 0 2 * * ?"))
			require.Equal(t, agent.Failed, res.Result, res.Stdout)
			require.Len(t, res.Errors, 1)
			assert.Contains(t, res.Errors[0], tc.problem)
			after, err := w.job(t, id).Settings.MarshalJSON()
			require.NoError(t, err)
			assert.JSONEq(t, string(before), string(after), "the job keeps the model it had")
			assert.Zero(t, w.writesBeforeTheRun())
			assert.Empty(t, w.runNows())
		})
	}
}

func TestMissingComputeAndWarehouseFailBeforeAnyChange(t *testing.T) {
	eachMode(t, testMissingComputeAndWarehouseFailBeforeAnyChange)
}

func testMissingComputeAndWarehouseFailBeforeAnyChange(t *testing.T, newW func(*testing.T) *world) {
	w := newW(t)
	w.ws.AddInstancePool(compute.GetInstancePool{InstancePoolId: "0101-120000-pool12-abcdefgh", InstancePoolName: "ml"})
	w.ws.AddClusterPolicy(compute.Policy{PolicyId: "E0123456789ABCDEF", Name: "jobs"})
	w.ws.AddCluster(compute.ClusterDetails{ClusterId: "0101-120000-abcdefgh", ClusterName: "shared"})

	good := w.run(t, inputs("instancePoolId", "0101-120000-pool12-abcdefgh", "nodeType", "", "policyId", "E0123456789ABCDEF", "sqlWarehouseId", warehouse))
	require.Equal(t, agent.Succeeded, good.Result, good.Stdout)
	assert.Contains(t, good.Stdout, "SQL warehouse "+warehouse+": found.")
	good = w.run(t, inputs("compute", "existingCluster", "clusterId", "0101-120000-abcdefgh"))
	require.Equal(t, agent.Succeeded, good.Result, good.Stdout)

	w.ws.ResetRequests()
	res := w.run(t, inputs("instancePoolId", "0101-120000-pool99-zzzzzzzz", "nodeType", "", "policyId", "E0000000000000000", "sqlWarehouseId", "0000deadbeef"))
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	msg := strings.Join(res.Errors, "\n")
	assert.Len(t, res.Errors, 3, "every problem at once:\n%s", msg)
	assert.Contains(t, msg, "input instancePoolId: there is no instance pool 0101-120000-pool99-zzzzzzzz")
	assert.Contains(t, msg, "input policyId: there is no cluster policy E0000000000000000")
	assert.Contains(t, msg, "input sqlWarehouseId: there is no SQL warehouse 0000deadbeef")
	assert.Zero(t, w.writesBeforeTheRun())

	res = w.run(t, inputs("compute", "existingCluster", "clusterId", "0101-120000-zzzzzzzz"))
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Contains(t, res.Errors[0], "input clusterId: there is no cluster 0101-120000-zzzzzzzz")
	assert.Zero(t, w.writesBeforeTheRun())
	assert.Empty(t, w.runNows())
	assert.Len(t, w.jobs(t), 1, strconv.Itoa(len(w.jobs(t))))
}
