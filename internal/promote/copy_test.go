package promote_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/registry"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/artifactstest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/fixtures"
)

// The MLflowPromote copy command run by the built executable, as the agent
// runs it, between two emulated workspaces whose storage is Azurite. Every
// test reads the target's state back: versions, runs, tags, and the bytes in
// storage (digest computed here from what a client downloads).

func totalSize(files []artifactstest.Source) int64 {
	var n int64
	for _, f := range files {
		n += f.Size
	}
	return n
}

func TestCopyWorkspaceToWorkspaceThenRerunReuses(t *testing.T) {
	t.Parallel()
	w := newCopyWorld(t)
	c := copyCtx(t, 90*time.Second)
	files := churnFiles(t, artifactstest.Random("data/weights.bin", 3<<20+17, 5), artifactstest.Bytes("data/empty.txt", nil))
	srcRun, v := w.registerSource(t, c, "churn", files)
	want := digestOf(t, files)
	in := map[string]string{"modelName": "churn", "modelVersion": "latest", "targetModelName": "churn-prod", "targetStage": "Production"}

	res := w.mustCopy(t, in)
	assert.Equal(t, "churn-prod", res.Outputs["targetModelName"])
	assert.Equal(t, "1", res.Outputs["targetModelVersion"])
	assert.Equal(t, "models:/churn-prod/1", res.Outputs["targetModelUri"])
	assert.Equal(t, "false", res.Outputs["reused"])
	assert.Equal(t, fmt.Sprint(len(files)), res.Outputs["filesCopied"])
	assert.Equal(t, fmt.Sprint(totalSize(files)), res.Outputs["bytesCopied"])
	assert.NotEmpty(t, res.Progress, "progress is reported while bytes move")
	runID := res.Outputs["targetRunId"]
	require.NotEmpty(t, runID)

	// The version: READY, in Production, registered from the new run, with
	// the lineage tags, and holding exactly the source's bytes.
	mv := registryVersions(t, c, w.prdC, "churn-prod")
	require.Len(t, mv, 1)
	assert.Equal(t, ml.ModelVersionStatusReady, mv[0].Status)
	assert.Equal(t, "Production", mv[0].CurrentStage)
	assert.Equal(t, runID, mv[0].RunId)
	tg := versionTagMap(mv[0])
	assert.Equal(t, w.dev.URL(), tg["brickferry_source_workspace"])
	assert.Equal(t, "churn", tg["brickferry_source_model"])
	assert.Equal(t, v, tg["brickferry_source_version"])
	assert.Equal(t, srcRun, tg["brickferry_source_run_id"])
	assert.Contains(t, tg["brickferry_source_run_url"], w.dev.URL()+"/ml/experiments/")
	assert.Contains(t, tg["brickferry_source_run_url"], srcRun)
	assert.Equal(t, want, tg["brickferry_content_digest"])
	assert.Equal(t, "transition to Production", tg["brickferry_action"], "the last action on the version")
	assert.Equal(t, "1234", tg["brickferry_build_id"])
	assert.Equal(t, "6e4f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f", tg["brickferry_commit"])
	assert.Contains(t, tg["brickferry_run_url"], "_build/results?buildId=1234")
	got, n := readDigest(t, c, registryVersionFiles(t, c, w.prdC, "churn-prod", "1"))
	assert.Equal(t, len(files), n)
	assert.Equal(t, want, got, "the registered version holds the source's bytes")

	// The run: the source run's name, params, latest metrics, user tags and
	// note, the lineage, FINISHED, in the default experiment.
	r, ok := w.prd.MLflowRun(runID)
	require.True(t, ok)
	assert.Equal(t, ml.RunInfoStatusFinished, r.Info.Status)
	assert.Equal(t, "train", r.Info.RunName)
	assert.Equal(t, copySourceParams, kv(r.Data.Params, func(p ml.Param) (string, string) { return p.Key, p.Value }))
	metrics := map[string]float64{}
	for _, m := range r.Data.Metrics {
		metrics[m.Key] = m.Value
	}
	assert.Equal(t, copySourceMetrics, metrics, "latest values")
	rt := runTagMap(r)
	assert.Equal(t, "churn", rt["team"])
	assert.Equal(t, "weekly retrain", rt["mlflow.note.content"])
	assert.NotContains(t, rt, "mlflow.source.type", "workspace-specific system tags stay behind")
	assert.Equal(t, "complete", rt["brickferry_copy_status"])
	assert.Equal(t, want, rt["brickferry_content_digest"])
	assert.Equal(t, srcRun, rt["brickferry_source_run_id"])
	assert.Equal(t, "copy", rt["brickferry_action"])
	runs := experimentRuns(t, c, w.prdC, "/Shared/brickferry/churn-prod")
	require.Len(t, runs, 1)
	assert.Equal(t, runID, runs[0].Info.RunId)

	require.Len(t, res.Summaries, 1)
	for _, md := range res.Summaries {
		assert.Contains(t, md, w.dev.URL())
		assert.Contains(t, md, w.prd.URL()+"/ml/models/churn-prod/versions/1")
		assert.Contains(t, md, "| `brickferry_content_digest` | "+want+" |")
	}

	// The rerun finds the same source version with the same digest: it
	// reuses version 1, copies nothing and writes nothing but the stage.
	w.prd.ResetRequests()
	in["modelVersion"] = v
	res = w.mustCopy(t, in)
	assert.Equal(t, "true", res.Outputs["reused"])
	assert.Equal(t, "1", res.Outputs["targetModelVersion"])
	assert.Equal(t, runID, res.Outputs["targetRunId"])
	assert.Equal(t, "0", res.Outputs["bytesCopied"])
	assert.Equal(t, "0", res.Outputs["filesCopied"])
	assert.Len(t, registryVersions(t, c, w.prdC, "churn-prod"), 1, "no second version")
	assert.Len(t, experimentRuns(t, c, w.prdC, "/Shared/brickferry/churn-prod"), 1, "no second run")
	for _, wr := range writesTo(w.prd) {
		assert.Equal(t, "POST /api/2.0/mlflow/databricks/model-versions/transition-stage", wr, "the rerun only moves the stage")
	}
}

