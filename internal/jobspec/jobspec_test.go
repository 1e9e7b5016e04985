package jobspec_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/jobspec"
	"github.com/brickferry/brickferry/internal/testworld"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/fixtures"
)

func TestMain(m *testing.M) { testworld.Main(m) }

func TestReferencePipelineFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtures.SeedJobs(t), "*.json"))
	require.NoError(t, err)
	require.Len(t, files, 6)
	ws := emulator.Start(t, emulator.Options{})
	api := jobs.NewJobs(ws.Client(t))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			spec, err := jobspec.Parse(data)
			require.NoError(t, err)
			assert.True(t, spec.SingleTask)
			assert.ElementsMatch(t, []string{"new_cluster.azure_attributes", "new_cluster.num_workers"}, spec.Duplicates)
			assert.Empty(t, spec.Unknown)
			require.Len(t, spec.Settings.Tasks, 1)
			task := spec.Settings.Tasks[0]
			assert.NotEmpty(t, task.TaskKey)
			require.NotNil(t, task.NotebookTask)
			assert.Contains(t, task.NotebookTask.NotebookPath, "/Repos/")
			// Last one wins: the second azure_attributes, num_workers 0 kept.
			nc := task.NewCluster
			require.NotNil(t, nc)
			require.NotNil(t, nc.AzureAttributes)
			assert.Equal(t, 1, nc.AzureAttributes.FirstOnDemand)
			assert.EqualValues(t, "ON_DEMAND_AZURE", nc.AzureAttributes.Availability)
			assert.Equal(t, "singleNode", nc.SparkConf["spark.databricks.cluster.profile"])
			assert.Empty(t, spec.Settings.Format, "SINGLE_TASK no longer applies")

			run, dropped, err := spec.SubmitRun()
			require.NoError(t, err)
			assert.Contains(t, dropped, "max_concurrent_runs")
			raw, err := json.Marshal(run)
			require.NoError(t, err)
			var m map[string]any
			require.NoError(t, json.Unmarshal(raw, &m))
			cluster := m["tasks"].([]any)[0].(map[string]any)["new_cluster"].(map[string]any)
			assert.Equal(t, 0.0, cluster["num_workers"], "num_workers: 0 must be sent (single node)")
			assert.Equal(t, spec.Settings.Name, run.RunName)
			// The emulator decodes strictly into the SDK's request types.
			_, err = api.Submit(context.Background(), run)
			require.NoError(t, err)

			create, err := spec.CreateJob()
			require.NoError(t, err)
			assert.Equal(t, 1, create.MaxConcurrentRuns)
			_, err = api.Create(context.Background(), create)
			require.NoError(t, err)
		})
	}
}

func TestTasksShapeWithJobClusters(t *testing.T) {
	spec, err := jobspec.Parse([]byte(`{
	  "name": "train",
	  "job_clusters": [{"job_cluster_key": "c", "new_cluster": {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 2}}],
	  "tasks": [
	    {"task_key": "prep", "job_cluster_key": "c", "notebook_task": {"notebook_path": "/prep"}, "max_retries": 2},
	    {"task_key": "train", "depends_on": [{"task_key": "prep"}], "job_cluster_key": "c",
	     "notebook_task": {"notebook_path": "/train", "base_parameters": {"a": "1"}}}
	  ],
	  "schedule": {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"},
	  "parameters": [{"name": "p", "default": "x"}]
	}`))
	require.NoError(t, err)
	assert.False(t, spec.SingleTask)
	assert.Empty(t, spec.Duplicates)
	run, dropped, err := spec.SubmitRun()
	require.NoError(t, err)
	require.Len(t, run.Tasks, 2)
	for _, task := range run.Tasks {
		require.NotNil(t, task.NewCluster, task.TaskKey)
		assert.Equal(t, 2, task.NewCluster.NumWorkers)
	}
	assert.Equal(t, "prep", run.Tasks[1].DependsOn[0].TaskKey)
	assert.ElementsMatch(t, []string{"schedule", "parameters", "tasks[0].max_retries"}, dropped)
}

func TestOtherShapes(t *testing.T) {
	for name, text := range map[string]string{
		"jobs/get output": `{"job_id": 7, "settings": {"name": "n", "tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/a"}}]}}`,
		"jobs/reset body": `{"job_id": 7, "new_settings": {"name": "n", "tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/a"}}]}}`,
		"runs/submit 2.0": `{"run_name": "n", "existing_cluster_id": "0101-abc", "spark_python_task": {"python_file": "dbfs:/a.py"}}`,
		"BOM":             "\uFEFF" + `{"name": "n", "tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/a"}}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			spec, err := jobspec.Parse([]byte(text))
			require.NoError(t, err)
			assert.Equal(t, "n", spec.Settings.Name)
			require.Len(t, spec.Settings.Tasks, 1)
		})
	}
}

func TestUnknownFieldsAreReportedAndNotSent(t *testing.T) {
	spec, err := jobspec.Parse([]byte(`{"name": "n", "colour": "red",
	  "tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/a", "notebook_parms": {}}}]}`))
	require.NoError(t, err)
	assert.Equal(t, []string{"colour", "tasks[0].notebook_task.notebook_parms"}, spec.Unknown)
	run, _, err := spec.SubmitRun()
	require.NoError(t, err)
	raw, _ := json.Marshal(run)
	assert.NotContains(t, string(raw), "colour")
}

func TestBadFiles(t *testing.T) {
	for name, tc := range map[string]struct{ text, want string }{
		"empty":          {"  \n", "empty"},
		"syntax":         {"{\n  \"name\": \"x\",\n  \"tasks\": [,]\n}", "line 3"},
		"truncated":      {`{"name": "x", "tasks": [`, "ends too early"},
		"array":          {`[1, 2]`, "JSON object"},
		"trailing":       {`{"name": "x", "notebook_task": {"notebook_path": "/a"}} {}`, "after the JSON object"},
		"no tasks":       {`{"name": "x"}`, "no tasks"},
		"both shapes":    {`{"tasks": [{"task_key": "a"}], "notebook_task": {"notebook_path": "/a"}}`, "both"},
		"wrong type":     {`{"name": "x", "notebook_task": {"notebook_path": "/a"}, "new_cluster": {"num_workers": "two"}}`, "Jobs API"},
		"duplicate key":  {`{"tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/a"}}, {"task_key": "a", "notebook_task": {"notebook_path": "/b"}}]}`, "two tasks"},
		"missing dep":    {`{"tasks": [{"task_key": "a", "depends_on": [{"task_key": "z"}], "notebook_task": {"notebook_path": "/a"}}]}`, `"z"`},
		"missing key":    {`{"tasks": [{"notebook_task": {"notebook_path": "/a"}}]}`, "task_key"},
		"no cluster key": {`{"tasks": [{"task_key": "a", "job_cluster_key": "c", "notebook_task": {"notebook_path": "/a"}}]}`, "job_cluster_key"},
		"no path":        {`{"tasks": [{"task_key": "a", "notebook_task": {}}]}`, "notebook_path"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := jobspec.Parse([]byte(tc.text))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
