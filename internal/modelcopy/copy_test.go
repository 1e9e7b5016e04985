package modelcopy_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/modelcopy"
	"github.com/brickferry/brickferry/internal/modeluri"
	"github.com/brickferry/brickferry/internal/registry"
	"github.com/brickferry/brickferry/internal/testworld/artifactstest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/fixtures"
)

func churn(t testing.TB) []artifactstest.Source {
	files, err := artifactstest.Dir(fixtures.ChurnModel(t))
	require.NoError(t, err)
	return files
}

func digestOf(t testing.TB, files []artifactstest.Source) string {
	var m artifacts.Manifest
	for _, f := range files {
		h := sha256.New()
		_, err := io.Copy(h, f.Open())
		require.NoError(t, err)
		m.Files = append(m.Files, artifacts.Sum{Path: f.Path, Size: f.Size, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	return m.Digest()
}

func registryVersions(t testing.TB, ctx context.Context, c *client.DatabricksClient, name string) []ml.ModelVersion {
	all, err := ml.NewModelRegistry(c).SearchModelVersionsAll(ctx, ml.SearchModelVersionsRequest{Filter: "name='" + name + "'"})
	require.NoError(t, err)
	return all
}

func tagMap[T any](tags []T, kv func(T) (string, string)) map[string]string {
	out := map[string]string{}
	for _, t := range tags {
		k, v := kv(t)
		out[k] = v
	}
	return out
}

func TestWorkspaceToWorkspaceThenRerunReuses(t *testing.T) {
	w := newWorld(t)
	ctx := ctxFor(t, 90*time.Second)
	files := churn(t)
	srcRun, v := w.registerSource(t, ctx, "churn", files)

	r := w.copy(t, ctx, w.deps(nil), map[string]string{"modelName": "churn", "modelVersion": "latest", "targetStage": "Production"})
	require.NoError(t, r.err, r.stdout)
	assert.Equal(t, "1", r.outputs["targetModelVersion"])
	assert.Equal(t, "models:/churn/1", r.outputs["targetModelUri"])
	assert.Equal(t, "false", r.outputs["reused"])
	assert.Equal(t, fmt.Sprint(len(files)), r.outputs["filesCopied"])
	assert.Equal(t, fmt.Sprint(r.out.Bytes), r.outputs["bytesCopied"])

	got, err := ml.NewModelRegistry(w.prdC).GetModelVersion(ctx, ml.GetModelVersionRequest{Name: "churn", Version: "1"})
	require.NoError(t, err)
	assert.Equal(t, ml.ModelVersionStatusReady, got.ModelVersion.Status)
	assert.Equal(t, "Production", got.ModelVersion.CurrentStage)
	vt := tagMap(got.ModelVersion.Tags, func(t ml.ModelVersionTag) (string, string) { return t.Key, t.Value })
	assert.Equal(t, w.dev.URL(), vt["brickferry_source_workspace"])
	assert.Equal(t, fmt.Sprint(v), vt["brickferry_source_version"])
	assert.Equal(t, srcRun, vt["brickferry_source_run_id"])
	assert.Equal(t, digestOf(t, files), vt["brickferry_content_digest"])
	assert.Equal(t, "1234", vt["brickferry_build_id"])
	assert.Equal(t, "6e4f1c2a", vt["brickferry_commit"])

	run, ok := w.prd.MLflowRun(r.outputs["targetRunId"])
	require.True(t, ok)
	assert.Equal(t, ml.RunInfoStatusFinished, run.Info.Status)
	assert.Equal(t, "train", run.Info.RunName)
	params := tagMap(run.Data.Params, func(p ml.Param) (string, string) { return p.Key, p.Value })
	assert.Equal(t, sourceParams, params)
	metrics := map[string]float64{}
	for _, m := range run.Data.Metrics {
		metrics[m.Key] = m.Value
	}
	assert.Equal(t, sourceMetrics, metrics, "latest values")
	rt := tagMap(run.Data.Tags, func(t ml.RunTag) (string, string) { return t.Key, t.Value })
	assert.Equal(t, "churn", rt["team"])
	assert.NotContains(t, rt, "mlflow.source.type", "workspace-specific system tags stay behind")
	assert.Equal(t, "complete", rt["brickferry_copy_status"])

	// The registry's copy holds the same bytes.
	listed, err := artifacts.ListRun(ctx, w.prdC, r.outputs["targetRunId"], "model")
	require.NoError(t, err)
	assert.Len(t, listed, len(files))

	// Second run: same source version, same digest → reused, nothing copied.
	w.prd.ResetRequests()
	r2 := w.copy(t, ctx, w.deps(nil), map[string]string{"modelName": "churn", "modelVersion": fmt.Sprint(v), "targetStage": "Production"})
	require.NoError(t, r2.err, r2.stdout)
	assert.Equal(t, "true", r2.outputs["reused"])
	assert.Equal(t, "1", r2.outputs["targetModelVersion"])
	assert.Equal(t, "0", r2.outputs["bytesCopied"])
	assert.Len(t, registryVersions(t, ctx, w.prdC, "churn"), 1, "no second version")
	for _, req := range w.prd.Requests() {
		if req.IsWrite() {
			assert.Contains(t, []string{"/api/2.0/mlflow/databricks/model-versions/transition-stage", "/api/2.0/mlflow/artifacts/credentials-for-read", "/api/2.0/mlflow/runs/search"}, req.Path, "the rerun writes nothing but the transition")
		}
	}
	assert.Contains(t, strings.Join(maps(r2.stdout), "\n"), "MLflow model copy")
}

func maps(stdout string) []string { return []string{stdout} }

func TestWorkspaceToUnityCatalog(t *testing.T) {
	w := newWorld(t)
	ctx := ctxFor(t, 90*time.Second)
	files := churn(t)
	w.registerSource(t, ctx, "churn", files)
	in := map[string]string{"modelName": "churn", "modelVersion": "1", "targetModelName": "prod.ml.churn", "targetAlias": "champion"}
	r := w.copy(t, ctx, w.deps(nil), in)
	require.NoError(t, r.err, r.stdout)
	assert.Equal(t, "models:/prod.ml.churn/1", r.outputs["targetModelUri"])
	// Every request waits its turn under the SDK's rate limit (15 a
	// second): the experiment is looked up once, found missing, created, and
	// its id taken from the create's answer.
	assert.Len(t, w.prd.RequestsTo(http.MethodGet, "/api/2.0/mlflow/experiments/get-by-name"), 1, "experiments/get-by-name in a fresh target")
	assert.Len(t, w.prd.RequestsTo(http.MethodPost, "/api/2.0/mlflow/experiments/create"), 1)
	versions := w.prd.UCModelVersions("prod.ml.churn")
	require.Len(t, versions, 1)
	assert.Equal(t, catalog.ModelVersionInfoStatusReady, versions[0].Status)
	assert.Equal(t, r.outputs["targetRunId"], versions[0].RunId)
	assert.Equal(t, int(w.prd.WorkspaceID), versions[0].RunWorkspaceId, "run_tracking_server_id: the workspace of the version's run, the target")
	alias, err := catalog.NewModelVersions(w.prdC).GetByAlias(ctx, catalog.GetByAliasRequest{FullName: "prod.ml.churn", Alias: "champion"})
	require.NoError(t, err)
	assert.Equal(t, 1, alias.Version)

	// The files are in the version's storage location.
	var creds registry.UCCredentialsResponse
	require.NoError(t, w.prdC.Do(ctx, http.MethodPost, registry.UCRoute+"generate-temporary-credentials", nil, nil,
		map[string]any{"name": "prod.ml.churn", "version": "1", "operation": "MODEL_VERSION_OPERATION_READ"}, &creds))
	got, err := artifacts.New(artifacts.Options{}).ListPrefix(ctx, versions[0].StorageLocation, creds.Credentials.AzureUserDelegationSAS.SASToken)
	require.NoError(t, err)
	assert.Len(t, got, len(files))

	r2 := w.copy(t, ctx, w.deps(nil), in)
	require.NoError(t, r2.err, r2.stdout)
	assert.Equal(t, "true", r2.outputs["reused"])
	assert.Len(t, w.prd.UCModelVersions("prod.ml.churn"), 1)
}

func TestUnityCatalogSameMetastoreMovesNoBytes(t *testing.T) {
	w, ctx := ucSourceWorld(t)

	// Two workspaces attached to one metastore see the same UC objects: the
	// target connection reaches the same emulated metastore.
	d := w.deps(nil)
	d.Target = func(context.Context) (*client.DatabricksClient, error) { return artifactstest.Client(w.dev) }
	w.dev.ResetRequests()
	r := w.copy(t, ctx, d, map[string]string{"modelName": "main.ml.churn", "modelVersion": "1", "targetAlias": "champion"})
	require.NoError(t, r.err, r.stdout)
	assert.Equal(t, "true", r.outputs["reused"])
	assert.Equal(t, "0", r.outputs["bytesCopied"])
	assert.Contains(t, r.stdout, "No bytes move")
	assert.Len(t, w.dev.UCModelVersions("main.ml.churn"), 1)
	// The only writes: the alias, and the lineage tags of the transition
	// (registry.Transition) on the version.
	for _, req := range w.dev.Requests() {
		if req.IsWrite() {
			assert.Contains(t, []string{"/api/2.1/unity-catalog/models/main.ml.churn/aliases/champion", registry.UCRoute + "set-tag"}, req.Path)
		}
	}
}

func TestUnityCatalogToUnityCatalogAcrossMetastores(t *testing.T) {
	w, ctx := ucSourceWorld(t)
	r := w.copy(t, ctx, w.deps(nil), map[string]string{"modelName": "main.ml.churn", "modelVersion": "1"})
	require.NoError(t, r.err, r.stdout)
	assert.Equal(t, "false", r.outputs["reused"])
	assert.Equal(t, fmt.Sprint(len(churn(t))), r.outputs["filesCopied"])
	require.Len(t, w.prd.UCModelVersions("main.ml.churn"), 1)
	prun, ok := w.prd.MLflowRun(r.outputs["targetRunId"])
	require.True(t, ok)
	assert.Len(t, prun.Data.Params, len(sourceParams))
}

// A workspace registry version is the files the registry copied when it was
// registered: changing or deleting its run afterwards changes nothing the copy
// reads (it reads through model-versions/list-artifacts and
// get-signed-download-uri, as MLflow's client does).
func TestWorkspaceRegistrySourceIsReadFromTheRegistry(t *testing.T) {
	w := newWorld(t)
	ctx := ctxFor(t, 90*time.Second)
	files := churn(t)
	runID, v := w.registerSource(t, ctx, "churn", files)
	registered := digestOf(t, files)

	// After registration the run's model is rewritten and grows a file.
	changed := []artifactstest.Source{artifactstest.Bytes("MLmodel", []byte("flavors: {}\n# rewritten after registration\n")), artifactstest.Bytes("extra.txt", []byte("not registered"))}
	require.NoError(t, artifactstest.Upload(ctx, artifacts.RunSigner(w.devC, runID, "model", true), changed, 2))

	r := w.copy(t, ctx, w.deps(nil), map[string]string{"modelName": "churn", "modelVersion": fmt.Sprint(v)})
	require.NoError(t, r.err, r.stdout)
	assert.Equal(t, fmt.Sprint(len(files)), r.outputs["filesCopied"])
	assert.Equal(t, registered, r.out.Digest, "the registered files, not the run's current ones")
	copied, err := artifacts.ListRun(ctx, w.prdC, r.outputs["targetRunId"], "model")
	require.NoError(t, err)
	var names []string
	for _, f := range copied {
		names = append(names, f.Path)
	}
	assert.NotContains(t, names, "extra.txt")
	assert.Empty(t, w.dev.RequestsTo(http.MethodGet, "/api/2.0/mlflow/artifacts/list"), "the run's artifacts are not read")

	// The run is then deleted for good: the version still copies, and
	// the copied run carries the lineage without the run's data.
	require.NoError(t, w.dev.PurgeRun(runID))
	r = w.copy(t, ctx, w.deps(nil), map[string]string{"modelName": "churn", "modelVersion": fmt.Sprint(v), "targetModelName": "churn-after-purge"})
	require.NoError(t, r.err, r.stdout)
	assert.Equal(t, registered, r.out.Digest)
	assert.Contains(t, r.stdout, "deleted after registration")
	prun, ok := w.prd.MLflowRun(r.outputs["targetRunId"])
	require.True(t, ok)
	assert.Empty(t, prun.Data.Params)
	assert.Equal(t, runID, tagMap(prun.Data.Tags, func(t ml.RunTag) (string, string) { return t.Key, t.Value })["brickferry_source_run_id"])
}

// TestCopyBetweenCredentialTypes: a workspace that hands out ADLS Gen2 SAS
// URLs with a customer-provided key (which every request must carry) on one
// side, Blob SAS URLs on the other, in both directions.
func TestCopyBetweenCredentialTypes(t *testing.T) {
	adls := func(o *emulator.Options) { o.CredentialType, o.CustomerKey = emulator.CredentialAzureADLS, true }
	cases := []struct {
		name     string
		dev, prd func(*emulator.Options)
	}{
		{"from ADLS Gen2 to Blob", adls, func(*emulator.Options) {}},
		{"from Blob to ADLS Gen2", func(*emulator.Options) {}, adls},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorldWith(t, c.dev, c.prd)
			ctx := ctxFor(t, 90*time.Second)
			files := append(churn(t), artifactstest.Random("data/weights.bin", 3<<20+11, 4))
			_, v := w.registerSource(t, ctx, "churn", files)
			d := w.deps(nil)
			d.Transfer.BlockSize = 1 << 20 // the large file in blocks (appends)
			r := w.copy(t, ctx, d, map[string]string{"modelName": "churn", "modelVersion": fmt.Sprint(v)})
			require.NoError(t, r.err, r.stdout)
			assert.Equal(t, digestOf(t, files), r.out.Digest)
			got := registryVersions(t, ctx, w.prdC, "churn")
			require.Len(t, got, 1)
			assert.Equal(t, ml.ModelVersionStatusReady, got[0].Status, "registered from the files written")
			// The registry's copy in prod holds the bytes, read back with
			// prod's own kind of URL.
			listed, err := artifacts.ListModelVersion(ctx, w.prdC, "churn", "1")
			require.NoError(t, err)
			m, err := artifacts.New(artifacts.Options{}).Hash(ctx, listed, artifacts.ModelVersionSigner(w.prdC, "churn", "1"))
			require.NoError(t, err)
			assert.Equal(t, digestOf(t, files), m.Digest())
		})
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	w := newWorld(t)
	ctx := ctxFor(t, 60*time.Second)
	w.registerSource(t, ctx, "churn", churn(t))
	w.prd.ResetRequests()
	devWrites := w.dev.Writes()
	r := w.copy(t, ctx, w.deps(nil), map[string]string{"modelName": "churn", "modelVersion": "1", "dryRun": "true", "targetStage": "Production"})
	require.NoError(t, r.err, r.stdout)
	assert.Contains(t, r.stdout, "would be created")
	assert.Contains(t, r.stdout, "Production")
	assert.Zero(t, w.prd.Writes(), "the dry run wrote to the target")
	// Reading the source's file list signs nothing and writes nothing.
	assert.Equal(t, devWrites, w.dev.Writes())
	assert.Empty(t, r.outputs)
}

func TestStorageFaultsFinish(t *testing.T) {
	w := newWorld(t)
	ctx := ctxFor(t, 90*time.Second)
	files := append(churn(t), artifactstest.SmallFiles("extra", 40, 3)...)
	files = append(files, artifactstest.Random("weights.bin", 6<<20, 4))
	w.registerSource(t, ctx, "churn", files)
	faulty := &artifactstest.FaultyTransport{Hosts: []string{w.blobHost}, Rate: 0.2, Seed: 11}
	d := w.deps(&http.Client{Transport: faulty})
	d.Transfer.Attempts = 10
	r := w.copy(t, ctx, d, map[string]string{"modelName": "churn", "modelVersion": "1"})
	require.NoError(t, r.err, r.stdout)
	assert.Positive(t, faulty.Injected.Load())
	t.Logf("%d storage faults injected", faulty.Injected.Load())
	mv := registryVersions(t, ctx, w.prdC, "churn")
	require.Len(t, mv, 1)
	assert.Equal(t, digestOf(t, files), tagMap(mv[0].Tags, func(t ml.ModelVersionTag) (string, string) { return t.Key, t.Value })["brickferry_content_digest"])
}

func TestAPIFaultsFinishOrLeaveNothingHalfMade(t *testing.T) {
	// Dev lists 100 files a page, not newWorld's 2 (paging is the other
	// tests' concern): the emulator lists the whole folder from Azurite for
	// each page, so the 250 extra files' 125 pages cost about 3.5 s per
	// copy, three copies here; under load and -race, with the SDK's retry
	// waits of 1 s and more, the test outlived its 90 s context (the SDK's
	// rate limiter, the first to look at the context, reported it).
	w := newWorldWith(t, func(o *emulator.Options) { o.ArtifactListPageSize = 100 }, func(*emulator.Options) {})
	ctx := ctxFor(t, 90*time.Second)
	files := append(churn(t), artifactstest.SmallFiles("extra", 250, 5)...)
	w.registerSource(t, ctx, "churn", files)

	// The copy's clients retry as the task's do, with short waits.
	deps := w.deps(nil)
	prd := retryingClient(t, w.prd)
	deps.Target = func(context.Context) (*client.DatabricksClient, error) { return prd, nil }

	// Throttling and brief outages: the transport retries them; the copy
	// finishes.
	w.prd.SetFaults(emulator.FaultPlan{Seed: 3, Rules: []emulator.FaultRule{
		{Prefix: "/api/2.0/mlflow/", Rate: 0.2, Kinds: []emulator.FaultKind{emulator.Fault429, emulator.Fault503}},
	}})
	r := w.copy(t, ctx, deps, map[string]string{"modelName": "churn", "modelVersion": "1"})
	require.NoError(t, r.err, r.stdout)
	require.Len(t, registryVersions(t, ctx, prd, "churn"), 1)

	// A hard failure (500) of the write credentials: the copy fails, its run
	// is FAILED, no version points at partial files.
	w.prd.SetFaults(emulator.FaultPlan{Seed: 4, Rules: []emulator.FaultRule{
		{Prefix: "/api/2.0/mlflow/artifacts/credentials-for-write", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault500}},
	}})
	r = w.copy(t, ctx, deps, map[string]string{"modelName": "churn", "modelVersion": "1", "targetModelName": "churn-b"})
	require.Error(t, r.err)
	assert.Empty(t, registryVersions(t, ctx, w.prdC, "churn-b"), "no version from partial files")
	failed := findRuns(t, ctx, w.prdC, "/Shared/brickferry/churn-b")
	require.Len(t, failed, 1)
	assert.Equal(t, ml.RunInfoStatusFailed, failed[0].Info.Status)

	// The next attempt resumes that run and finishes.
	w.prd.SetFaults(emulator.FaultPlan{})
	r = w.copy(t, ctx, deps, map[string]string{"modelName": "churn", "modelVersion": "1", "targetModelName": "churn-b"})
	require.NoError(t, r.err, r.stdout)
	assert.Equal(t, failed[0].Info.RunId, r.outputs["targetRunId"])
	assert.Len(t, registryVersions(t, ctx, w.prdC, "churn-b"), 1)
	assert.Len(t, findRuns(t, ctx, w.prdC, "/Shared/brickferry/churn-b"), 1)
}

func findRuns(t testing.TB, ctx context.Context, c *client.DatabricksClient, experiment string) []ml.Run {
	exps := ml.NewExperiments(c)
	e, err := exps.GetByName(ctx, ml.GetByNameRequest{ExperimentName: experiment})
	require.NoError(t, err)
	runs, err := exps.SearchRunsAll(ctx, ml.SearchRuns{ExperimentIds: []string{e.Experiment.ExperimentId}})
	require.NoError(t, err)
	return runs
}

func TestBadInputs(t *testing.T) {
	cases := []struct {
		name   string
		inputs map[string]string
		want   []string
	}{
		{"no model", map[string]string{"modelVersion": "1"}, []string{"Model name"}},
		{"no version", map[string]string{"modelName": "churn"}, []string{"Model version"}},
		{"bad version", map[string]string{"modelName": "churn", "modelVersion": "v1"}, []string{"not a version"}},
		{"alias on registry source", map[string]string{"modelName": "churn", "modelVersion": "@champion"}, []string{"no aliases"}},
		{"stage on UC source", map[string]string{"modelName": "a.b.c", "modelVersion": "Staging"}, []string{"no stages"}},
		{"stage on UC target", map[string]string{"modelName": "churn", "modelVersion": "1", "targetModelName": "a.b.c", "targetStage": "Production"}, []string{"Unity Catalog has no stages"}},
		{"alias on registry target", map[string]string{"modelName": "churn", "modelVersion": "1", "targetAlias": "champion"}, []string{"not aliases"}},
		{"bad target name", map[string]string{"modelName": "churn", "modelVersion": "1", "targetModelName": "a.b"}, []string{"Target model name"}},
		{"relative experiment", map[string]string{"modelName": "churn", "modelVersion": "1", "targetExperiment": "Shared/x"}, []string{"absolute workspace path"}},
		{"bad timeout", map[string]string{"modelName": "churn", "modelVersion": "1", "copyTimeoutMinutes": "-1"}, []string{"Copy timeout"}},
		{"bad parallelism", map[string]string{"modelName": "churn", "modelVersion": "1", "copyParallelism": "500"}, []string{"Files copied in parallel"}},
		{"bad stage", map[string]string{"modelName": "churn", "modelVersion": "1", "targetStage": "Prod"}, []string{"is not one of"}},
		{"unexpanded macro", map[string]string{"modelName": "churn", "modelVersion": "$(register.modelVersion)"}, []string{"$(register.modelVersion) was not expanded"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := options(t, tc.inputs)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	o, err := options(t, map[string]string{"modelName": "churn", "modelVersion": "Staging"})
	require.NoError(t, err)
	assert.Equal(t, "/Shared/brickferry/churn", o.Experiment)
	assert.Equal(t, "churn", o.Target.Full)
	assert.Equal(t, 60*time.Minute, o.Timeout)
	assert.Equal(t, 8, o.Parallel)
}

// --- kill -9 mid-copy ---------------------------------------------------

const helperEnv = "BRICKFERRY_MODELCOPY_HELPER"

// helperMain runs one copy in a child process (this test binary started
// again), so that the test can kill it with SIGKILL mid-copy.
func helperMain() int {
	env := func(k string) string { return os.Getenv("HELPER_" + k) }
	connect := func(host, token string) func(context.Context) (*client.DatabricksClient, error) {
		return func(context.Context) (*client.DatabricksClient, error) { return artifactstest.ClientFor(host, token) }
	}
	name, _ := modeluri.ParseName(env("MODEL"))
	target := name
	if t := env("TARGET"); t != "" {
		target, _ = modeluri.ParseName(t)
	}
	ref, _ := modeluri.ParseVersionRef("1")
	o := modelcopy.Options{Source: name, Version: ref, Target: target, Experiment: modelcopy.DefaultExperiment(target), Parallel: 2}
	d := modelcopy.Deps{Source: connect(env("DEV"), env("DEV_TOKEN")), Target: connect(env("PRD"), env("PRD_TOKEN")),
		Transfer: artifacts.Options{BlockSize: 1 << 20, Buffers: 2}, Poll: 50 * time.Millisecond}
	if env("DEFAULTS") != "" { // the production tuning (the copy benchmark)
		o.Parallel, d.Transfer = 8, artifacts.Options{}
	}
	_, err := modelcopy.Run(context.Background(), o, d, agent.NewLog(os.Stdout, agent.LogOptions{}))
	if err != nil {
		fmt.Println("copy failed:", err)
		return 1
	}
	return 0
}

func TestKilledMidCopyThenRerunFinishes(t *testing.T) {
	w := newWorld(t)
	ctx := ctxFor(t, 120*time.Second)
	files := append(churn(t), artifactstest.Random("weights.bin", 96<<20, 9))
	w.registerSource(t, ctx, "churn", files)

	// Kill the child once it reports its first progress: files are moving.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1",
		"HELPER_MODEL=churn", "HELPER_DEV="+w.dev.URL(), "HELPER_DEV_TOKEN="+w.dev.Token,
		"HELPER_PRD="+w.prd.URL(), "HELPER_PRD_TOKEN="+w.prd.Token)
	out := &syncBuf{mu: make(chan struct{}, 1)}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "setprogress") }, 60*time.Second, 5*time.Millisecond, "the copy never started moving bytes")
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	t.Logf("killed after:\n%s", out.String())
	assert.Empty(t, registryVersions(t, ctx, w.prdC, "churn"), "killed before registering")
	runs := findRuns(t, ctx, w.prdC, "/Shared/brickferry/churn")
	require.Len(t, runs, 1)
	assert.Equal(t, ml.RunInfoStatusRunning, runs[0].Info.Status, "a killed process marks nothing")

	r := w.copy(t, ctx, w.deps(nil), map[string]string{"modelName": "churn", "modelVersion": "1"})
	require.NoError(t, r.err, r.stdout)
	assert.Contains(t, r.stdout, "Resuming run")
	assert.Equal(t, runs[0].Info.RunId, r.outputs["targetRunId"])
	assert.Len(t, registryVersions(t, ctx, w.prdC, "churn"), 1)
	assert.Len(t, findRuns(t, ctx, w.prdC, "/Shared/brickferry/churn"), 1)
	mv := registryVersions(t, ctx, w.prdC, "churn")[0]
	assert.Equal(t, digestOf(t, files), tagMap(mv.Tags, func(t ml.ModelVersionTag) (string, string) { return t.Key, t.Value })["brickferry_content_digest"])
}