func TestCopyWorkspaceToUnityCatalog(t *testing.T) {
	t.Parallel()
	w := newCopyWorld(t)
	c := copyCtx(t, 90*time.Second)
	files := churnFiles(t)
	srcRun, v := w.registerSource(t, c, "churn", files)
	in := map[string]string{"modelName": "churn", "modelVersion": v, "targetModelName": "prod.ml.churn", "targetAlias": "@champion"}

	res := w.mustCopy(t, in)
	assert.Equal(t, "models:/prod.ml.churn/1", res.Outputs["targetModelUri"])
	assert.Equal(t, "false", res.Outputs["reused"])
	assert.Equal(t, fmt.Sprint(len(files)), res.Outputs["filesCopied"])
	versions := w.prd.UCModelVersions("prod.ml.churn")
	require.Len(t, versions, 1)
	assert.Equal(t, catalog.ModelVersionInfoStatusReady, versions[0].Status)
	assert.Equal(t, res.Outputs["targetRunId"], versions[0].RunId)
	alias, err := catalog.NewModelVersions(w.prdC).GetByAlias(c, catalog.GetByAliasRequest{FullName: "prod.ml.churn", Alias: "champion"})
	require.NoError(t, err)
	assert.Equal(t, 1, alias.Version)
	got, n := readDigest(t, c, ucVersionFiles(t, c, w.prdC, "prod.ml.churn", 1))
	assert.Equal(t, len(files), n)
	assert.Equal(t, digestOf(t, files), got, "the version's storage location holds the source's bytes")
	r, ok := w.prd.MLflowRun(res.Outputs["targetRunId"])
	require.True(t, ok)
	assert.Equal(t, ml.RunInfoStatusFinished, r.Info.Status)
	assert.Equal(t, copySourceParams, kv(r.Data.Params, func(p ml.Param) (string, string) { return p.Key, p.Value }))
	assert.Equal(t, srcRun, runTagMap(r)["brickferry_source_run_id"])
	var uc emulator.UCModelVersionResponse
	require.NoError(t, w.prdC.Do(c, http.MethodGet, "/api/2.0/mlflow/unity-catalog/model-versions/get", nil,
		map[string]any{"name": "prod.ml.churn", "version": "1"}, nil, &uc))
	ucTags := kv(uc.ModelVersion.Tags, func(t emulator.UCModelVersionTag) (string, string) { return t.Key, t.Value })
	assert.Equal(t, v, ucTags["brickferry_source_version"])
	assert.Equal(t, w.dev.URL(), ucTags["brickferry_source_workspace"])

	w.prd.ResetRequests()
	res = w.mustCopy(t, in)
	assert.Equal(t, "true", res.Outputs["reused"])
	assert.Equal(t, "1", res.Outputs["targetModelVersion"])
	assert.Equal(t, "0", res.Outputs["bytesCopied"])
	assert.Len(t, w.prd.UCModelVersions("prod.ml.churn"), 1)
	for _, wr := range writesTo(w.prd) {
		assert.Contains(t, []string{"PUT /api/2.1/unity-catalog/models/prod.ml.churn/aliases/champion", "POST /api/2.0/mlflow/unity-catalog/model-versions/set-tag"}, wr,
			"the rerun only sets the alias")
	}
}

