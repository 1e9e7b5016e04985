package train_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/logger"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/require"

	"github.com/brickops/brickops/internal/agent"
	"github.com/brickops/brickops/internal/agenttest"
	"github.com/brickops/brickops/internal/auth"
	"github.com/brickops/brickops/internal/cli"
	"github.com/brickops/brickops/internal/emulator"
	"github.com/brickops/brickops/internal/train"
	"github.com/brickops/brickops/tasks"
)

func TestMain(m *testing.M) {
	logger.DefaultLogger = &logger.SimpleLogger{Level: logger.LevelWarn}
	os.Exit(m.Run())
}

// simClock is the waiter's clock in in-process tests: sleeping advances the
// emulator's manual clock, so runs of any length end at once and every
// poll is accounted for. onSleep, if set, runs before each sleep.
type simClock struct {
	c       *emulator.ManualClock
	sleeps  *atomic.Int64
	onSleep func(n int64)
}

func (s simClock) Now() time.Time { return s.c.Now() }

func (s simClock) Sleep(ctx context.Context, d time.Duration) error {
	n := s.sleeps.Add(1)
	if s.onSleep != nil {
		s.onSleep(n)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.c.Advance(d)
	return nil
}

// world is one emulated workspace and the task wired to it.
type world struct {
	t     *testing.T
	ws    *emulator.Workspace
	clock *emulator.ManualClock
	sim   simClock
	api   *jobs.JobsAPI
}

func newWorld(t *testing.T) *world {
	t.Helper()
	clock := emulator.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	ws := emulator.Start(t, emulator.Options{Clock: clock, Name: "dev"})
	w := &world{t: t, ws: ws, clock: clock, sim: simClock{c: clock, sleeps: &atomic.Int64{}}}
	c, err := w.client()
	require.NoError(t, err)
	w.api = jobs.NewJobs(c)
	return w
}

func (w *world) client() (*client.DatabricksClient, error) {
	cfg := w.ws.SDKConfig()
	cfg.RateLimitPerSecond = 10000
	cfg.RetryTimeoutSeconds = 30
	return client.New(cfg)
}

// registry is the production registry with DatabricksTrain connected to
// this world's workspace.
func (w *world) registry() cli.Registry {
	def, err := tasks.Definition("DatabricksTrain")
	require.NoError(w.t, err)
	return cli.Registry{"DatabricksTrain": cli.Task{Definition: def, Run: train.Task(train.Deps{
		Connect: w.connect,
		Clock:   w.sim,
	})}}
}

// connect connects the task to this world's workspace (after reading the
// connection inputs, as in production).
func (w *world) connect(env agent.Env, in *agent.Inputs, log *agent.Log, group string) auth.Connector {
	c, err := w.client()
	require.NoError(w.t, err)
	return auth.Direct(&auth.Workspace{Name: "workspace", Client: c})(env, in, log, group)
}

// run runs the task in-process with these inputs.
func (w *world) run(inputs map[string]string) *agenttest.Result {
	w.t.Helper()
	return agenttest.Run{Task: "DatabricksTrain", Inputs: inputs}.InProcess(w.t, w.registry())
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

func churnModel(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "fixtures", "churn-model", "model")
	if _, err := os.Stat(filepath.Join(dir, "MLmodel")); err != nil {
		dir = "/work/shared/fixtures/churn-model/model"
	}
	require.FileExists(t, filepath.Join(dir, "MLmodel"))
	return dir
}

func seedJob(t *testing.T, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "fixtures", "seed-jobs", name)
	if _, err := os.Stat(p); err != nil {
		p = filepath.Join("/work/shared/fixtures/seed-jobs", name)
	}
	require.FileExists(t, p)
	return p
}

// trainBehaviour is a training notebook that logs the churn model.
func trainBehaviour(t *testing.T, d time.Duration) emulator.Behaviour {
	return emulator.Behaviour{Duration: d, Train: &emulator.Train{
		Experiment: "/Shared/churn", ModelDir: churnModel(t),
		Metrics: map[string]float64{"auc": 0.91, "val.f1": 0.8},
	}}
}