type syncBuf struct {
	mu  chan struct{}
	buf strings.Builder
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuf) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

// TestConcurrentCopiesSettleOnOneVersion runs two copies of one source
// version at the same time in this process (so that -race sees them), to a
// workspace registry and to a Unity Catalog target: both end on one version.
func TestConcurrentCopiesSettleOnOneVersion(t *testing.T) {
	w := newWorld(t)
	ctx := ctxFor(t, 90*time.Second)
	w.registerSource(t, ctx, "churn", churn(t))
	for _, target := range []string{"churn", "prod.ml.churn"} {
		in := map[string]string{"modelName": "churn", "modelVersion": "1", "targetModelName": target}
		results := make([]result, 2)
		var wg sync.WaitGroup
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = w.copy(t, ctx, w.deps(nil), in)
			}()
		}
		wg.Wait()
		for _, r := range results {
			require.NoError(t, r.err, r.stdout)
		}
		assert.Equal(t, results[0].out.TargetVersion, results[1].out.TargetVersion, target)
		assert.Equal(t, results[0].out.TargetRunID, results[1].out.TargetRunID, target)
		if target == "churn" {
			assert.Len(t, registryVersions(t, ctx, w.prdC, target), 1)
		} else {
			assert.Len(t, w.prd.UCModelVersions(target), 1)
		}
		t.Logf("%s: version %d, settled by the lower-version rule: %v", target, results[0].out.TargetVersion, results[0].out.Concurrent || results[1].out.Concurrent)
	}
}

