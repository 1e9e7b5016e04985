package suites_test

import (
	"context"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// killer sends SIGKILL at a seeded random point, as the kernel's OOM killer,
// a preempted agent VM or `kill -9` would end the step: no signal handler
// runs, nothing is cleaned up and no task.complete is written.
type killer struct{ *points }

func newKiller(t *testing.T) *killer { return &killer{newPoints(t, 1)} }

// fork is a killer of its own for one subtest (see points.fork).
func (k *killer) fork() *killer { return &killer{k.points.fork()} }

// faultSeed is a seed for one workspace's latency plan.
func (k *killer) faultSeed() uint64 { return k.uint64() }

// latency is how long every request of a step about to be killed takes.
const latency = 15 * time.Millisecond

// kill waits until started reports that the step's remote work has begun,
// then until the workspace has answered a random number (below points) of
// the step's further requests, and a random part of one request's latency
// more; then it sends SIGKILL and waits for the process. The kill point
// thus falls anywhere in the step's remaining requests, including while
// one is on its way (Databricks still carries out a request whose client
// died). A step that completed first is returned as it ended.
func (k *killer) kill(t *testing.T, ws *emulator.Workspace, p *agenttest.Process, points int, started func() bool) *agenttest.Result {
	t.Helper()
	completed := func() bool { return strings.Contains(p.Stdout(), "##vso[task.complete") }
	require.Eventually(t, func() bool { return started() || completed() }, 30*time.Second, time.Millisecond, "the remote work never started:\n%s", p.Stdout())
	n, after := k.intn(points), time.Duration(k.intn(int(latency/time.Millisecond)))*time.Millisecond
	base := len(ws.Requests())
	require.Eventually(t, func() bool { return len(ws.Requests()) >= base+n || completed() }, 30*time.Second, time.Millisecond)
	time.Sleep(after)        // part of the kill point, not a synchronisation
	_ = p.Cmd.Process.Kill() // fails only if the process was already reaped, which Finish does
	res := p.Finish(t)
	reqs := ws.Requests()
	if res.Completions > 0 {
		t.Logf("the step completed before SIGKILL (kill point: %d requests + %s after its remote work started)", n, after)
		require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
		return res
	}
	last := reqs[len(reqs)-1]
	t.Logf("SIGKILL %d requests + %s after the remote work started; the workspace answered %d requests, the last %s %s",
		n, after, len(reqs), last.Method, last.Path)
	return res
}

// slowWorkspace makes every request of ws take latency, as a remote
// workspace does, so that the kill point can fall while a request is on
// its way.
func slowWorkspace(ws *emulator.Workspace, seed uint64, latency time.Duration) {
	ws.SetFaults(emulator.FaultPlan{Seed: seed, Rules: []emulator.FaultRule{
		{Rate: 1, Kinds: []emulator.FaultKind{emulator.FaultLatency}, Latency: latency},
	}})
}

// rerunKind is one way the agent runs a step again after its process died.
type rerunKind struct {
	name string
	env  func(killed *agenttest.Result) map[string]string
}

var rerunKinds = []rerunKind{
	// retryCountOnTaskFailure: the same job attempt, with the task
	// variables the killed try set (the agent read them from its stdout
	// before the process died).
	{"retry of the step", retryEnv},
	// "Rerun failed jobs": the next job attempt.
	{"next job attempt", func(*agenttest.Result) map[string]string { return rerun }},
}

// retryEnv is the environment the agent adds for a retry of the step: the
// task variables the earlier try set, as VSTS_TASKVARIABLE_<NAME>.
func retryEnv(killed *agenttest.Result) map[string]string {
	env := map[string]string{}
	for _, c := range killed.Commands {
		if c.Area == "task" && c.Event == "settaskvariable" {
			env["VSTS_TASKVARIABLE_"+agent.VariableKey(c.Properties["variable"])] = c.Message
		}
	}
	return env
}

// crashStep is a step set up in a fresh workspace, ready to be killed.
type crashStep struct {
	*step
	// started reports that the step's remote work has begun.
	started func() bool
	// points bounds the random number of the step's requests answered
	// between started and SIGKILL.
	points int
	// holdClock keeps the clock still until the rerun has read a job run:
	// the run the killed step started is then still running, the crash
	// this suite is about. (Once that run has ended, the rerun starts a
	// new one: package idempotency takes over active runs only.)
	holdClock bool
	// check asserts the workspace after the rerun.
	check func(t *testing.T, killed, again *agenttest.Result)
}

// crashCase prepares one step.
type crashCase struct {
	name    string
	prepare func(t *testing.T) *crashStep
}

// TestCrash kills every step with SIGKILL at a seeded random point after
// its remote work began, then runs it again, as a retry of the step and as
// the next job attempt: the rerun succeeds, nothing is duplicated (one run,
// one job, one model version, one endpoint config) and nothing half-made is
// left (no second run, no pending or failed version, no lineage tags mixed
// from two pipeline runs). MLflowPromote copy's kill -9 test lives with the
// copy tests (internal/promote).
func TestCrash(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGKILL on Windows")
	}
	exe := agenttest.Executable(t)
	k := newKiller(t)
	for _, c := range crashCases() {
		k := k.fork()
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, kind := range rerunKinds {
				k := k.fork()
				t.Run(kind.name, func(t *testing.T) {
					t.Parallel()
					killAndRerun(t, exe, k, c.prepare(t), kind)
				})
			}
		})
	}
}