// TestCopyToTheSourceWorkspaceIsRefused: a target whose inputs resolve to
// the source workspace (here the dev URL and token given as the target) is
// refused before anything is read or written, and the message says how each
// side was resolved. (Two workspaces on one Unity Catalog metastore, where a
// copy moves no bytes, is modelcopy's TestUnityCatalogSameMetastoreMovesNoBytes.)
func TestCopyToTheSourceWorkspaceIsRefused(t *testing.T) {
	t.Parallel()
	w := newCopyWorld(t)
	c := copyCtx(t, 60*time.Second)
	w.registerUCSource(t, c, "main", "ml", "churn", churnFiles(t))
	w.dev.ResetRequests()
	served := w.proxy.Served()

	res := w.copy(t, map[string]string{"modelName": "main.ml.churn", "modelVersion": "1", "targetAlias": "champion",
		"targetWorkspaceUrl": w.dev.URL(), "targetToken": w.dev.Token})
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "the workspace and the target workspace are the same workspace ("+w.dev.URL())
	assert.Contains(t, res.Errors[0], "the workspace's credentials are the token input, the target workspace's are the token input")
	assert.Empty(t, writesTo(w.dev), "nothing written")
	assert.Empty(t, w.prd.Requests(), "the other workspace is not involved")
	assert.Equal(t, served, w.proxy.Served(), "no storage request at all")
	assert.Len(t, w.dev.UCModelVersions("main.ml.churn"), 1)
}

func TestCopyStorageFaultsFinishOrLeaveNothingHalfMade(t *testing.T) {
	t.Parallel()
	w := newCopyWorld(t)
	c := copyCtx(t, 120*time.Second)
	files := churnFiles(t, artifactstest.SmallFiles("extra", 30, 3)...)
	files = append(files, artifactstest.Random("weights.bin", 12<<20, 4))
	w.registerSource(t, c, "churn", files)
	want := digestOf(t, files)

	// Azure Storage under load: 503 ServerBusy, 500, dropped connections.
	w.proxy.SetRate(0.15)
	before := w.proxy.Injected()
	res := w.mustCopy(t, map[string]string{"modelName": "churn", "modelVersion": "1"})
	injected := w.proxy.Injected() - before
	w.proxy.SetRate(0)
	t.Logf("%d storage faults injected", injected)
	assert.Positive(t, injected)
	mv := registryVersions(t, c, w.prdC, "churn")
	require.Len(t, mv, 1)
	assert.Equal(t, want, versionTagMap(mv[0])["brickferry_content_digest"])
	got, _ := readDigest(t, c, registryVersionFiles(t, c, w.prdC, "churn", "1"))
	assert.Equal(t, want, got)
	assert.Equal(t, fmt.Sprint(totalSize(files)), res.Outputs["bytesCopied"])

	// Storage down until the copy's time is up: the task fails, its run is
	// FAILED and no version exists.
	w.proxy.SetRate(1)
	in := map[string]string{"modelName": "churn", "modelVersion": "1", "targetModelName": "churn-b", "copyTimeoutMinutes": "0.1"}
	res = w.copy(t, in)
	w.proxy.SetRate(0)
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Contains(t, res.Message, "did not finish within 6s")
	assert.Empty(t, registryVersions(t, c, w.prdC, "churn-b"), "no version from partial files")
	runs := experimentRuns(t, c, w.prdC, "/Shared/brickferry/churn-b")
	require.Len(t, runs, 1)
	assert.Equal(t, ml.RunInfoStatusFailed, runs[0].Info.Status)
	assert.Equal(t, "failed", runTagMap(runs[0])["brickferry_copy_status"])

	// The next attempt resumes that run and finishes.
	delete(in, "copyTimeoutMinutes")
	res = w.mustCopy(t, in)
	assert.Equal(t, runs[0].Info.RunId, res.Outputs["targetRunId"])
	assert.Contains(t, res.Stdout, "Resuming run")
	assert.Len(t, registryVersions(t, c, w.prdC, "churn-b"), 1)
	assert.Len(t, experimentRuns(t, c, w.prdC, "/Shared/brickferry/churn-b"), 1)
	got, _ = readDigest(t, c, registryVersionFiles(t, c, w.prdC, "churn-b", "1"))
	assert.Equal(t, want, got)
}

// afterCommit answers the first request to each route with a 500 after
// carrying it out: the answer a client cannot tell from a failure.
func afterCommit(routes ...string) []emulator.FaultRule {
	var out []emulator.FaultRule
	for _, r := range routes {
		out = append(out, emulator.FaultRule{Prefix: r, Method: http.MethodPost, Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault500AfterCommit}, Limit: 1})
	}
	return out
}

// injected counts the requests a workspace answered with a fault of kind.
func injected(ws *emulator.Workspace, kind emulator.FaultKind) int {
	n := 0
	for _, r := range ws.Requests() {
		if r.Fault == kind {
			n++
		}
	}
	return n
}

var flaky = emulator.FaultRule{Prefix: "/api/2.0/mlflow/", Rate: 0.15,
	Kinds: []emulator.FaultKind{emulator.Fault429, emulator.Fault503, emulator.Fault500, emulator.FaultDrop}}

