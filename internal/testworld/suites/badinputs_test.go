package suites_test

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/tasks"
)

// badInput is one malformed step: the task's valid inputs for a command
// (base) with some replaced, and the inputs the errors must name.
type badInput struct {
	name string
	task string
	base map[string]string
	kv   []string // input name, value, ...: set over base
	vars map[string]string
	// want names the bad inputs, one error each, in any order: an input
	// name, whose error must carry "'Label' (name)", or the name of a
	// pipeline variable, which the error must mention.
	want []string
}

const run32 = "0123456789abcdef0123456789abcdef"

// Valid inputs of each task and command; every case breaks one or more.
var (
	trainOK     = map[string]string{"notebookPath": "/Repos/mlops/churn/notebooks/train", "workers": "1"}
	scoreOK     = map[string]string{"modelUri": "models:/churn/Production", "inputTable": "main.ml.customers", "idColumns": "CodigoCliente", "outputTable": "main.ml.churn_predictions", "jobName": "churn-batch-score"}
	registerOK  = map[string]string{"command": "register", "modelName": "churn", "modelUri": "runs:/" + run32 + "/model"}
	transOK     = map[string]string{"command": "transition", "modelName": "churn", "modelVersion": "3", "stage": "Production"}
	ucTransOK   = map[string]string{"command": "transition", "modelName": "main.ml.churn", "modelVersion": "3", "alias": "champion"}
	gateOK      = map[string]string{"command": "gate", "modelName": "churn", "modelVersion": "3", "stage": "Production", "metricName": "auc"}
	copyOK      = map[string]string{"command": "copy", "modelName": "churn", "modelVersion": "3", "targetModelName": "churn"}
	serveOK     = map[string]string{"endpointName": "churn-serving", "modelName": "churn", "modelVersion": "1", "smokeTestPayload": `{"dataframe_split": {"columns": ["a"], "data": [[1]]}}`}
	tokenMethod = []string{"connectionMethod", "token", "token", "dapi-not-a-real-token-0000"}
)