// killAndRerun kills the step at a random point, runs it again and checks
// the workspace.
func killAndRerun(t *testing.T, exe string, k *killer, s *crashStep, kind rerunKind) {
	s.ws.ResetRequests()
	slowWorkspace(s.ws, k.faultSeed(), latency)
	killed := k.kill(t, s.ws, s.start(t, exe, nil), s.points, s.started)
	s.ws.SetFaults(emulator.FaultPlan{})

	read := len(s.ws.RequestsTo(http.MethodGet, runsGetPath))
	p := s.start(t, exe, kind.env(killed))
	if s.holdClock {
		require.Eventually(t, func() bool { return len(s.ws.RequestsTo(http.MethodGet, runsGetPath)) > read }, 30*time.Second, time.Millisecond,
			"the rerun never read a run:\n%s", p.Stdout())
	}
	again := s.finish(t, p)
	if s.holdClock && killed.Completions == 0 {
		// The killed try's run was still active (the clock stood still):
		// the rerun must have taken it over, not merely ended with one run.
		assert.Contains(t, again.Stdout, "waiting for it instead of starting another", "the rerun did not take over the killed try's run")
	}
	s.check(t, killed, again)
}

func crashCases() []crashCase {
	return []crashCase{
		{"DatabricksTrain", crashTrain},
		{"MLflowPromote register", crashRegister},
		{"MLflowPromote transition to a stage", crashStage},
		{"MLflowPromote transition to a Unity Catalog alias", crashAlias},
		{"BatchScore", crashScore},
		{"ModelServe", crashServe},
	}
}

// crashTrain: killed while its Databricks run is pending or running (the
// clock stands still until the rerun).
func crashTrain(t *testing.T) *crashStep {
	ws, clock := clockedWorkspace(t)
	ws.OnNotebook(trainNotebook, trainChurn(t, 10*time.Minute))
	return &crashStep{
		step:    &step{ws: ws, clock: clock, task: "DatabricksTrain", in: trainInputs, tick: 5 * time.Second},
		started: requested(ws, http.MethodPost, "/api/2.2/jobs/runs/submit"),
		points:  3, holdClock: true,
		check: func(t *testing.T, _, again *agenttest.Result) {
			c := ws.Client(t)
			run := onlyRun(t, c, 0)
			assert.Equal(t, itoa(run.RunId), again.Outputs["runId"], "the rerun reports the one run")
			exp, err := ml.NewExperiments(c).GetByName(context.Background(), ml.GetByNameRequest{ExperimentName: "/Shared/churn"})
			require.NoError(t, err)
			runs, err := ml.NewExperiments(c).SearchRunsAll(context.Background(), ml.SearchRuns{ExperimentIds: []string{exp.Experiment.ExperimentId}})
			require.NoError(t, err)
			require.Len(t, runs, 1, "one MLflow run: the model was trained once")
			assert.Equal(t, runs[0].Info.RunId, again.Outputs["mlflowRunId"])
		},
	}
}

// onlyRun asserts the workspace has exactly one job run (of job, or any
// when job is 0), and that it succeeded.
func onlyRun(t *testing.T, c *client.DatabricksClient, job int64) jobs.BaseRun {
	t.Helper()
	runs, err := jobs.NewJobs(c).ListRunsAll(context.Background(), jobs.ListRunsRequest{JobId: job})
	require.NoError(t, err)
	var ids []int64
	for _, r := range runs {
		ids = append(ids, r.RunId)
	}
	require.Equal(t, 1, len(runs), "exactly one Databricks run, got runs %v", ids)
	require.NotNil(t, runs[0].State)
	assert.Equal(t, jobs.RunResultStateSuccess, runs[0].State.ResultState, runs[0].State.StateMessage)
	return runs[0]
}