func TestCopyAPIFaultsFinishOrLeaveNothingHalfMade(t *testing.T) {
	t.Parallel()
	w := newCopyWorld(t)
	c := copyCtx(t, 120*time.Second)
	files := churnFiles(t, artifactstest.SmallFiles("extra", 120, 5)...)
	w.registerSource(t, c, "churn", files)
	want := digestOf(t, files)

	// Throttling, outages, dropped connections, and creates whose answer is
	// lost after they were carried out: the copy finishes with one run and
	// one version.
	w.dev.SetFaults(emulator.FaultPlan{Seed: 5, Rules: []emulator.FaultRule{flaky}})
	w.prd.SetFaults(emulator.FaultPlan{Seed: 2, Rules: append(afterCommit(
		"/api/2.0/mlflow/experiments/create", "/api/2.0/mlflow/runs/create",
		"/api/2.0/mlflow/registered-models/create", "/api/2.0/mlflow/model-versions/create"), flaky)})
	res := w.mustCopy(t, map[string]string{"modelName": "churn", "modelVersion": "1"})
	w.dev.SetFaults(emulator.FaultPlan{})
	w.prd.SetFaults(emulator.FaultPlan{})
	assert.Equal(t, 4, injected(w.prd, emulator.Fault500AfterCommit))
	for _, route := range []string{"/api/2.0/mlflow/runs/create", "/api/2.0/mlflow/model-versions/create"} {
		assert.Equal(t, 1, len(w.prd.RequestsTo(http.MethodPost, route)), "%s: what the lost answer was about is found, not created again", route)
	}
	t.Logf("faults injected: dev %d, prod %d", len(faulted(w.dev)), len(faulted(w.prd)))
	mv := registryVersions(t, c, w.prdC, "churn")
	require.Len(t, mv, 1, "one version although its create was answered 500")
	runs := experimentRuns(t, c, w.prdC, "/Shared/brickferry/churn")
	require.Len(t, runs, 1, "one run although its create was answered 500")
	assert.Equal(t, res.Outputs["targetRunId"], runs[0].Info.RunId)
	assert.Equal(t, ml.RunInfoStatusFinished, runs[0].Info.Status)
	got, n := readDigest(t, c, registryVersionFiles(t, c, w.prdC, "churn", "1"))
	assert.Equal(t, len(files), n)
	assert.Equal(t, want, got)

	// Registration refused every time: the files are in the run, but no
	// version is made from it and the run is FAILED.
	w.prd.SetFaults(emulator.FaultPlan{Seed: 3, Rules: []emulator.FaultRule{
		{Prefix: "/api/2.0/mlflow/model-versions/create", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault500}},
	}})
	in := map[string]string{"modelName": "churn", "modelVersion": "1", "targetModelName": "churn-b"}
	res = w.copy(t, in)
	w.prd.SetFaults(emulator.FaultPlan{})
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Contains(t, res.Message, "registering churn-b")
	assert.Empty(t, registryVersions(t, c, w.prdC, "churn-b"))
	runs = experimentRuns(t, c, w.prdC, "/Shared/brickferry/churn-b")
	require.Len(t, runs, 1)
	assert.Equal(t, ml.RunInfoStatusFailed, runs[0].Info.Status)

	res = w.mustCopy(t, in)
	assert.Equal(t, runs[0].Info.RunId, res.Outputs["targetRunId"], "the failed run is resumed")
	assert.Len(t, registryVersions(t, c, w.prdC, "churn-b"), 1)
	assert.Len(t, experimentRuns(t, c, w.prdC, "/Shared/brickferry/churn-b"), 1)
}

func faulted(ws *emulator.Workspace) []emulator.Request {
	var out []emulator.Request
	for _, r := range ws.Requests() {
		if r.Fault != "" {
			out = append(out, r)
		}
	}
	return out
}

func TestCopyToUnityCatalogConvergesAfterAmbiguousFailures(t *testing.T) {
	t.Parallel()
	w := newCopyWorld(t)
	c := copyCtx(t, 90*time.Second)
	files := churnFiles(t)
	w.registerSource(t, c, "churn", files)

	// The version create and the finalize are carried out but answered 500.
	w.prd.SetFaults(emulator.FaultPlan{Seed: 4, Rules: afterCommit(
		registry.UCRoute+"create", registry.UCRoute+"finalize",
		"/api/2.1/unity-catalog/models")})
	res := w.mustCopy(t, map[string]string{"modelName": "churn", "modelVersion": "1", "targetModelName": "prod.ml.churn"})
	w.prd.SetFaults(emulator.FaultPlan{})
	assert.Equal(t, 3, injected(w.prd, emulator.Fault500AfterCommit))
	assert.Equal(t, 1, len(w.prd.RequestsTo(http.MethodPost, registry.UCRoute+"create")),
		"the version the lost answer was about is found, not created again")
	assert.Zero(t, len(w.prd.RequestsTo(http.MethodDelete, "/api/2.1/unity-catalog/models/prod.ml.churn/versions/2")))
	versions := w.prd.UCModelVersions("prod.ml.churn")
	require.Len(t, versions, 1, "the create answered 500 made the one version")
	assert.Equal(t, catalog.ModelVersionInfoStatusReady, versions[0].Status)
	assert.Equal(t, "1", res.Outputs["targetModelVersion"])
	got, _ := readDigest(t, c, ucVersionFiles(t, c, w.prdC, "prod.ml.churn", 1))
	assert.Equal(t, digestOf(t, files), got)

	// Finalize refused every time: the copy fails and deletes the version it
	// could not finalize; the next attempt resumes the run.
	w.prd.SetFaults(emulator.FaultPlan{Seed: 5, Rules: []emulator.FaultRule{
		{Prefix: registry.UCRoute + "finalize", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault500}},
	}})
	in := map[string]string{"modelName": "churn", "modelVersion": "1", "targetModelName": "prod.ml.churn-b"}
	res = w.copy(t, in)
	w.prd.SetFaults(emulator.FaultPlan{})
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Empty(t, w.prd.UCModelVersions("prod.ml.churn-b"), "no version is left unfinalized")
	runs := experimentRuns(t, c, w.prdC, "/Shared/brickferry/prod.ml.churn-b")
	require.Len(t, runs, 1)
	assert.Equal(t, ml.RunInfoStatusFailed, runs[0].Info.Status)
	res = w.mustCopy(t, in)
	assert.Equal(t, runs[0].Info.RunId, res.Outputs["targetRunId"])
	versions = w.prd.UCModelVersions("prod.ml.churn-b")
	require.Len(t, versions, 1)
	assert.Equal(t, catalog.ModelVersionInfoStatusReady, versions[0].Status)
}

