package promote_test

import (
	"io/fs"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/registry"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/fixtures"
)

// startUCWorkspace starts a workspace whose artifacts and Unity Catalog
// storage locations are blobs in Azurite, as registering into Unity Catalog
// uploads the model files there.
func startUCWorkspace(t *testing.T) *emulator.Workspace {
	t.Helper()
	return startUCWorkspaceOf(t, emulator.MLflow2)
}

// startUCWorkspaceOf is startUCWorkspace of this MLflow era.
func startUCWorkspaceOf(t *testing.T, era emulator.MLflowEra) *emulator.Workspace {
	t.Helper()
	az := azurite.Start(t)
	return startWorkspace(t, emulator.Options{MLflow: era, Blob: &emulator.BlobAccount{Endpoint: az.BlobEndpoint, AccountName: az.AccountName, AccountKey: az.AccountKey}})
}

func ucRegisterInputs(runID string) map[string]string {
	in := registerInputs(runID)
	in["modelName"] = "main.ml.churn"
	return in
}

// ucVersionTags reads a UC version's tags through MLflow's UC get route.
func ucVersionTags(t *testing.T, ws *emulator.Workspace, version string) map[string]string {
	t.Helper()
	var got emulator.UCModelVersionResponse
	require.NoError(t, sdk(t, ws).Do(ctx(t), http.MethodGet, "/api/2.0/mlflow/unity-catalog/model-versions/get", nil,
		map[string]any{"name": "main.ml.churn", "version": version}, nil, &got))
	out := map[string]string{}
	for _, tg := range got.ModelVersion.Tags {
		out[tg.Key] = tg.Value
	}
	return out
}

// ucFiles lists the files in a UC version's storage location (path → size)
// with read credentials, as a client loading the model would.
func ucFiles(t *testing.T, ws *emulator.Workspace, mv catalog.ModelVersionInfo) map[string]int64 {
	t.Helper()
	var creds emulator.GenerateTemporaryUCCredentialsResponse
	require.NoError(t, sdk(t, ws).Do(ctx(t), http.MethodPost, registry.UCRoute+"generate-temporary-credentials", nil, nil,
		emulator.GenerateTemporaryUCCredentialsRequest{Name: "main.ml.churn", Version: itoa(mv.Version), Operation: "MODEL_VERSION_OPERATION_READ"}, &creds))
	files, err := artifacts.New(artifacts.Options{}).ListPrefix(ctx(t), mv.StorageLocation, creds.Credentials.AzureUserDelegationSAS.SASToken)
	require.NoError(t, err)
	out := map[string]int64{}
	for _, f := range files {
		out[f.Path] = f.Size
	}
	return out
}

// fixtureFiles lists the churn model fixture (path → size).
func fixtureFiles(t *testing.T) map[string]int64 {
	t.Helper()
	dir := fixtures.ChurnModel(t)
	out := map[string]int64{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = info.Size()
		return nil
	}))
	return out
}