// crashRegister: killed around creating the registered model and its
// version, or while waiting for the version to be READY.
func crashRegister(t *testing.T) *crashStep {
	s, runID := registerStep(t)
	return &crashStep{
		step: s,
		// The model does not exist yet: the first write creates it.
		started: func() bool { return s.ws.Writes() > 0 },
		points:  4,
		check: func(t *testing.T, _, again *agenttest.Result) {
			v := onlyVersion(t, s.ws, runID)
			assert.Equal(t, v.Version, again.Outputs["modelVersion"])
			assert.Equal(t, defaultRun.lineage(runID, "register"), lineageOf(registryTags(v.Tags)), "complete lineage of the pipeline run")
		},
	}
}

// crashStage: version 2 moves to Production, archiving version 1; killed
// around the transition or while the versions are tagged.
func crashStage(t *testing.T) *crashStep {
	ws, clock := clockedWorkspace(t)
	c := ws.Client(t)
	registerChurn(t, c, clock, 2)
	moveToStage(t, c, "1", "Production", olderRun)
	return &crashStep{
		step: &step{ws: ws, clock: clock, task: "MLflowPromote", tick: time.Second,
			in: map[string]string{"command": "transition", "modelName": "churn", "modelVersion": "2", "stage": "Production"}},
		started: requested(ws, http.MethodPost, transitionPath),
		points:  8,
		check: func(t *testing.T, _, again *agenttest.Result) {
			st := stages(t, c)
			assert.Equal(t, map[string]string{"1": "Archived", "2": "Production"}, st)
			assert.Equal(t, "2", again.Outputs["modelVersion"])
			tags := versionTags(t, c)
			assert.Equal(t, defaultRun.lineage("", "transition to Production"), tags["2"])
			// Archived by this step: its lineage still names the run that
			// promoted it, and says it is archived.
			assert.Equal(t, olderRun.lineage("", "archived"), tags["1"])
		},
	}
}

// crashAlias: @champion moves from version 1 to version 2 and @challenger
// is taken off version 2; killed between those and the tags.
func crashAlias(t *testing.T) *crashStep {
	ws, clock := clockedWorkspace(t)
	c := ws.Client(t)
	ucVersions(t, c, 2)
	setAlias(t, c, "champion", 1, olderRun)
	setAlias(t, c, "challenger", 2, pipelineRun{})
	return &crashStep{
		step: &step{ws: ws, clock: clock, task: "MLflowPromote", tick: time.Second,
			in: map[string]string{"command": "transition", "modelName": ucModel, "modelVersion": "2", "alias": "champion", "removeAlias": "challenger"}},
		started: requested(ws, http.MethodPut, "/api/2.1/unity-catalog/models/"+ucModel+"/aliases/champion"),
		points:  8,
		check: func(t *testing.T, _, again *agenttest.Result) {
			assert.Equal(t, map[string]int{"champion": 2}, aliases(t, c), "@champion on version 2, @challenger taken off it")
			assert.Equal(t, "2", again.Outputs["modelVersion"])
			assert.Equal(t, defaultRun.lineage("", "alias champion"), ucLineage(t, c, 2))
			assert.Equal(t, olderRun.lineage("", "alias champion"), ucLineage(t, c, 1), "the previous holder is left as it was")
		},
	}
}

// crashScore: killed while the scoring run is pending or running.
func crashScore(t *testing.T) *crashStep {
	s := scoreStep(t, 4*time.Minute)
	return &crashStep{
		step:    s,
		started: requested(s.ws, http.MethodPost, "/api/2.2/jobs/run-now"),
		points:  3, holdClock: true,
		check: func(t *testing.T, _, again *agenttest.Result) {
			c := s.ws.Client(t)
			all, err := jobs.NewJobs(c).ListAll(context.Background(), jobs.ListJobsRequest{Name: scoreJob})
			require.NoError(t, err)
			require.Len(t, all, 1, "one job")
			run := onlyRun(t, c, all[0].JobId)
			assert.Equal(t, itoa(run.RunId), again.Outputs["runId"])
			rows, version, ok := s.ws.Table(scoreTable)
			require.True(t, ok, "the output table exists")
			assert.Equal(t, int64(9960), rows)
			assert.Equal(t, int64(0), version, "the table was written once")
		},
	}
}