func TestCopyKilledMidCopyThenRerunFinishes(t *testing.T) {
	t.Parallel()
	w := newCopyWorld(t)
	c := copyCtx(t, 120*time.Second)
	files := churnFiles(t, artifactstest.Random("weights.bin", 64<<20, 9))
	w.registerSource(t, c, "churn", files)
	in := map[string]string{"modelName": "churn", "modelVersion": "1", "copyParallelism": "2"}

	killed := w.killWhileCopying(t, in)
	assert.Zero(t, killed.Completions, "a killed process completes nothing")
	assert.Empty(t, registryVersions(t, c, w.prdC, "churn"), "killed before registering")
	runs := experimentRuns(t, c, w.prdC, "/Shared/brickferry/churn")
	require.Len(t, runs, 1)
	assert.Equal(t, ml.RunInfoStatusRunning, runs[0].Info.Status, "a killed process marks nothing")
	assert.Equal(t, "copying", runTagMap(runs[0])["brickferry_copy_status"])

	res := w.mustCopy(t, in)
	assert.Contains(t, res.Stdout, "Resuming run")
	assert.Equal(t, runs[0].Info.RunId, res.Outputs["targetRunId"])
	mv := registryVersions(t, c, w.prdC, "churn")
	require.Len(t, mv, 1)
	assert.Len(t, experimentRuns(t, c, w.prdC, "/Shared/brickferry/churn"), 1)
	got, n := readDigest(t, c, registryVersionFiles(t, c, w.prdC, "churn", mv[0].Version))
	assert.Equal(t, len(files), n)
	assert.Equal(t, digestOf(t, files), got)
}

func TestCopyDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	w := newCopyWorld(t)
	c := copyCtx(t, 60*time.Second)
	files := churnFiles(t)
	w.registerSource(t, c, "churn", files)
	w.prd.ResetRequests()
	devWrites := writesTo(w.dev)
	served := w.proxy.Served()

	in := map[string]string{"modelName": "churn", "modelVersion": "1", "dryRun": "true", "targetStage": "Production"}
	res := w.mustCopy(t, in)
	assert.Zero(t, w.prd.Writes(), "the dry run sent the target no request that could change it")
	assert.Equal(t, devWrites, writesTo(w.dev))
	assert.Equal(t, served, w.proxy.Served(), "no storage request")
	assert.Empty(t, res.Outputs)
	for _, line := range []string{
		"Dry run: the plan (nothing is changed)",
		fmt.Sprintf("Source: churn version 1 in %s", w.dev.URL()),
		fmt.Sprintf("%d files", len(files)),
		"experiment /Shared/brickferry/churn: would be created",
		"registered model churn (workspace model registry): would be created",
		"the version would then be moved to Production",
	} {
		assert.Contains(t, res.Stdout, line)
	}

	// With a copy in the target, the plan says it would be reused; still
	// nothing changes.
	w.mustCopy(t, map[string]string{"modelName": "churn", "modelVersion": "1"})
	w.prd.ResetRequests()
	res = w.mustCopy(t, in)
	assert.Empty(t, writesTo(w.prd))
	assert.Contains(t, res.Stdout, "Target version 1 of churn was copied from this source version")
	assert.Len(t, registryVersions(t, c, w.prdC, "churn"), 1)
	assert.Equal(t, "None", registryVersions(t, c, w.prdC, "churn")[0].CurrentStage)
}

func TestCopyBadInputsFailBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	dev := startWorkspace(t, emulator.Options{Name: "dev"})
	prd := startWorkspace(t, emulator.Options{Name: "prod"})
	w := &copyWorld{dev: dev, prd: prd}
	cases := []struct {
		name   string
		inputs map[string]string
		want   string // the input named in the error
	}{
		{"no version", map[string]string{"modelName": "churn"}, "(modelVersion)"},
		{"bad version", map[string]string{"modelName": "churn", "modelVersion": "v1"}, "(modelVersion)"},
		{"alias on a registry source", map[string]string{"modelName": "churn", "modelVersion": "@champion"}, "(modelVersion)"},
		{"stage on a UC source", map[string]string{"modelName": "a.b.c", "modelVersion": "Staging"}, "(modelVersion)"},
		{"stage on a UC target", map[string]string{"modelName": "churn", "modelVersion": "1", "targetModelName": "a.b.c", "targetStage": "Production"}, "(targetStage)"},
		{"alias on a registry target", map[string]string{"modelName": "churn", "modelVersion": "1", "targetAlias": "champion"}, "(targetAlias)"},
		{"bad target name", map[string]string{"modelName": "churn", "modelVersion": "1", "targetModelName": "a.b"}, "(targetModelName)"},
		{"relative experiment", map[string]string{"modelName": "churn", "modelVersion": "1", "targetExperiment": "Shared/x"}, "(targetExperiment)"},
		{"bad timeout", map[string]string{"modelName": "churn", "modelVersion": "1", "copyTimeoutMinutes": "-1"}, "(copyTimeoutMinutes)"},
		{"bad parallelism", map[string]string{"modelName": "churn", "modelVersion": "1", "copyParallelism": "500"}, "(copyParallelism)"},
		{"unexpanded macro", map[string]string{"modelName": "churn", "modelVersion": "$(register.modelVersion)"}, "(modelVersion)"},
		{"target token without URL", map[string]string{"modelName": "churn", "modelVersion": "1", "targetConnectionMethod": "token", "targetWorkspaceUrl": "", "targetToken": "dapi0123"}, "(targetWorkspaceUrl)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dev.ResetRequests()
			prd.ResetRequests()
			res := w.copy(t, tc.inputs)
			require.Equal(t, agent.Failed, res.Result, res.Stdout)
			assert.Contains(t, strings.Join(res.Errors, "\n"), tc.want)
			assert.Empty(t, dev.Requests(), "no request before the inputs are valid")
			assert.Empty(t, prd.Requests(), "no request before the inputs are valid")
		})
	}
}

func TestCopyConcurrentCopiesSettleOnOneVersion(t *testing.T) {
	t.Parallel()
	w := newCopyWorld(t)
	c := copyCtx(t, 120*time.Second)
	files := churnFiles(t, artifactstest.SmallFiles("extra", 30, 6)...)
	exe := agenttest.Executable(t)
	for round, target := range []string{"churn", "prod.ml.churn", "churn", "prod.ml.churn"} {
		_, v := w.registerSource(t, c, "churn", files)
		in := map[string]string{"modelName": "churn", "modelVersion": v, "targetModelName": target}
		// Two pipeline runs copy the same source version at the same time.
		var wg sync.WaitGroup
		results := make([]*agenttest.Result, 2)
		procs := []*agenttest.Process{w.agentRun(in).Start(t, exe), w.agentRun(in).Start(t, exe)}
		for i, p := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = p.Finish(t)
			}()
		}
		wg.Wait()
		for _, res := range results {
			require.Equal(t, agent.Succeeded, res.Result, "round %d:\n%s", round, res.Stdout)
		}
		a, b := results[0].Outputs, results[1].Outputs
		assert.Equal(t, a["targetModelVersion"], b["targetModelVersion"], "round %d: both report the same version", round)
		assert.Equal(t, a["targetRunId"], b["targetRunId"], "round %d: both report the same run", round)
		settled := strings.Contains(results[0].Stdout+results[1].Stdout, "A concurrent copy of the same source version")
		t.Logf("round %d (%s): version %s; settled by the lower-version rule: %v", round, target, a["targetModelVersion"], settled)

		// Exactly one version of this source version, holding its bytes.
		n := 0
		if target == "churn" {
			for _, mv := range registryVersions(t, c, w.prdC, target) {
				if versionTagMap(mv)["brickferry_source_version"] == v {
					n++
					assert.Equal(t, a["targetModelVersion"], mv.Version)
				}
			}
		} else {
			for _, mv := range w.prd.UCModelVersions(target) {
				r, ok := w.prd.MLflowRun(mv.RunId)
				if ok && runTagMap(r)["brickferry_source_version"] == v {
					n++
					assert.Equal(t, a["targetModelVersion"], fmt.Sprint(mv.Version))
					assert.Equal(t, catalog.ModelVersionInfoStatusReady, mv.Status)
				}
			}
		}
		assert.Equal(t, 1, n, "round %d: one target version of source version %s", round, v)
		for _, r := range experimentRuns(t, c, w.prdC, "/Shared/brickferry/"+target) {
			if runTagMap(r)["brickferry_source_version"] != v || r.Info.RunId == a["targetRunId"] {
				continue
			}
			assert.Equal(t, ml.RunInfoStatusFailed, r.Info.Status, "round %d: the other run gave way", round)
			assert.Equal(t, "superseded", runTagMap(r)["brickferry_copy_status"])
		}
	}
}

