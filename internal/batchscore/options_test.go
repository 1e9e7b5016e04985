package batchscore_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/batchscore"
	"github.com/brickferry/brickferry/tasks"
)

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
		{"unexpanded variable", inputs("modelUri", "$(promote.modelUri)"), "looks like a pipeline variable that was not expanded"},
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
		{"no job name", inputs("jobName", ""), "'Job name' (jobName): is required"},
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
	assert.Equal(t, "new job cluster 15.4.x-cpu-ml-scala2.12, pool 0101-120000-pool12-abcdefgh, 1-4 workers", o.Compute.String())
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