// crashServe: version 2 replaces version 1 on a READY endpoint; killed
// after the config update was sent, while it is in progress.
func crashServe(t *testing.T) *crashStep {
	s := serveStep(t)
	return &crashStep{
		step:    s,
		started: requested(s.ws, http.MethodPut, serveConfigPath),
		points:  3,
		check: func(t *testing.T, _, again *agenttest.Result) {
			assert.Len(t, s.ws.RequestsTo(http.MethodPut, serveConfigPath), 1, "one config update in all")
			ep := assertServesVersion2(t, s.ws)
			assert.Equal(t, int64(2), ep.Config.ConfigVersion, "the first config and one update")
			assert.Equal(t, "2", again.Outputs["servedVersion"])
		},
	}
}

// Registry helpers shared with the concurrency suite.

const (
	transitionPath = "/api/2.0/mlflow/databricks/model-versions/transition-stage"
	ucModel        = "main.ml.churn"
	ucRoutes       = "/api/2.0/mlflow/unity-catalog/model-versions/"
)

// pipelineRun is one pipeline run as the agent describes it and as the
// lineage tags name it. The zero value is no pipeline run (no lineage).
type pipelineRun struct {
	build, commit string
}

// defaultRun is the pipeline run agenttest's environment describes.
var (
	defaultRun = pipelineRun{build: "1234", commit: "6e4f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f"}
	olderRun   = pipelineRun{build: "1000", commit: "0a0a0a0a0b0b0b0b0c0c0c0c0d0d0d0d0e0e0e0e"}
)

// env is the environment of a step of this pipeline run: its own build,
// plan and job (so its own idempotency tokens) and commit.
func (p pipelineRun) env() map[string]string {
	return map[string]string{
		"BUILD_BUILDID": p.build, "BUILD_BUILDNUMBER": "20261125." + p.build, "BUILD_SOURCEVERSION": p.commit,
		"SYSTEM_PLANID": "2f0e3c43-5ad6-4f1f-9d6c-00000000" + p.build, "SYSTEM_JOBID": "5d1a3f2c-8f0e-5b5c-9f0a-00000000" + p.build,
	}
}

func (p pipelineRun) runURL() string {
	return "https://dev.azure.com/contoso/6c1a5f3e-3d4b-4a5e-9b8e-0a1b2c3d4e5f/_build/results?buildId=" + url.QueryEscape(p.build)
}

// lineage is the complete set of lineage tags this pipeline run sets on a
// version (docs/tasks/MLflowPromote.md, Lineage).
func (p pipelineRun) lineage(modelRunID, action string) map[string]string {
	if p.build == "" {
		return map[string]string{}
	}
	out := map[string]string{
		"brickferry_build_id": p.build, "brickferry_run_url": p.runURL(), "brickferry_commit": p.commit,
		"brickferry_pipeline": "churn-mlops", "brickferry_action": action,
	}
	if modelRunID != "" {
		out["brickferry_model_run_id"] = modelRunID
	}
	return out
}

// lineageOf keeps the lineage tags (brickferry_*) of a version's tags.
func lineageOf(tags map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range tags {
		if strings.HasPrefix(k, "brickferry_") {
			out[k] = v
		}
	}
	return out
}

// assertOneRunLineage checks that a version's lineage tags are all those
// of one of the pipeline runs, for one of the actions: tags written by two
// runs at once, or half-written by a killed step, would mix them.
func assertOneRunLineage(t *testing.T, got map[string]string, actions []string, runs ...pipelineRun) {
	t.Helper()
	for _, r := range runs {
		for _, a := range actions {
			if assert.ObjectsAreEqual(r.lineage(got["brickferry_model_run_id"], a), got) {
				return
			}
		}
	}
	t.Errorf("lineage tags %v are not those of one pipeline run (%v) for one of %q", got, runs, actions)
}

func registryTags(tags []ml.ModelVersionTag) map[string]string {
	out := map[string]string{}
	for _, t := range tags {
		out[t.Key] = t.Value
	}
	return out
}