// A source run with more tags and params than one log-batch takes (100
// each, 1000 items in all: ml.LogBatch doc comments) is copied in requests
// that keep every limit; the emulator refuses one that does not.
func TestCopyRunOverLogBatchLimits(t *testing.T) {
	w := newWorld(t)
	ctx := ctxFor(t, 90*time.Second)
	params, tags := map[string]string{}, map[string]string{}
	for i := range 150 {
		params[fmt.Sprintf("param_%03d", i)] = strconv.Itoa(i)
	}
	for i := range 250 {
		tags[fmt.Sprintf("tag_%03d", i)] = strconv.Itoa(i)
	}
	run, err := artifactstest.SeedRun(ctx, w.devC, "/Shared/churn", "model", churn(t), params, sourceMetrics, tags)
	require.NoError(t, err)
	w.registerRun(t, ctx, "churn", run.ID)

	w.prd.ResetRequests()
	r := w.copy(t, ctx, w.deps(nil), map[string]string{"modelName": "churn", "modelVersion": "1"})
	require.NoError(t, r.err, r.stdout)
	got, ok := w.prd.MLflowRun(r.outputs["targetRunId"])
	require.True(t, ok)
	assert.Equal(t, params, tagMap(got.Data.Params, func(p ml.Param) (string, string) { return p.Key, p.Value }))
	rt := tagMap(got.Data.Tags, func(t ml.RunTag) (string, string) { return t.Key, t.Value })
	for k, v := range tags {
		assert.Equal(t, v, rt[k], k)
	}
	batches := w.prd.RequestsTo(http.MethodPost, "/api/2.0/mlflow/runs/log-batch")
	for _, b := range batches {
		lb := b.Body.(*ml.LogBatch)
		assert.LessOrEqual(t, len(lb.Params), 100)
		assert.LessOrEqual(t, len(lb.Tags), 100)
		assert.LessOrEqual(t, len(lb.Params)+len(lb.Tags)+len(lb.Metrics), 1000)
	}
}

// ucSourceWorld is a world whose dev workspace holds version 1 of the Unity
// Catalog model main.ml.churn, registered from a seeded run with the churn
// model's files.
func ucSourceWorld(t *testing.T) (*world, context.Context) {
	t.Helper()
	w := newWorld(t)
	ctx := ctxFor(t, 60*time.Second)
	name, _ := modeluri.ParseName("main.ml.churn")
	run, err := artifactstest.SeedRun(ctx, w.devC, "/Shared/churn", "model", churn(t), sourceParams, sourceMetrics, nil)
	require.NoError(t, err)
	registerUCSource(t, ctx, w.devC, name, run.ID, churn(t))
	return w, ctx
}
