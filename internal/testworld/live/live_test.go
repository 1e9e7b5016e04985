package live_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/databricks/databricks-sdk-go/service/sql"
	"github.com/databricks/databricks-sdk-go/service/workspace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/demo"
	"github.com/brickferry/brickferry/internal/testworld/live"
)

// TestLive is `make live`: each sample pipeline against the real workspaces
// the environment names (live.FromEnv), checked as the emulator end-to-end
// test checks it, then everything it made deleted and checked gone.
// Without BRICKFERRY_LIVE=1 it does nothing: `make live` refuses to start
// then, and TestLiveOnEmulator runs the same code in make test.
func TestLive(t *testing.T) {
	targets := fromEnv(t, live.FromEnv)
	require.NoError(t, live.SmallestNodeTypes(context.Background(), &targets))
	run := live.NewRunID()
	for _, key := range targets.Samples {
		t.Run(key, func(t *testing.T) {
			plan, err := live.NewPlan(targets, key, run)
			require.NoError(t, err)
			plan.Print(os.Stdout, targets)
			runAndCheck(t, targets, plan, func(p live.Plan) error { return live.Clean(context.Background(), targets, p, os.Stdout) })
		})
	}
}

// TestLiveClean is `make live-clean`: it deletes what runs with the
// environment's prefix left behind (live.Sweep). Without BRICKFERRY_LIVE=1
// it does nothing.
func TestLiveClean(t *testing.T) {
	targets := fromEnv(t, live.FromEnv)
	fmt.Printf("Deleting what runs named %s-* left in %s and %s\n", targets.Prefix, targets.Dev.Host, targets.Prod.Host)
	found, err := live.Sweep(context.Background(), targets, os.Stdout)
	fmt.Printf("%d run(s) cleaned: %v\n", len(found), found)
	require.NoError(t, err)
}

// fromEnv reads a live suite's settings with read from the environment:
// without BRICKFERRY_LIVE=1 the test does nothing (make test), with it a
// bad setting fails the test.
func fromEnv[T any](t *testing.T, read func(func(string) string) (T, error)) T {
	t.Helper()
	v, err := read(os.Getenv)
	if errors.Is(err, live.ErrNotEnabled) {
		t.Skip(err)
	}
	require.NoError(t, err)
	return v
}

// TestLiveOnEmulator runs the live suite's code with its targets pointed at
// the emulated workspaces: the workspace-registry sample cleaned by Clean
// (as at the end of a live run), the Unity Catalog one by Sweep (make
// live-clean after a crash), which leaves another prefix's things alone.
func TestLiveOnEmulator(t *testing.T) {
	for _, key := range []string{"workspace", "uc"} {
		t.Run(key, func(t *testing.T) {
			targets, plan := emulated(t, key)
			// The smallest of the emulator's Azure node types with a local
			// disk (emulator/compute.go).
			assert.Equal(t, []string{"Standard_F4s", "Standard_F4s"}, []string{targets.DevNodeType, targets.ProdNodeType})
			if key == "workspace" {
				runAndCheck(t, targets, plan, func(p live.Plan) error {
					return live.Clean(context.Background(), targets, p, os.Stdout)
				})
				return
			}
			c, err := client.New(targets.Prod)
			require.NoError(t, err)
			ctx := context.Background()
			runAndCheck(t, targets, plan, func(live.Plan) error {
				// Another prefix's run folder and job, which Sweep must keep
				// (made after the run, so that a recording of it does not
				// see them).
				require.NoError(t, workspace.NewWorkspace(c).Mkdirs(ctx, workspace.Mkdirs{Path: "/Shared/other-abcdef-uc"}))
				_, err = jobs.NewJobs(c).Create(ctx, jobs.CreateJob{Name: "other-abcdef-uc-batch-score"})
				require.NoError(t, err)
				found, err := live.Sweep(context.Background(), targets, os.Stdout)
				assert.Equal(t, []string{plan.Name}, found, "Sweep finds the run by its folder, endpoint and job")
				return err
			})
			_, err = workspace.NewWorkspace(c).GetStatus(ctx, workspace.GetStatusRequest{Path: "/Shared/other-abcdef-uc"})
			assert.NoError(t, err, "another prefix's folder is kept")
			kept, err := jobs.NewJobs(c).ListAll(ctx, jobs.ListJobsRequest{Name: "other-abcdef-uc-batch-score"})
			require.NoError(t, err)
			assert.Len(t, kept, 1, "another prefix's job is kept")
		})
	}
}

// emulated starts an emulated world for sample key, its training scripted
// at the names of a new run's plan, and returns the plan and targets
// pointed at the world: the plan's names depend on the targets' settings,
// not on where the workspaces are.
func emulated(t *testing.T, key string) (live.Targets, live.Plan) {
	return emulatedRun(t, key, "bftest-"+live.NewRunID()+"-"+map[string]string{"uc": "uc", "workspace": "ws"}[key])
}