func badInputCases(dir string) []badInput {
	badJobFile := filepath.Join(dir, "job.json")
	notJSON := filepath.Join(dir, "payload.json")
	for path, content := range map[string]string{
		badJobFile: "{\n  \"name\": \"x\",\n  \"tasks\": [,]\n}",
		notJSON:    "{rows: 1}",
	} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			panic(err)
		}
	}
	const T, S, P, M = "DatabricksTrain", "BatchScore", "MLflowPromote", "ModelServe"
	with := func(kv ...string) []string { return kv }
	return []badInput{
		// DatabricksTrain
		{"train/missing notebook path", T, trainOK, with("notebookPath", ""), nil, []string{"notebookPath"}},
		{"train/run type outside the list", T, trainOK, with("runType", "script"), nil, []string{"runType"}},
		{"train/compute outside the list", T, trainOK, with("compute", "gpu"), nil, []string{"compute"}},
		{"train/code source outside the list", T, trainOK, with("codeSource", "s3"), nil, []string{"codeSource"}},
		{"train/workers text", T, trainOK, with("workers", "two"), nil, []string{"workers"}},
		{"train/workers negative", T, trainOK, with("workers", "-1"), nil, []string{"workers"}},
		{"train/workers and autoscale", T, trainOK, with("autoscale", "2-8"), nil, []string{"autoscale"}},
		{"train/autoscale upside down", T, trainOK, with("workers", "", "autoscale", "8-2"), nil, []string{"autoscale"}},
		{"train/timeout zero", T, trainOK, with("timeoutMinutes", "0"), nil, []string{"timeoutMinutes"}},
		{"train/timeout text", T, trainOK, with("timeoutMinutes", "ten"), nil, []string{"timeoutMinutes"}},
		{"train/timeout negative", T, trainOK, with("timeoutMinutes", "-5"), nil, []string{"timeoutMinutes"}},
		{"train/parameter without =", T, trainOK, with("parameters", "alpha=1\nbeta"), nil, []string{"parameters"}},
		{"train/spark conf without =", T, trainOK, with("sparkConf", "spark.x"), nil, []string{"sparkConf"}},
		{"train/job file does not parse", T, nil, with("runType", "jobFile", "jobFile", badJobFile), nil, []string{"jobFile"}},
		{"train/job file missing", T, nil, with("runType", "jobFile", "jobFile", filepath.Join(dir, "nope.json")), nil, []string{"jobFile"}},
		{"train/existing cluster without id", T, trainOK, with("compute", "existingCluster"), nil, []string{"clusterId"}},
		{"train/existing job missing", T, nil, with("runType", "existingJob"), nil, []string{"job"}},
		{"train/workers an unexpanded macro", T, trainOK, with("workers", "$(workers)"), nil, []string{"workers"}},
		{"train/job id zero", T, nil, with("runType", "existingJob", "job", "0"), nil, []string{"job"}},
		{"train/wheel without entry point", T, nil, with("runType", "pythonWheel", "wheelPackage", "p", "workers", "1"), nil, []string{"wheelEntryPoint"}},
		{"train/boolean not a boolean", T, trainOK, with("waitForCompletion", "maybe"), nil, []string{"waitForCompletion"}},
		{"train/maven coordinates", T, trainOK, with("libraries", "maven:com.a:b"), nil, []string{"libraries"}},
		{"train/unknown connection method", T, trainOK, with("connectionMethod", "ssh"), nil, []string{"connectionMethod"}},
		{"train/workspace URL http", T, trainOK, append(with("workspaceUrl", "http://adb-1.7.azuredatabricks.net"), tokenMethod...), nil, []string{"workspaceUrl"}},
		{"train/workspace URL with credentials", T, trainOK, append(with("workspaceUrl", "https://user:pw@adb-1.7.azuredatabricks.net"), tokenMethod...), nil, []string{"workspaceUrl"}},
		{"train/workspace URL without host", T, trainOK, append(with("workspaceUrl", "https://"), tokenMethod...), nil, []string{"workspaceUrl"}},
		{"train/two bad: notebook and timeout", T, trainOK, with("notebookPath", "", "timeoutMinutes", "x"), nil, []string{"notebookPath", "timeoutMinutes"}},
		{"train/two bad: workers and parameters", T, trainOK, with("workers", "two", "parameters", "beta"), nil, []string{"workers", "parameters"}},

		// BatchScore
		{"score/missing model URI", S, scoreOK, with("modelUri", ""), nil, []string{"modelUri"}},
		{"score/run URI", S, scoreOK, with("modelUri", "runs:/0f1e2d/model"), nil, []string{"modelUri"}},
		{"score/URI without version", S, scoreOK, with("modelUri", "models:/churn"), nil, []string{"modelUri"}},
		{"score/URI with unknown stage", S, scoreOK, with("modelUri", "models:/churn/Prod"), nil, []string{"modelUri"}},
		{"score/URI alias characters", S, scoreOK, with("modelUri", "models:/main.ml.churn@champion!"), nil, []string{"modelUri"}},
		{"score/URI UC name with two parts", S, scoreOK, with("modelUri", "models:/ml.churn/3"), nil, []string{"modelUri"}},
		{"score/URI stage on a UC model", S, scoreOK, with("modelUri", "models:/main.ml.churn/Production"), nil, []string{"modelUri"}},
		{"score/URI alias on a workspace registry model", S, scoreOK, with("modelUri", "models:/churn@champion"), nil, []string{"modelUri"}},
		{"score/input table with four parts", S, scoreOK, with("inputTable", "a.b.c.d"), nil, []string{"inputTable"}},
		{"score/output table with one part", S, scoreOK, with("outputTable", "predictions"), nil, []string{"outputTable"}},
		{"score/output table with an empty part", S, scoreOK, with("outputTable", "main..p"), nil, []string{"outputTable"}},
		{"score/write mode outside the list", S, scoreOK, with("writeMode", "upsert"), nil, []string{"writeMode"}},
		{"score/merge without keys", S, scoreOK, with("writeMode", "merge"), nil, []string{"mergeKeys"}},
		{"score/unix cron", S, scoreOK, with("scheduleCron", "0 2 * * *"), nil, []string{"scheduleCron"}},
		{"score/cron hour 25", S, scoreOK, with("scheduleCron", "0 0 25 * * ?"), nil, []string{"scheduleCron"}},
		{"score/unknown time zone", S, scoreOK, with("scheduleCron", "0 0 2 * * ?", "scheduleTimeZone", "Mars/Olympus"), nil, []string{"scheduleTimeZone"}},
		{"score/minimum rows text", S, scoreOK, with("minRows", "ten"), nil, []string{"minRows"}},
		{"score/minimum rows negative", S, scoreOK, with("minRows", "-1"), nil, []string{"minRows"}},
		{"score/timeout text", S, scoreOK, with("timeoutMinutes", "soon"), nil, []string{"timeoutMinutes"}},
		{"score/workers and autoscale", S, scoreOK, with("workers", "2", "autoscale", "2-8"), nil, []string{"autoscale"}},
		{"score/existing cluster without id", S, scoreOK, with("compute", "existingCluster"), nil, []string{"clusterId"}},
		{"score/job takeover not a boolean", S, scoreOK, with("allowJobTakeover", "yes"), nil, []string{"allowJobTakeover"}},
		{"score/parameter the task sets", S, scoreOK, with("notebookParameters", "model_uri=models:/other/1"), nil, []string{"notebookParameters"}},
		{"score/unknown connection method", S, scoreOK, with("connectionMethod", "carrier-pigeon"), nil, []string{"connectionMethod"}},
		{"score/workspace URL http", S, scoreOK, with("workspaceUrl", "http://adb-1.7.azuredatabricks.net"), nil, []string{"workspaceUrl"}},
		{"score/model URI an unexpanded macro", S, scoreOK, with("modelUri", "$(promote.modelUri)"), nil, []string{"modelUri"}},
		{"score/cluster id an unexpanded macro", S, scoreOK, with("compute", "existingCluster", "clusterId", "$(cluster-id)"), nil, []string{"clusterId"}},
		{"serve/version an unexpanded macro", M, serveOK, with("modelVersion", "$(copy.targetModelVersion)"), nil, []string{"modelVersion"}},
		{"score/two bad: merge keys and time zone", S, scoreOK, with("writeMode", "merge", "scheduleTimeZone", "CEST"), nil, []string{"mergeKeys", "scheduleTimeZone"}},

		// MLflowPromote, each command
		{"promote/command outside the list", P, transOK, with("command", "promote"), nil, []string{"command"}},
		{"register/missing model name", P, registerOK, with("modelName", ""), nil, []string{"modelName"}},
		{"register/URI without scheme", P, registerOK, with("modelUri", run32+"/model"), nil, []string{"modelUri"}},
		{"register/registry URI", P, registerOK, with("modelUri", "models:/churn/1"), nil, []string{"modelUri"}},
		{"register/timeout text", P, registerOK, with("timeoutMinutes", "ten"), nil, []string{"timeoutMinutes"}},
		{"register/tag without =", P, registerOK, with("versionTags", "team"), nil, []string{"versionTags"}},
		{"transition/stage outside the list", P, transOK, with("stage", "Prod"), nil, []string{"stage"}},
		{"transition/UC name with two parts", P, transOK, with("modelName", "ml.churn"), nil, []string{"modelName"}},
		{"transition/UC name with four parts", P, ucTransOK, with("modelName", "a.b.c.d"), nil, []string{"modelName"}},
		{"transition/alias characters", P, ucTransOK, with("alias", "champ ion!"), nil, []string{"alias"}},
		{"transition/version zero", P, transOK, with("modelVersion", "0"), nil, []string{"modelVersion"}},
		{"transition/version text", P, transOK, with("modelVersion", "v3"), nil, []string{"modelVersion"}},
		{"gate/missing metric", P, gateOK, with("metricName", ""), nil, []string{"metricName"}},
		{"gate/direction outside the list", P, gateOK, with("direction", "up"), nil, []string{"direction"}},
		{"gate/negative improvement", P, gateOK, with("minImprovement", "-0.1"), nil, []string{"minImprovement"}},
		{"gate/threshold text", P, gateOK, with("threshold", "high"), nil, []string{"threshold"}},
		{"gate/on-fail outside the list", P, gateOK, with("onGateFail", "ignore"), nil, []string{"onGateFail"}},
		{"copy/parallelism zero", P, copyOK, with("copyParallelism", "0"), nil, []string{"copyParallelism"}},
		{"copy/timeout negative", P, copyOK, with("copyTimeoutMinutes", "-1"), nil, []string{"copyTimeoutMinutes"}},
		{"copy/relative experiment", P, copyOK, with("targetExperiment", "Shared/churn"), nil, []string{"targetExperiment"}},
		{"copy/unknown target connection method", P, copyOK, with("targetConnectionMethod", "ftp"), nil, []string{"targetConnectionMethod"}},
		{"gate/two bad: stage and metric", P, gateOK, with("stage", "Sideways", "metricName", ""), nil, []string{"stage", "metricName"}},

		// ModelServe
		{"serve/endpoint name with a dot", M, serveOK, with("endpointName", "churn.serving"), nil, []string{"endpointName"}},
		{"serve/missing endpoint name", M, serveOK, with("endpointName", ""), nil, []string{"endpointName"}},
		{"serve/endpoint name too long", M, serveOK, with("endpointName", strings.Repeat("e", 64)), nil, []string{"endpointName"}},
		{"serve/missing model name", M, serveOK, with("modelName", ""), nil, []string{"modelName"}},
		{"serve/version text", M, serveOK, with("modelVersion", "latest"), nil, []string{"modelVersion"}},
		{"serve/version an alias of a UC model", M, serveOK, with("modelName", "main.ml.churn", "modelVersion", "@champion"), nil, []string{"modelVersion"}},
		{"serve/version a stage", M, serveOK, with("modelVersion", "Production"), nil, []string{"modelVersion"}},
		{"serve/traffic zero", M, serveOK, with("trafficPercent", "0"), nil, []string{"trafficPercent"}},
		{"serve/traffic 101", M, serveOK, with("trafficPercent", "101"), nil, []string{"trafficPercent"}},
		{"serve/traffic negative", M, serveOK, with("trafficPercent", "-5"), nil, []string{"trafficPercent"}},
		{"serve/traffic text", M, serveOK, with("trafficPercent", "half"), nil, []string{"trafficPercent"}},
		{"serve/workload size outside the list", M, serveOK, with("workloadSize", "Huge"), nil, []string{"workloadSize"}},
		{"serve/workload type outside the list", M, serveOK, with("workloadType", "TPU"), nil, []string{"workloadType"}},
		{"serve/if-in-progress outside the list", M, serveOK, with("ifUpdateInProgress", "queue"), nil, []string{"ifUpdateInProgress"}},
		{"serve/payload not JSON", M, serveOK, with("smokeTestPayload", "{rows: 1}"), nil, []string{"smokeTestPayload"}},
		{"serve/payload a list", M, serveOK, with("smokeTestPayload", "[1, 2]"), nil, []string{"smokeTestPayload"}},
		{"serve/payload file not JSON", M, serveOK, with("smokeTestPayload", "", "smokeTestPayloadFile", notJSON), nil, []string{"smokeTestPayloadFile"}},
		{"serve/timeout negative", M, serveOK, with("timeoutMinutes", "-5"), nil, []string{"timeoutMinutes"}},
		{"serve/tag without =", M, serveOK, with("tags", "team"), nil, []string{"tags"}},
		{"serve/workspace URL with credentials", M, serveOK, append(with("workspaceUrl", "https://user:pw@adb-1.7.azuredatabricks.net"), tokenMethod...), nil, []string{"workspaceUrl"}},
		{"serve/canary with all traffic", M, serveOK, with("canaryMinutes", "10"), nil, []string{"canaryMinutes"}},
		{"serve/canary error rate above 100", M, serveOK, with("trafficPercent", "10", "canaryMinutes", "10", "canaryMaxErrorRate", "101"), nil, []string{"canaryMaxErrorRate"}},
		{"serve/canary latency ratio below 1", M, serveOK, with("trafficPercent", "10", "canaryMinutes", "10", "canaryMaxLatencyRatio", "0.9"), nil, []string{"canaryMaxLatencyRatio"}},
		{"serve/inference table schema of one part", M, serveOK, with("inferenceTableSchema", "main"), nil, []string{"inferenceTableSchema"}},
		{"serve/rate limit key outside the list", M, serveOK, with("rateLimits", "tenant=5"), nil, []string{"rateLimits"}},
		{"serve/two bad: endpoint and traffic", M, serveOK, with("endpointName", "a b", "trafficPercent", "0"), nil, []string{"endpointName", "trafficPercent"}},
		{"serve/three bad: version, payload, size", M, serveOK, with("modelVersion", "x", "smokeTestPayload", "{", "workloadSize", "Huge"), nil, []string{"modelVersion", "smokeTestPayload", "workloadSize"}},
	}
}

