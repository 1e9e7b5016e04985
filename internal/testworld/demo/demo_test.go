package demo_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/demo"
)

// TestSamplePipelineEndToEnd runs examples/azure-pipelines.yml with the built
// executable against the emulated workspaces and Azure stand-ins, then checks
// the state it left in both workspaces, and that no secret was printed.
func TestSamplePipelineEndToEnd(t *testing.T) {
	root, err := azurite.RepoRoot()
	require.NoError(t, err)
	var out strings.Builder
	outDir := t.TempDir()
	report, stop, err := demo.Run(context.Background(), demo.Options{
		Exe:      agenttest.Executable(t),
		Pipeline: filepath.Join(root, "examples", "azure-pipelines.yml"),
		ModelDir: filepath.Join(root, "examples", "demo", "churn-model"),
		OutDir:   outDir,
		Out:      &out,
	})
	t.Cleanup(stop)
	require.NoError(t, err, out.String())
	require.Equal(t, "Succeeded", report.Result.Result, out.String())

	for _, s := range report.Secrets {
		assert.NotContains(t, out.String(), s, "a secret was printed")
	}
	assert.NotContains(t, out.String(), report.World.Prod.Token)
	assert.NotContains(t, out.String(), report.World.Dev.Token)

	ctx := context.Background()
	dev := registry(t, report.World.Dev.SDKConfig())
	devVersions, err := dev.SearchModelVersionsAll(ctx, ml.SearchModelVersionsRequest{Filter: "name='" + demo.ModelName + "'"})
	require.NoError(t, err)
	require.Len(t, devVersions, 1, "one version registered in dev")
	assert.Equal(t, "Production", devVersions[0].CurrentStage, "dev's version was promoted to Production after the copy")
	assert.Equal(t, "1001", tag(devVersions[0].Tags, "brickferry_build_id"))

	prod := registry(t, report.World.Prod.SDKConfig())
	prodVersions, err := prod.SearchModelVersionsAll(ctx, ml.SearchModelVersionsRequest{Filter: "name='" + demo.ModelName + "'"})
	require.NoError(t, err)
	require.Len(t, prodVersions, 1, "one version copied to prod")
	pv := prodVersions[0]
	assert.Equal(t, "Production", pv.CurrentStage)
	assert.Equal(t, ml.ModelVersionStatusReady, pv.Status)
	assert.Equal(t, devVersions[0].Version, tag(pv.Tags, "brickferry_source_version"), "lineage names the source version")
	assert.Equal(t, devVersions[0].RunId, tag(pv.Tags, "brickferry_source_run_id"))
	run, ok := report.World.Prod.MLflowRun(pv.RunId)
	require.True(t, ok, "the prod version comes from a run in prod")
	assert.NotEmpty(t, run.Data.Metrics, "the prod run carries the source run's metrics")

	rows, _, ok := report.World.Prod.Table(demo.OutputTable)
	require.True(t, ok, "the predictions table exists in prod")
	assert.Equal(t, int64(demo.ScoredRows), rows)

	c, err := client.New(report.World.Prod.SDKConfig())
	require.NoError(t, err)
	ep, err := serving.NewServingEndpoints(c).Get(ctx, serving.GetServingEndpointRequest{Name: demo.Endpoint})
	require.NoError(t, err)
	assert.Equal(t, serving.EndpointStateReadyReady, ep.State.Ready)
	require.Len(t, ep.Config.ServedEntities, 1)
	assert.Equal(t, pv.Version, ep.Config.ServedEntities[0].EntityVersion)

	summaries, err := filepath.Glob(filepath.Join(outDir, "*.md"))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(summaries), 8, "a summary tab per task step")
}

func registry(t *testing.T, cfg *config.Config) *ml.ModelRegistryAPI {
	t.Helper()
	c, err := client.New(cfg)
	require.NoError(t, err)
	return ml.NewModelRegistry(c)
}

func tag(tags []ml.ModelVersionTag, key string) string {
	for _, t := range tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}
