package suites_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"maps"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/files"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/fixtures"
)

var seedFlag = flag.Int64("suites.seed", 0, "seed of the suites' random points: signal and kill points, delays (0: from the clock, logged)")

func TestMain(m *testing.M) { testworld.Main(m) }

// startWorkspace starts an https workspace signed by ca.
func startWorkspace(t *testing.T, opts emulator.Options) *emulator.Workspace {
	t.Helper()
	ws, _ := emulator.StartHTTPS(t, opts)
	return ws
}

// agentRun is task as the agent starts it, connected to ws with the token
// method (agenttest.Run.WithToken).
func agentRun(t *testing.T, ws *emulator.Workspace, task string, inputs, env map[string]string) agenttest.Run {
	_, caFile := emulator.TestCA(t)
	e := map[string]string{"AGENT_CAINFO": caFile}
	maps.Copy(e, env)
	return agenttest.Run{Task: task, Inputs: inputs, Env: e}.WithToken(ws.URL(), ws.Token)
}

// tick moves a manual clock while a process runs on the wall clock, step
// every 5 ms; the returned function stops it.
func tick(c *emulator.ManualClock, step time.Duration) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				c.Advance(step)
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// points draws a suite's random points (delays, request counts, seeds)
// from -suites.seed, so that the seed a run logs replays it. stream keeps
// the suites' sequences apart. Safe for concurrent use.
type points struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newPoints(t *testing.T, stream uint64) *points {
	seed := *seedFlag
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("random points from seed %d (replay with -suites.seed=%d)", seed, seed)
	return &points{rng: rand.New(rand.NewPCG(uint64(seed), stream))}
}

// fork is a source of its own for one subtest. Forked in a fixed order
// before the subtests run in parallel, each subtest draws the same points
// for the same seed.
func (p *points) fork() (f *points) {
	p.draw(func(r *rand.Rand) { f = &points{rng: rand.New(rand.NewPCG(r.Uint64(), r.Uint64()))} })
	return f
}

func (p *points) intn(n int) (v int) {
	p.draw(func(r *rand.Rand) { v = r.IntN(n) })
	return v
}

func (p *points) uint64() (v uint64) {
	p.draw(func(r *rand.Rand) { v = r.Uint64() })
	return v
}

// draw runs fn with the source, under its lock.
func (p *points) draw(fn func(r *rand.Rand)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p.rng)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Steps the cancellation and crash suites interrupt or kill and run again,
// and the workspaces they run in.

// step is a task set up in a workspace, ready to be run as the agent runs it.
type step struct {
	ws    *emulator.Workspace
	clock *emulator.ManualClock // nil: the workspace runs on the real clock
	task  string
	in    map[string]string
	// tick is how far the clock moves every 5 ms while finish waits.
	tick time.Duration
}

// start starts the step as the agent does, with env added to its
// environment (e.g. rerun).
func (s *step) start(t *testing.T, exe string, env map[string]string) *agenttest.Process {
	return agentRun(t, s.ws, s.task, s.in, env).Start(t, exe)
}

// finish waits for a run of the step, moving the clock meanwhile, and
// requires it to succeed.
func (s *step) finish(t *testing.T, p *agenttest.Process) *agenttest.Result {
	t.Helper()
	stop := func() {}
	if s.clock != nil {
		stop = tick(s.clock, s.tick)
	}
	res := p.Finish(t)
	stop()
	require.Equal(t, agent.Succeeded, res.Result, "%v\n%s", res.Errors, res.Stdout)
	return res
}

// requested reports whether ws has received a request to method path.
func requested(ws *emulator.Workspace, method, path string) func() bool {
	return func() bool { return len(ws.RequestsTo(method, path)) > 0 }
}

const runsGetPath = "/api/2.2/jobs/runs/get"

// clockedWorkspace starts a workspace on a manual clock.
func clockedWorkspace(t *testing.T) (*emulator.Workspace, *emulator.ManualClock) {
	clock := emulator.NewManualClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	return startWorkspace(t, emulator.Options{Clock: clock}), clock
}

// The churn pipeline's training step.
const trainNotebook = "/Repos/mlops/churn/notebooks/train"

var trainInputs = map[string]string{"notebookPath": trainNotebook, "workers": "1"}

// trainChurn is the training notebook: it runs for d and logs the churn
// model in /Shared/churn.
func trainChurn(t *testing.T, d time.Duration) emulator.Behaviour {
	return emulator.Behaviour{Duration: d, Train: &emulator.Train{
		Experiment: "/Shared/churn", ModelDir: fixtures.ChurnModel(t), Metrics: map[string]float64{"auc": 0.91},
	}}
}

// The churn pipeline's scoring step.
const (
	scoreNotebook = "/Shared/brickferry/batch_score"
	scoreTable    = "main.ml.churn_predictions"
	scoreJob      = "churn-batch-score"
)

// scoreStep is BatchScore of the Production churn model (version 3) into
// scoreTable, the scoring notebook scripted with scoreChurn(d).
func scoreStep(t *testing.T, d time.Duration) *step {
	ws, clock := clockedWorkspace(t)
	c := ws.Client(t)
	registerChurn(t, c, clock, 3)
	_, err := ml.NewModelRegistry(c).TransitionStage(context.Background(), ml.TransitionModelVersionStageDatabricks{Name: "churn", Version: "3", Stage: "Production"})
	require.NoError(t, err)
	ws.ResetRequests()
	ws.OnNotebook(scoreNotebook, scoreChurn(d))
	return &step{ws: ws, clock: clock, task: "BatchScore", tick: 5 * time.Second, in: map[string]string{
		"modelUri": "models:/churn/Production", "inputTable": "main.ml.customers", "idColumns": "CodigoCliente",
		"outputTable": scoreTable, "jobName": scoreJob,
	}}
}