// TestBadInputs runs every task and command of the built executable with
// malformed inputs against one https workspace per task. Each step must
// fail (result Failed, exit code 0) with one error issue per bad input that
// names it, before any request reaches the workspace.
func TestBadInputs(t *testing.T) {
	start := time.Now()
	exe := agenttest.Executable(t)
	cases := badInputCases(t.TempDir())
	require.GreaterOrEqual(t, len(cases), 60)

	workspaces := map[string]*emulator.Workspace{}
	for _, task := range []string{"DatabricksTrain", "BatchScore", "MLflowPromote", "ModelServe"} {
		workspaces[task] = startWorkspace(t, emulator.Options{Name: task})
	}
	seen := map[string]bool{}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			require.False(t, seen[tc.name], "case names are unique: %s", tc.name)
			seen[tc.name] = true
			ws := workspaces[tc.task]
			require.NotNil(t, ws, tc.task)
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				def, err := tasks.Definition(tc.task)
				require.NoError(t, err)
				in := maps.Clone(tc.base)
				if in == nil {
					in = map[string]string{}
				}
				for i := 0; i+1 < len(tc.kv); i += 2 {
					in[tc.kv[i]] = tc.kv[i+1]
				}
				run := agentRun(t, ws, tc.task, in, nil)
				if len(tc.vars) > 0 {
					run.Variables = maps.Clone(tc.vars)
				}

				res := run.Exec(t, exe)
				errs := strings.Join(res.Errors, "\n")
				assert.Equal(t, agent.Failed, res.Result, "stdout:\n%s", res.Stdout)
				assert.Equal(t, 0, res.ExitCode, "under the agent the executable exits 0: %s", res.Stderr)
				assert.Equal(t, 1, res.Completions)
				assert.Len(t, res.Errors, len(tc.want), "one error per bad input:\n%s", errs)
				for _, name := range tc.want {
					mention := name
					if d, ok := def.Input(name); ok {
						mention = "'" + d.Label + "' (" + name + ")"
					}
					assert.Contains(t, errs, mention, "an error names the input")
				}
				// The workspace is shared by the task's cases, all of them
				// bad: any request, seen as soon as it is made, is a failure.
				assert.Zero(t, ws.Writes(), "no write request")
				assert.Empty(t, paths(ws.Requests()), "no request at all")
			})
		}
	})
	for task, ws := range workspaces {
		assert.Zero(t, ws.Writes(), "%s: write requests", task)
		assert.Empty(t, paths(ws.Requests()), "%s: requests", task)
	}
	t.Logf("%d cases in %s", len(cases), time.Since(start).Round(time.Millisecond))
}

func paths(rs []emulator.Request) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}