// TestCopyMLflow2TrainToMLflow3Prod: a model trained and registered in an
// MLflow 2 dev workspace (run artifacts) is copied to an MLflow 3 prod
// workspace, which gets what MLflow 3 makes there: a logged model of the
// copied run holding the files, linked to the run as its output, and a
// version registered from models:/<its id> with its model_id, in the
// workspace registry and in Unity Catalog. A rerun reuses it all.
func TestCopyMLflow2TrainToMLflow3Prod(t *testing.T) {
	t.Parallel()
	w := newEraCopyWorld(t, emulator.MLflow2, emulator.MLflow3)
	c := copyCtx(t, 90*time.Second)
	srcRun := train(t, w.dev, map[string]float64{"auc": 0.91})
	reg := run(t, w.dev, registerInputs(srcRun))
	require.Equal(t, agent.Succeeded, reg.Result, reg.Stdout)
	want := digestOf(t, churnFiles(t))

	// Workspace registry.
	res := w.mustCopy(t, map[string]string{"modelName": "churn", "modelVersion": "1", "targetStage": "Production"})
	runID := res.Outputs["targetRunId"]
	outputs := w.prd.RunOutputs(runID)
	require.Len(t, outputs, 1, "the copied run logged one model")
	id := outputs[0].ModelId
	lm, ok := w.prd.LoggedModel(id)
	require.True(t, ok)
	assert.Equal(t, ml.LoggedModelStatusLoggedModelReady, lm.Info.Status)
	assert.Equal(t, runID, lm.Info.SourceRunId)
	assert.Equal(t, "model", lm.Info.Name)
	got, n := readDigest(t, c, loggedModelFiles(t, c, w.prdC, id))
	assert.Equal(t, 4, n)
	assert.Equal(t, want, got, "the logged model holds the source's bytes")
	listed, err := ml.NewExperiments(w.prdC).ListArtifactsAll(c, ml.ListArtifactsRequest{RunId: runID})
	require.NoError(t, err)
	assert.Empty(t, listed, "nothing in the run's artifacts: MLflow 3 keeps the model's files with the model")

	mv := registryVersions(t, c, w.prdC, "churn")
	require.Len(t, mv, 1)
	assert.Equal(t, "models:/"+id, mv[0].Source)
	assert.Equal(t, runID, mv[0].RunId)
	assert.Equal(t, "Production", mv[0].CurrentStage)
	assert.Equal(t, id, registeredFrom(t, w.prd, "churn", "1"))
	assert.Equal(t, want, versionTagMap(mv[0])["brickferry_content_digest"])
	got, _ = readDigest(t, c, registryVersionFiles(t, c, w.prdC, "churn", "1"))
	assert.Equal(t, want, got, "the version holds the source's bytes")
	assert.JSONEq(t, `[{"name":"churn","version":"1"}]`, modelVersionsTag(t, w.prd, id))

	w.prd.ResetRequests()
	res = w.mustCopy(t, map[string]string{"modelName": "churn", "modelVersion": "1", "targetStage": "Production"})
	assert.Equal(t, "true", res.Outputs["reused"])
	assert.Equal(t, runID, res.Outputs["targetRunId"])
	assert.Empty(t, w.prd.RequestsTo(http.MethodPost, "/api/2.0/mlflow/logged-models"), "no second logged model")

	// Unity Catalog.
	res = w.mustCopy(t, map[string]string{"modelName": "churn", "modelVersion": "1", "targetModelName": "prod.ml.churn", "targetAlias": "champion"})
	ucRun := res.Outputs["targetRunId"]
	outputs = w.prd.RunOutputs(ucRun)
	require.Len(t, outputs, 1)
	ucID := outputs[0].ModelId
	versions := w.prd.UCModelVersions("prod.ml.churn")
	require.Len(t, versions, 1)
	assert.Equal(t, catalog.ModelVersionInfoStatusReady, versions[0].Status)
	assert.Equal(t, "models:/"+ucID, versions[0].Source)
	assert.Equal(t, ucRun, versions[0].RunId)
	var uc emulator.UCModelVersionResponse
	require.NoError(t, w.prdC.Do(c, http.MethodGet, "/api/2.0/mlflow/unity-catalog/model-versions/get", nil,
		map[string]any{"name": "prod.ml.churn", "version": "1"}, nil, &uc))
	assert.Equal(t, ucID, uc.ModelVersion.ModelID)
	got, _ = readDigest(t, c, ucVersionFiles(t, c, w.prdC, "prod.ml.churn", 1))
	assert.Equal(t, want, got, "the version's storage location holds the source's bytes")
	got, _ = readDigest(t, c, loggedModelFiles(t, c, w.prdC, ucID))
	assert.Equal(t, want, got, "and so does the logged model it was registered from")
}

