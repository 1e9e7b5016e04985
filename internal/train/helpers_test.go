package train_test

import (
	"maps"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/cli"
	"github.com/brickferry/brickferry/internal/testworld"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/fixtures"
	"github.com/brickferry/brickferry/internal/train"
	"github.com/brickferry/brickferry/tasks"
)

func TestMain(m *testing.M) { testworld.Main(m) }

// world is one emulated workspace and the task wired to it. Made by
// newWorld, task runs are the built executable, started as the agent starts
// it, connected over https with the token method (agenttest.Run.WithToken),
// on the real clock with runs of milliseconds.
// Made by newSimWorld, they run in this process on a simulated clock.
type world struct {
	t      *testing.T
	ws     *emulator.Workspace
	api    *jobs.JobsAPI
	exe    string // the built executable; "" for a simulated world
	caFile string // the CA of ws's certificate, for Agent.CAInfo

	clock *emulator.ManualClock // simulated world only: sleeping advances it
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return newEraWorld(t, emulator.MLflow2)
}

// newEraWorld is newWorld with a workspace of this MLflow era.
func newEraWorld(t *testing.T, era emulator.MLflowEra) *world {
	t.Helper()
	ws, caFile := emulator.StartHTTPS(t, emulator.Options{
		Name:       "dev",
		RunPending: time.Millisecond, RunTerminating: time.Millisecond, RunDuration: 20 * time.Millisecond,
		RegistrationDelay: time.Millisecond, MLflow: era,
	})
	w := &world{t: t, ws: ws, caFile: caFile, exe: agenttest.Executable(t)}
	w.api = jobs.NewJobs(w.ws.Client(w.t))
	return w
}

// newSimWorld is a world whose task runs are in this process (so go test
// -race sees the task's code) and whose time is simulated: for the runs that
// take hours.
func newSimWorld(t *testing.T) *world {
	t.Helper()
	clock := emulator.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	ws := emulator.Start(t, emulator.Options{Clock: clock, Name: "dev"})
	w := &world{t: t, ws: ws, clock: clock}
	w.api = jobs.NewJobs(w.ws.Client(w.t))
	return w
}

// registry is the production registry with DatabricksTrain connected to
// this simulated world's workspace (after reading the connection inputs, as
// in production).
func (w *world) registry() cli.Registry {
	def, err := tasks.Definition("DatabricksTrain")
	require.NoError(w.t, err)
	return cli.Registry{"DatabricksTrain": cli.Task{Definition: def, Run: train.Task(train.Deps{
		Connect: auth.Direct(&auth.Workspace{Name: "workspace", Host: w.ws.URL(), Client: w.ws.Client(w.t)}),
		Clock:   w.clock,
	})}}
}

// agentRun is DatabricksTrain as the agent starts it for this world, with
// extra environment entries (e.g. SYSTEM_JOBATTEMPT).
func (w *world) agentRun(inputs, env map[string]string) agenttest.Run {
	e := map[string]string{}
	if w.caFile != "" {
		e["AGENT_CAINFO"] = w.caFile
	}
	maps.Copy(e, env)
	r := agenttest.Run{Task: "DatabricksTrain", Inputs: inputs, Env: e}
	if w.exe == "" {
		return r // in this process the task is connected to ws directly (registry)
	}
	return r.WithToken(w.ws.URL(), w.ws.Token)
}

// run runs the task with these inputs to the end.
func (w *world) run(inputs map[string]string) *agenttest.Result {
	w.t.Helper()
	return w.runEnv(inputs, nil)
}

func (w *world) runEnv(inputs, env map[string]string) *agenttest.Result {
	w.t.Helper()
	var res *agenttest.Result
	if w.exe == "" {
		res = w.agentRun(inputs, env).InProcess(w.t, w.registry())
	} else {
		res = w.agentRun(inputs, env).Exec(w.t, w.exe)
		require.Equal(w.t, 0, res.ExitCode, "under the agent the executable exits 0: %s", res.Stderr)
	}
	require.Equal(w.t, 1, res.Completions, res.Stdout)
	return res
}

// submits returns the decoded runs/submit requests.
func (w *world) submits() []*jobs.SubmitRun {
	var out []*jobs.SubmitRun
	for _, r := range w.ws.RequestsTo("POST", "/api/2.2/jobs/runs/submit") {
		if b, ok := r.Body.(*jobs.SubmitRun); ok {
			out = append(out, b)
		}
	}
	return out
}

// trainBehaviour is a training notebook that logs the churn model.
func trainBehaviour(t *testing.T, d time.Duration) emulator.Behaviour {
	return emulator.Behaviour{Duration: d, Train: &emulator.Train{
		Experiment: "/Shared/churn", ModelDir: fixtures.ChurnModel(t),
		Metrics: map[string]float64{"auc": 0.91, "val.f1": 0.8},
	}}
}