func TestRegisterIntoUnityCatalogUploadsAndRerunReuses(t *testing.T) {
	t.Parallel()
	ws := startUCWorkspace(t)
	runID := train(t, ws, map[string]float64{"auc": 0.91})

	res := run(t, ws, ucRegisterInputs(runID))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "main.ml.churn", res.Outputs["modelName"])
	assert.Equal(t, "1", res.Outputs["modelVersion"])
	assert.Equal(t, "models:/main.ml.churn/1", res.Outputs["modelUri"])
	assert.Equal(t, "false", res.Outputs["reused"])
	assert.NotContains(t, res.Outputs, "stage", "Unity Catalog has no stages")

	versions := ws.UCModelVersions("main.ml.churn")
	require.Len(t, versions, 1)
	mv := versions[0]
	assert.Equal(t, catalog.ModelVersionInfoStatusReady, mv.Status)
	assert.Equal(t, runID, mv.RunId)
	assert.Equal(t, int(ws.WorkspaceID), mv.RunWorkspaceId, "run_tracking_server_id links the version to the run's workspace")
	mlrun, _ := ws.MLflowRun(runID)
	assert.Equal(t, mlrun.Info.ArtifactUri+"/model", mv.Source, "runs:/ is resolved to the run's artifact location")
	assert.Equal(t, "Churn model trained by the pipeline", mv.Comment)
	assert.Equal(t, fixtureFiles(t), ucFiles(t, ws, mv), "the run's model files are in the version's storage location")

	tg := ucVersionTags(t, ws, "1")
	assert.Equal(t, "mlops", tg["team"])
	assert.Equal(t, "data-science", tg["owner"])
	assert.Equal(t, "1234", tg["brickferry_build_id"])
	assert.Equal(t, runID, tg["brickferry_model_run_id"])
	assert.Equal(t, "register", tg["brickferry_action"])
	require.Len(t, res.Summaries, 1)
	for _, md := range res.Summaries {
		assert.Contains(t, md, "| **[1]("+ws.URL()+"/explore/data/models/main/ml/churn/version/1)** |  | READY |")
	}

	// Again from the same run and path: the version is reused, nothing written.
	ws.ResetRequests()
	res = run(t, ws, ucRegisterInputs(runID))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "1", res.Outputs["modelVersion"])
	assert.Equal(t, "true", res.Outputs["reused"])
	assert.Contains(t, res.Stdout, "Version 1 of main.ml.churn was already registered from runs:/"+runID+"/model")
	assert.Len(t, ws.UCModelVersions("main.ml.churn"), 1)
	assert.Zero(t, ws.Writes(), "a rerun creates, uploads and tags nothing")

	// Another run: a new version.
	other := train(t, ws, map[string]float64{"auc": 0.93})
	res = run(t, ws, ucRegisterInputs(other))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "2", res.Outputs["modelVersion"])
	assert.Equal(t, "false", res.Outputs["reused"])
}

// TestRegisterIntoUnityCatalogFromLoggedModel registers an MLflow 3 logged
// model (models:/m-<id>) into Unity Catalog: the task reads the files from
// the logged model's artifacts with its download credentials and uploads
// them to the version, which records the model_id and the source run.
func TestRegisterIntoUnityCatalogFromLoggedModel(t *testing.T) {
	t.Parallel()
	ws := startUCWorkspaceOf(t, emulator.MLflow3)
	runID, id, in := trainLoggedModel(t, ws, "main.ml.churn")

	res := run(t, ws, in)
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "1", res.Outputs["modelVersion"])
	versions := ws.UCModelVersions("main.ml.churn")
	require.Len(t, versions, 1)
	mv := versions[0]
	assert.Equal(t, catalog.ModelVersionInfoStatusReady, mv.Status)
	assert.Equal(t, "models:/"+id, mv.Source)
	assert.Equal(t, runID, mv.RunId)
	assert.Equal(t, fixtureFiles(t), ucFiles(t, ws, mv), "the logged model's files are in the version's storage location")
	assert.NotEmpty(t, ws.RequestsTo(http.MethodPost, "/api/2.0/mlflow/logged-models/"+id+"/artifacts/credentials-for-download"))
	assert.Empty(t, ws.RequestsTo(http.MethodPost, "/api/2.0/mlflow/artifacts/credentials-for-read"), "nothing is read from the run")
	var got emulator.UCModelVersionResponse
	require.NoError(t, sdk(t, ws).Do(ctx(t), http.MethodGet, "/api/2.0/mlflow/unity-catalog/model-versions/get", nil,
		map[string]any{"name": "main.ml.churn", "version": "1"}, nil, &got))
	assert.Equal(t, id, got.ModelVersion.ModelID)
	assert.JSONEq(t, `[{"name":"main.ml.churn","version":"1"}]`, modelVersionsTag(t, ws, id))

	ws.ResetRequests()
	res = run(t, ws, in)
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "true", res.Outputs["reused"])
	assert.Zero(t, ws.Writes())
}