// scoreChurn is the shipped scoring notebook: it runs for d, writes 9960
// rows to its output table and exits as the notebook does.
func scoreChurn(d time.Duration) emulator.Behaviour {
	return emulator.Behaviour{Duration: d, Action: func(tc *emulator.TaskContext) error {
		table := tc.Params["output_table"]
		tc.WriteTable(table, 9960)
		out, _ := json.Marshal(map[string]any{"rows_written": 9960, "output_table": table, "table_version": tc.TableVersion(table),
			"model_name": "churn", "model_version": "3"})
		tc.SetExitValue(string(out))
		return nil
	}}
}

// The churn pipeline's serving step.
const (
	serveEndpoint   = "churn-serving"
	serveConfigPath = "/api/2.0/serving-endpoints/" + serveEndpoint + "/config"
)

// serveStep is ModelServe of version 2 of churn on serveEndpoint, READY
// with version 1.
func serveStep(t *testing.T) *step {
	ws, clock := clockedWorkspace(t)
	c := ws.Client(t)
	registerChurn(t, c, clock, 2)
	_, err := serving.NewServingEndpoints(c).Create(context.Background(), serving.CreateServingEndpoint{Name: serveEndpoint, Config: &serving.EndpointCoreConfigInput{
		ServedEntities: []serving.ServedEntityInput{{Name: "churn-1", EntityName: "churn", EntityVersion: "1", WorkloadSize: "Small", ScaleToZeroEnabled: true}},
	}})
	require.NoError(t, err)
	clock.Advance(time.Hour) // READY with version 1
	return &step{ws: ws, clock: clock, task: "ModelServe", tick: time.Second, in: map[string]string{
		"endpointName": serveEndpoint, "modelName": "churn", "modelVersion": "2",
		"smokeTestPayload": `{"dataframe_split": {"columns": ["tenure", "charges"], "data": [[12, 70.5], [3, 20.1]]}}`,
	}}
}

// assertServesVersion2 checks that serveEndpoint is the one endpoint, READY
// and serving version 2 of churn only, and returns it.
func assertServesVersion2(t *testing.T, ws *emulator.Workspace) *serving.ServingEndpointDetailed {
	t.Helper()
	api := serving.NewServingEndpoints(ws.Client(t))
	list, err := api.ListAll(context.Background())
	require.NoError(t, err)
	require.Len(t, list, 1, "one endpoint")
	ep, err := api.Get(context.Background(), serving.GetServingEndpointRequest{Name: serveEndpoint})
	require.NoError(t, err)
	assert.Equal(t, serving.EndpointStateReadyReady, ep.State.Ready)
	require.NotNil(t, ep.Config)
	var served []string
	for _, e := range ep.Config.ServedEntities {
		served = append(served, e.Name)
	}
	assert.Equal(t, []string{"churn-2"}, served, "version 2 is served once")
	return ep
}

// registerStep is MLflowPromote register of the model a training run
// logged (its MLflow run id is returned too) as churn.
func registerStep(t *testing.T) (*step, string) {
	ws, clock := clockedWorkspace(t)
	runID := trainedRun(t, ws, clock)
	return &step{ws: ws, clock: clock, task: "MLflowPromote", tick: time.Second,
		in: map[string]string{"command": "register", "modelName": "churn", "modelUri": "runs:/" + runID + "/model"},
	}, runID
}

// onlyVersion checks that churn has one version, READY and of the MLflow
// run runID, none pending or failed beside it, and returns it.
func onlyVersion(t *testing.T, ws *emulator.Workspace, runID string) ml.ModelVersion {
	t.Helper()
	versions, err := ml.NewModelRegistry(ws.Client(t)).SearchModelVersionsAll(context.Background(), ml.SearchModelVersionsRequest{Filter: "name='churn'"})
	require.NoError(t, err)
	require.Len(t, versions, 1, "one model version, none pending or failed beside it")
	assert.Equal(t, ml.ModelVersionStatusReady, versions[0].Status)
	assert.Equal(t, runID, versions[0].RunId)
	return versions[0]
}

// registerChurn registers versions 1..n of the workspace registry model
// churn from files on DBFS and lets them become READY.
func registerChurn(t *testing.T, c *client.DatabricksClient, clock *emulator.ManualClock, n int) {
	t.Helper()
	ctx := context.Background()
	dbfs := files.NewDbfs(c)
	for f, content := range map[string]string{"MLmodel": "artifact_path: model\nflavors:\n  python_function: {}\n", "requirements.txt": "mlflow\n"} {
		require.NoError(t, dbfs.Put(ctx, files.Put{Path: "dbfs:/models/churn/" + f, Contents: base64.StdEncoding.EncodeToString([]byte(content)), Overwrite: true}))
	}
	reg := ml.NewModelRegistry(c)
	_, err := reg.CreateModel(ctx, ml.CreateModelRequest{Name: "churn"})
	require.NoError(t, err)
	for range n {
		_, err := reg.CreateModelVersion(ctx, ml.CreateModelVersionRequest{Name: "churn", Source: "dbfs:/models/churn"})
		require.NoError(t, err)
	}
	clock.Advance(time.Minute)
}

// trainedRun runs a training job that logs the churn model and returns its
// MLflow run id, as DatabricksTrain hands it over.
func trainedRun(t *testing.T, ws *emulator.Workspace, clock *emulator.ManualClock) string {
	t.Helper()
	ws.OnNotebook(trainNotebook, trainChurn(t, time.Minute))
	runID, _ := ws.TrainedRun(t, trainNotebook, func() { clock.Advance(time.Hour) })
	return runID
}