// moveToStage puts a version of churn in a stage (archiving the holder) as
// the given pipeline run did, with its lineage tags.
func moveToStage(t *testing.T, c *client.DatabricksClient, version, stage string, by pipelineRun) {
	t.Helper()
	ctx := context.Background()
	reg := ml.NewModelRegistry(c)
	_, err := reg.TransitionStage(ctx, ml.TransitionModelVersionStageDatabricks{Name: "churn", Version: version, Stage: stage, ArchiveExistingVersions: true})
	require.NoError(t, err)
	for k, v := range by.lineage("", "transition to "+stage) {
		require.NoError(t, reg.SetModelVersionTag(ctx, ml.SetModelVersionTagRequest{Name: "churn", Version: version, Key: k, Value: v}))
	}
}

// stages maps every version of churn to its stage.
func stages(t *testing.T, c *client.DatabricksClient) map[string]string {
	t.Helper()
	all, err := ml.NewModelRegistry(c).SearchModelVersionsAll(context.Background(), ml.SearchModelVersionsRequest{Filter: "name='churn'"})
	require.NoError(t, err)
	out := map[string]string{}
	for _, v := range all {
		out[v.Version] = v.CurrentStage
	}
	return out
}

// versionTags maps every version of churn to its lineage tags.
func versionTags(t *testing.T, c *client.DatabricksClient) map[string]map[string]string {
	t.Helper()
	all, err := ml.NewModelRegistry(c).SearchModelVersionsAll(context.Background(), ml.SearchModelVersionsRequest{Filter: "name='churn'"})
	require.NoError(t, err)
	out := map[string]map[string]string{}
	for _, v := range all {
		out[v.Version] = lineageOf(registryTags(v.Tags))
	}
	return out
}

// ucVersions creates the Unity Catalog model main.ml.churn with n READY
// versions (their files are not needed to move aliases).
func ucVersions(t *testing.T, c *client.DatabricksClient, n int) {
	t.Helper()
	ctx := context.Background()
	_, err := catalog.NewRegisteredModels(c).Create(ctx, catalog.CreateRegisteredModelRequest{CatalogName: "main", SchemaName: "ml", Name: "churn"})
	require.NoError(t, err)
	for range n {
		var created emulator.UCModelVersionResponse
		require.NoError(t, c.Do(ctx, http.MethodPost, ucRoutes+"create", nil, nil,
			emulator.CreateUCModelVersionRequest{Name: ucModel, Source: "dbfs:/models/churn"}, &created))
		require.NoError(t, c.Do(ctx, http.MethodPost, ucRoutes+"finalize", nil, nil,
			emulator.FinalizeUCModelVersionRequest{Name: ucModel, Version: created.ModelVersion.Version}, &emulator.UCModelVersionResponse{}))
	}
}

// setAlias points an alias of main.ml.churn at a version as the given
// pipeline run did, with its lineage tags.
func setAlias(t *testing.T, c *client.DatabricksClient, alias string, version int, by pipelineRun) {
	t.Helper()
	ctx := context.Background()
	_, err := catalog.NewRegisteredModels(c).SetAlias(ctx, catalog.SetRegisteredModelAliasRequest{FullName: ucModel, Alias: alias, VersionNum: version})
	require.NoError(t, err)
	for k, v := range by.lineage("", "alias "+alias) {
		require.NoError(t, c.Do(ctx, http.MethodPost, ucRoutes+"set-tag", nil, nil,
			emulator.SetUCModelVersionTagRequest{Name: ucModel, Version: itoa(int64(version)), Key: k, Value: v}, nil))
	}
}

// aliases maps main.ml.churn's aliases to their versions.
func aliases(t *testing.T, c *client.DatabricksClient) map[string]int {
	t.Helper()
	m, err := catalog.NewRegisteredModels(c).Get(context.Background(), catalog.GetRegisteredModelRequest{FullName: ucModel, IncludeAliases: true})
	require.NoError(t, err)
	out := map[string]int{}
	for _, a := range m.Aliases {
		out[a.AliasName] = a.VersionNum
	}
	return out
}

// ucLineage reads a Unity Catalog version's lineage tags through MLflow's
// UC get route, where its tags live.
func ucLineage(t *testing.T, c *client.DatabricksClient, version int) map[string]string {
	t.Helper()
	var got emulator.UCModelVersionResponse
	require.NoError(t, c.Do(context.Background(), http.MethodGet, ucRoutes+"get", nil,
		map[string]any{"name": ucModel, "version": itoa(int64(version))}, nil, &got))
	tags := map[string]string{}
	for _, tg := range got.ModelVersion.Tags {
		tags[tg.Key] = tg.Value
	}
	return lineageOf(tags)
}