// TestCopyLoggedModelSource copies versions registered from a logged model
// (MLflow 3 dev; the files are the registry's copy, the logged model's name
// names the target's model) to an MLflow 3 prod (a logged model again) and
// to an MLflow 2 prod (the run's artifacts, a version registered from them).
func TestCopyLoggedModelSource(t *testing.T) {
	t.Parallel()
	for _, prodEra := range []emulator.MLflowEra{emulator.MLflow3, emulator.MLflow2} {
		t.Run(prodEra.String(), func(t *testing.T) {
			t.Parallel()
			w := newEraCopyWorld(t, emulator.MLflow3, prodEra)
			c := copyCtx(t, 90*time.Second)
			nb := "/Repos/mlops/train-churn-model"
			w.dev.OnNotebook(nb, emulator.Behaviour{Train: &emulator.Train{
				Experiment: "/Shared/churn/experiment", ModelDir: fixtures.ChurnModel(t), ArtifactPath: "churn_model",
			}})
			srcRun, _ := w.dev.TrainedRun(t, nb, func() {})
			srcModel := w.dev.RunOutputs(srcRun)[0].ModelId
			in := registerInputs(srcRun)
			in["modelUri"] = "models:/" + srcModel
			reg := run(t, w.dev, in)
			require.Equal(t, agent.Succeeded, reg.Result, reg.Stdout)
			want := digestOf(t, churnFiles(t))

			res := w.mustCopy(t, map[string]string{"modelName": "churn", "modelVersion": "1", "targetModelName": "churn-prod"})
			runID := res.Outputs["targetRunId"]
			mv := registryVersions(t, c, w.prdC, "churn-prod")
			require.Len(t, mv, 1)
			got, n := readDigest(t, c, registryVersionFiles(t, c, w.prdC, "churn-prod", "1"))
			assert.Equal(t, 4, n)
			assert.Equal(t, want, got)
			if prodEra == emulator.MLflow2 {
				run, _ := w.prd.MLflowRun(runID)
				assert.Equal(t, run.Info.ArtifactUri+"/churn_model", mv[0].Source, "registered from the run's artifacts, in a folder named after the source's logged model")
				return
			}
			outputs := w.prd.RunOutputs(runID)
			require.Len(t, outputs, 1)
			assert.Equal(t, "models:/"+outputs[0].ModelId, mv[0].Source)
			lm, _ := w.prd.LoggedModel(outputs[0].ModelId)
			assert.Equal(t, "churn_model", lm.Info.Name, "named after the source's logged model")
		})
	}
}

// killWhileCopying starts the copy and SIGKILLs it once the first progress
// is reported: bytes are flowing.
func (w *copyWorld) killWhileCopying(t *testing.T, in map[string]string) *agenttest.Result {
	t.Helper()
	p := w.agentRun(in).Start(t, agenttest.Executable(t))
	require.Eventually(t, func() bool { return strings.Contains(p.Stdout(), "##vso[task.setprogress") }, 60*time.Second, 5*time.Millisecond,
		"the copy never started moving bytes:\n%s", p.Stdout())
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGKILL))
	return p.Finish(t)
}

// TestCopyToMLflow3KilledMidUploadThenRerunFinishes: a copy killed while
// it uploads into the target's logged model leaves the run and the logged
// model PENDING; the rerun resumes both, and no second logged model or
// version appears.
func TestCopyToMLflow3KilledMidUploadThenRerunFinishes(t *testing.T) {
	t.Parallel()
	w := newEraCopyWorld(t, emulator.MLflow2, emulator.MLflow3)
	c := copyCtx(t, 120*time.Second)
	files := churnFiles(t, artifactstest.Random("weights.bin", 64<<20, 9))
	w.registerSource(t, c, "churn", files)
	in := map[string]string{"modelName": "churn", "modelVersion": "1", "copyParallelism": "2"}

	w.killWhileCopying(t, in)
	runs := experimentRuns(t, c, w.prdC, "/Shared/brickferry/churn")
	require.Len(t, runs, 1)
	runID := runs[0].Info.RunId
	created := w.prd.RequestsTo(http.MethodPost, "/api/2.0/mlflow/logged-models")
	require.Len(t, created, 1, "the logged model was created before the upload")
	assert.Empty(t, registryVersions(t, c, w.prdC, "churn"))

	res := w.mustCopy(t, in)
	assert.Equal(t, runID, res.Outputs["targetRunId"])
	assert.Contains(t, res.Stdout, "Resuming logged model")
	assert.Len(t, w.prd.RequestsTo(http.MethodPost, "/api/2.0/mlflow/logged-models"), 1, "no second logged model")
	outputs := w.prd.RunOutputs(runID)
	require.Len(t, outputs, 1)
	lm, _ := w.prd.LoggedModel(outputs[0].ModelId)
	assert.Equal(t, ml.LoggedModelStatusLoggedModelReady, lm.Info.Status)
	mv := registryVersions(t, c, w.prdC, "churn")
	require.Len(t, mv, 1)
	assert.Equal(t, "models:/"+outputs[0].ModelId, mv[0].Source)
	got, n := readDigest(t, c, loggedModelFiles(t, c, w.prdC, outputs[0].ModelId))
	assert.Equal(t, len(files), n)
	assert.Equal(t, digestOf(t, files), got)
}