func TestTransitionSetsAliasAndLineageTagsOnUnityCatalogVersion(t *testing.T) {
	t.Parallel()
	ws := startUCWorkspace(t)
	runID := train(t, ws, map[string]float64{"auc": 0.91})
	res := run(t, ws, ucRegisterInputs(runID))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)

	res = run(t, ws, aliasInputs("1", "champion"))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "champion", res.Outputs["alias"])
	assert.Equal(t, map[string]int{"champion": 1}, aliases(t, ws))
	tg := ucVersionTags(t, ws, "1")
	assert.Equal(t, "alias champion", tg["brickferry_action"])
	assert.Equal(t, runID, tg["brickferry_model_run_id"])
	assert.Equal(t, "1234", tg["brickferry_build_id"])
	assert.Equal(t, "6e4f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f", tg["brickferry_commit"])
	assert.Contains(t, tg["brickferry_run_url"], "_build/results?buildId=1234")
	assert.Equal(t, "mlops", tg["team"], "the user's tags stay")
	assert.Len(t, ws.RequestsTo(http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/set-tag"), 1, "only the changed tag is written")

	// Again: the alias and every tag already hold their values.
	ws.ResetRequests()
	res = run(t, ws, aliasInputs("1", "champion"))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Zero(t, ws.Writes())
}

// TestRegisterIntoUnityCatalogFinishesAnUnfinalizedVersion: a version an
// interrupted attempt created from the same run and path (PENDING, no files)
// is filled and finalized rather than left behind next to a new one.
func TestRegisterIntoUnityCatalogFinishesAnUnfinalizedVersion(t *testing.T) {
	t.Parallel()
	ws := startUCWorkspace(t)
	runID := train(t, ws, map[string]float64{"auc": 0.91})
	_, err := catalog.NewRegisteredModels(sdk(t, ws)).Create(ctx(t), catalog.CreateRegisteredModelRequest{CatalogName: "main", SchemaName: "ml", Name: "churn"})
	require.NoError(t, err)
	mlrun, _ := ws.MLflowRun(runID)
	var created emulator.UCModelVersionResponse
	require.NoError(t, sdk(t, ws).Do(ctx(t), http.MethodPost, registry.UCRoute+"create", nil, nil,
		emulator.CreateUCModelVersionRequest{Name: "main.ml.churn", Source: mlrun.Info.ArtifactUri + "/model", RunID: runID}, &created))

	res := run(t, ws, ucRegisterInputs(runID))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "1", res.Outputs["modelVersion"])
	assert.Equal(t, "true", res.Outputs["reused"])
	assert.Contains(t, res.Stdout, "was created by an earlier attempt and not finalized")
	versions := ws.UCModelVersions("main.ml.churn")
	require.Len(t, versions, 1)
	assert.Equal(t, catalog.ModelVersionInfoStatusReady, versions[0].Status)
	assert.Equal(t, fixtureFiles(t), ucFiles(t, ws, versions[0]))
	assert.Equal(t, "register", ucVersionTags(t, ws, "1")["brickferry_action"], "lineage tags are set on the reused version")
}

// TestRegisterIntoUnityCatalogTwoPipelinesAtOnceGiveOneVersion: two
// pipeline runs register the same training run at the same moment. Each
// creates a version; the one that is not the first removes its own and
// takes the first, so both report the same version, which is finished
// (READY, with the files) and the only one of that run.
func TestRegisterIntoUnityCatalogTwoPipelinesAtOnceGiveOneVersion(t *testing.T) {
	t.Parallel()
	ws := startUCWorkspace(t)
	exe := agenttest.Executable(t)
	for round := range 3 {
		runID := train(t, ws, map[string]float64{"auc": 0.9})
		var p [2]*agenttest.Process
		for i := range p {
			r := agentRun(t, ws, ucRegisterInputs(runID))
			r.Env["BUILD_BUILDID"] = itoa(2001 + i)
			r.Env["SYSTEM_PLANID"] = "plan-" + itoa(2001+i)
			p[i] = r.Start(t, exe)
		}
		var reported []string
		for _, proc := range p {
			res := proc.Finish(t)
			require.Equal(t, agent.Succeeded, res.Result, "round %d: %v\n%s", round, res.Errors, res.Stdout)
			reported = append(reported, res.Outputs["modelVersion"])
		}
		var ofRun []catalog.ModelVersionInfo
		for _, mv := range ws.UCModelVersions("main.ml.churn") {
			if mv.RunId == runID {
				ofRun = append(ofRun, mv)
			}
		}
		require.Len(t, ofRun, 1, "round %d: one version of the run", round)
		assert.Equal(t, catalog.ModelVersionInfoStatusReady, ofRun[0].Status)
		assert.Equal(t, []string{itoa(ofRun[0].Version), itoa(ofRun[0].Version)}, reported, "round %d: both report it", round)
		assert.Equal(t, fixtureFiles(t), ucFiles(t, ws, ofRun[0]))
	}
}
