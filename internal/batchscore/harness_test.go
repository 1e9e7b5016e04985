package batchscore_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/service/files"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/databricks/databricks-sdk-go/service/sql"
	"github.com/databricks/databricks-sdk-go/service/workspace"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/batchscore"
	"github.com/brickferry/brickferry/internal/cli"
	"github.com/brickferry/brickferry/internal/testworld"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/tasks"
)

func TestMain(m *testing.M) { testworld.Main(m) }

// world is one emulated workspace with a scripted scoring notebook.
type world struct {
	ws    *emulator.Workspace
	clock *emulator.ManualClock

	mu       sync.Mutex
	versions map[string]int64 // table → Delta versions written by scoring runs
	rows     int64            // rows the next scoring run writes
	exit     func(tc *emulator.TaskContext, version int64) string
	builds   int
	// pipeline, when set, is the pipeline the next runs belong to
	// (System.DefinitionId, Build.DefinitionName); agenttest's otherwise.
	pipeline *pipelineID

	// exe, host and caFile are set by newExeWorld: task runs are then the
	// built executable.
	exe, host, caFile string
}

// nextPipelineRun gives each task run its own pipeline run ids, so that
// each gets its own idempotency token, as separate pipeline runs do.
func (w *world) nextPipelineRun() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.builds++
	env := map[string]string{"BUILD_BUILDID": strconv.Itoa(1000 + w.builds), "SYSTEM_PLANID": fmt.Sprintf("2f0e3c43-5ad6-4f1f-9d6c-%012d", w.builds)}
	if p := w.pipeline; p != nil {
		env["SYSTEM_DEFINITIONID"], env["BUILD_DEFINITIONNAME"] = p.id, p.name
	}
	return env
}

// pipelineID is a pipeline definition as the agent names it.
type pipelineID struct{ id, name string }

// runAs makes the next runs those of another pipeline.
func (w *world) runAs(id, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pipeline = &pipelineID{id: id, name: name}
}

const shippedPath = "/Shared/brickferry/batch_score"

func newWorld(t *testing.T) *world {
	t.Helper()
	return startWorld(t, nil, time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
}

// startWorld starts the world's workspace at simulated time start, serving
// https when ca is set.
func startWorld(t *testing.T, ca *emulator.CA, start time.Time) *world {
	t.Helper()
	clock := emulator.NewManualClock(start)
	w := &world{clock: clock, versions: map[string]int64{}, rows: 9960}
	w.ws = emulator.Start(t, emulator.Options{Name: "prod", Clock: clock, CA: ca})
	w.onNotebook(shippedPath)
	w.registerModel(t, "churn", 3, "Production")
	w.ws.AddWarehouse(sql.GetWarehouseResponse{Id: warehouse})
	w.ws.ResetRequests()
	return w
}

// warehouse is the SQL warehouse of the world's workspace.
const warehouse = "abc123def456"

// registerModel registers versions 1..n of a workspace registry model from
// files put on DBFS, waits until they are READY and moves version n to
// stage (none when empty).
func (w *world) registerModel(t *testing.T, name string, n int, stage string) {
	t.Helper()
	ctx := context.Background()
	c := w.sdk(t)
	require.NoError(t, files.NewDbfs(c).Put(ctx, files.Put{Path: "dbfs:/models/" + name + "/MLmodel",
		Contents: base64.StdEncoding.EncodeToString([]byte("artifact_path: model\nflavors:\n  python_function: {}\n")), Overwrite: true}))
	reg := ml.NewModelRegistry(c)
	_, err := reg.CreateModel(ctx, ml.CreateModelRequest{Name: name})
	require.NoError(t, err)
	for range n {
		_, err := reg.CreateModelVersion(ctx, ml.CreateModelVersionRequest{Name: name, Source: "dbfs:/models/" + name})
		require.NoError(t, err)
	}
	w.clock.Advance(time.Minute) // registration takes a few seconds
	if stage != "" {
		_, err = reg.TransitionStage(ctx, ml.TransitionModelVersionStageDatabricks{Name: name, Version: strconv.Itoa(n), Stage: stage})
		require.NoError(t, err)
	}
}

// onNotebook scripts the notebook at p like the shipped one: it writes the
// output table (a new Delta version) and exits with the JSON the task reads.
func (w *world) onNotebook(p string) {
	w.ws.OnNotebook(p, emulator.Behaviour{Duration: 4 * time.Minute, Action: func(tc *emulator.TaskContext) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		table := tc.Params["output_table"]
		tc.WriteTable(table, w.rows)
		v, seen := w.versions[table]
		if seen {
			v++
		}
		w.versions[table] = v
		if w.exit != nil {
			tc.SetExitValue(w.exit(tc, v))
			return nil
		}
		out, _ := json.Marshal(map[string]any{
			"rows_written": w.rows, "output_table": table, "table_version": v,
			"model_name": "churn", "model_version": "3",
		})
		tc.SetExitValue(string(out))
		return nil
	}})
}