// emulatedRun is emulated for the run named name.
func emulatedRun(t *testing.T, key, name string) (live.Targets, live.Plan) {
	t.Helper()
	root, err := azurite.RepoRoot()
	require.NoError(t, err)
	targets := live.Targets{
		DevSchema: "dev.ml", ProdSchema: "prod.ml", TrainTable: "dev.ml.customer", InputTable: "prod.ml.customer",
		WarehouseID: demo.WarehouseID, Prefix: strings.Split(name, "-")[0], Timeout: 10 * time.Minute,
		Samples: []string{key},
	}
	plan, ok := live.PlanOf(targets, name)
	require.True(t, ok, "%s is not the name of a run", name)
	world, stop, err := demo.StartWorld(context.Background(), demo.Options{
		Sample: demo.Samples()[key], OutDir: t.TempDir(), Out: io.Discard, Fast: true,
		ModelDir:      filepath.Join(root, "examples", "demo", "churn-model"),
		TrainNotebook: plan.TrainNotebook, Experiment: plan.Experiment,
	})
	t.Cleanup(stop)
	require.NoError(t, err)
	targets.Dev, targets.Prod, targets.CA = world.Dev.SDKConfig(), world.Prod.SDKConfig(), world.CA
	require.NoError(t, live.SmallestNodeTypes(context.Background(), &targets))
	return targets, plan
}

// runAndCheck runs plan's sample against targets, checks the outcome with
// the emulator end-to-end test's checks, cleans with clean and checks that
// nothing of the run is left.
func runAndCheck(t *testing.T, targets live.Targets, plan live.Plan, clean func(live.Plan) error) {
	t.Helper()
	root, err := azurite.RepoRoot()
	require.NoError(t, err)
	var out strings.Builder
	plan.Print(&out, targets)
	t.Log("\n" + out.String())
	opts := live.Options{Targets: targets, Plan: plan, Exe: agenttest.Executable(t), Root: root, OutDir: t.TempDir(), Out: &out}
	if os.Getenv("RECORD") == "1" {
		opts.RecordTo = filepath.Join("testdata", "recordings", time.Now().UTC().Format(time.DateOnly), plan.Key+".json")
	}
	cleaned := false
	t.Cleanup(func() {
		if !cleaned {
			assert.NoError(t, live.Clean(context.Background(), targets, plan, os.Stdout), "cleaning after a failed run")
		}
	})
	ctx := context.Background()
	report, err := live.Run(ctx, opts)
	require.NoError(t, err, out.String())
	demo.CheckOutcome(t, ctx, report.Outcome(opts))
	require.NoError(t, clean(plan))
	cleaned = true
	checkGone(t, targets, plan)
}

// checkGone checks that nothing plan's run made is left.
func checkGone(t *testing.T, targets live.Targets, p live.Plan) {
	t.Helper()
	ctx := context.Background()
	dev, err := client.New(targets.Dev)
	require.NoError(t, err)
	prod, err := client.New(targets.Prod)
	require.NoError(t, err)
	_, err = serving.NewServingEndpoints(prod).Get(ctx, serving.GetServingEndpointRequest{Name: p.Sample.Endpoint})
	assert.Error(t, err, "the serving endpoint is deleted")
	js, err := jobs.NewJobs(prod).ListAll(ctx, jobs.ListJobsRequest{Name: p.JobName})
	require.NoError(t, err)
	assert.Empty(t, js, "the scoring job is deleted")
	resp, err := sql.NewStatementExecution(prod).ExecuteStatement(ctx, sql.ExecuteStatementRequest{
		WarehouseId: targets.WarehouseID, Statement: "SELECT COUNT(*) FROM " + p.Sample.OutputTable,
	})
	require.NoError(t, err)
	assert.Equal(t, sql.StatementStateFailed, resp.Status.State, "the scored table is dropped")
	for _, x := range []struct {
		where string
		c     *client.DatabricksClient
		model string
	}{{"dev", dev, p.Sample.DevModel}, {"prod", prod, p.Sample.ProdModel}} {
		cfg := targets.Dev
		if x.where == "prod" {
			cfg = targets.Prod
		}
		versions, err := demo.ModelVersions(ctx, cfg, x.model)
		require.NoError(t, err)
		assert.Empty(t, versions, "%s: the model's versions are deleted", x.where)
		exp, err := ml.NewExperiments(x.c).GetByName(ctx, ml.GetByNameRequest{ExperimentName: p.Experiment})
		if err == nil {
			assert.Equal(t, "deleted", exp.Experiment.LifecycleStage, "%s: the experiment is deleted", x.where)
		}
		_, err = workspace.NewWorkspace(x.c).GetStatus(ctx, workspace.GetStatusRequest{Path: p.Folder})
		assert.Error(t, err, "%s: the run's folder is deleted", x.where)
	}
}