func (w *world) setRows(n int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rows = n
}

// config is the emulator's SDK configuration without the SDK's default
// limit of 15 requests a second, which would make simulated hours of
// polling take real seconds.
func (w *world) config() *config.Config {
	cfg := w.ws.SDKConfig()
	cfg.RateLimitPerSecond = 100000
	return cfg
}

func (w *world) sdk(t *testing.T) *client.DatabricksClient {
	t.Helper()
	c, err := client.New(w.config())
	require.NoError(t, err)
	return c
}

// connect connects the task to the world's workspace, after reading the
// connection inputs as in production.
func (w *world) connect(t *testing.T) auth.ConnectFunc {
	t.Helper()
	return auth.Direct(&auth.Workspace{Name: "workspace", Host: w.ws.URL(), Client: w.sdk(t)})
}

// registry runs BatchScore against the emulator with simulated time.
func (w *world) registry(t *testing.T, notebook []byte) cli.Registry {
	t.Helper()
	def, err := tasks.Definition("BatchScore")
	require.NoError(t, err)
	deps := batchscore.Deps{
		Connect:  w.connect(t),
		Notebook: notebook,
		Clock:    w.clock,
	}
	return cli.Registry{"BatchScore": cli.Task{Definition: def, Run: deps.Task()}}
}

// inputs are the inputs of a typical pipeline step.
func inputs(extra ...string) map[string]string {
	m := map[string]string{
		"modelUri":    "models:/churn/Production",
		"inputTable":  "main.ml.customers",
		"idColumns":   "CodigoCliente",
		"outputTable": "main.ml.churn_predictions",
		"jobName":     "churn-batch-score",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func (w *world) run(t *testing.T, in map[string]string) *agenttest.Result {
	t.Helper()
	return w.runWith(t, in, nil)
}

func (w *world) runWith(t *testing.T, in map[string]string, notebook []byte) *agenttest.Result {
	t.Helper()
	if w.exe != "" {
		require.Nil(t, notebook, "the executable runs the embedded notebook")
		stop := w.tick()
		res := w.agentRun(in).Exec(t, w.exe)
		stop()
		require.Equal(t, 0, res.ExitCode, res.Stderr)
		require.Equal(t, 1, res.Completions, res.Stdout+res.Stderr)
		return res
	}
	res := agenttest.Run{Task: "BatchScore", Inputs: in, Env: w.nextPipelineRun()}.InProcess(t, w.registry(t, notebook))
	require.Equal(t, 1, res.Completions, res.Stdout)
	return res
}

// jobs lists the workspace's jobs.
func (w *world) jobs(t *testing.T) []jobs.BaseJob {
	t.Helper()
	all, err := jobs.NewJobs(w.sdk(t)).ListAll(context.Background(), jobs.ListJobsRequest{ExpandTasks: true})
	require.NoError(t, err)
	return all
}

func (w *world) job(t *testing.T, id int64) *jobs.Job {
	t.Helper()
	j, err := jobs.NewJobs(w.sdk(t)).GetByJobId(context.Background(), id)
	require.NoError(t, err)
	return j
}

func (w *world) imports() []emulator.Request {
	return w.ws.RequestsTo("POST", "/api/2.0/workspace/import")
}

func (w *world) runNows() []*jobs.RunNow {
	var out []*jobs.RunNow
	for _, r := range w.ws.RequestsTo("POST", "/api/2.2/jobs/run-now") {
		if b, ok := r.Body.(*jobs.RunNow); ok {
			out = append(out, b)
		}
	}
	return out
}

func (w *world) notebookSource(t *testing.T, p string) string {
	t.Helper()
	resp, err := workspace.NewWorkspace(w.sdk(t)).Export(context.Background(), workspace.ExportRequest{Path: p, Format: workspace.ExportFormatSource})
	require.NoError(t, err)
	return resp.Content
}

// registryWallClock waits on the wall clock (real sleeps) while the
// emulator's clock stands still: the run stays RUNNING until the test acts.
func (w *world) registryWallClock(t *testing.T) cli.Registry {
	t.Helper()
	def, err := tasks.Definition("BatchScore")
	require.NoError(t, err)
	deps := batchscore.Deps{
		Connect:  w.connect(t),
		Interval: func(time.Duration) time.Duration { return 10 * time.Millisecond },
	}
	return cli.Registry{"BatchScore": cli.Task{Definition: def, Run: deps.Task()}}
}
