package demo_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/demo"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// TestSamplePipelineEndToEnd runs each shipped sample pipeline with the built
// executable against the emulated workspaces and Azure stand-ins, then checks
// the state it left in both workspaces, and that no secret was printed: the
// workspace-registry sample (stages) and the Unity Catalog one (aliases, UC
// in both workspaces) end in the same state but for where the promotion is
// recorded.
func TestSamplePipelineEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		sample demo.Sample
		// promoted is where a promoted version is: its stage or its aliases.
		devPromoted, prodPromoted string
	}{
		{demo.WorkspaceRegistry(), "Production", "Production"},
		{demo.UnityCatalog(), "@challenger @champion", "@champion"},
	} {
		t.Run(tc.sample.File, func(t *testing.T) {
			root, err := azurite.RepoRoot()
			require.NoError(t, err)
			var out strings.Builder
			outDir := t.TempDir()
			report, stop, err := demo.Run(context.Background(), demo.Options{
				Exe:      agenttest.Executable(t),
				Pipeline: filepath.Join(root, filepath.FromSlash(tc.sample.File)),
				Sample:   tc.sample,
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
			devVersions, err := demo.ModelVersions(ctx, report.World.Dev, tc.sample.DevModel)
			require.NoError(t, err)
			require.Len(t, devVersions, 1, "one version registered in dev")
			dv := devVersions[0]
			assert.Equal(t, tc.devPromoted, dv.Where, "dev's version was promoted after the copy")
			assert.Equal(t, "1001", dv.Tags["brickferry_build_id"])

			prodVersions, err := demo.ModelVersions(ctx, report.World.Prod, tc.sample.ProdModel)
			require.NoError(t, err)
			require.Len(t, prodVersions, 1, "one version copied to prod")
			pv := prodVersions[0]
			assert.Equal(t, tc.prodPromoted, pv.Where)
			assert.Equal(t, "READY", pv.Status)
			assert.Equal(t, dv.Version, pv.Tags["brickferry_source_version"], "lineage names the source version")
			assert.Equal(t, dv.RunID, pv.Tags["brickferry_source_run_id"])
			run, ok := report.World.Prod.MLflowRun(pv.RunID)
			require.True(t, ok, "the prod version comes from a run in prod")
			assert.NotEmpty(t, run.Data.Metrics, "the prod run carries the source run's metrics")
			if tc.sample.MLflow == emulator.MLflow3 {
				// Trained, registered and copied the MLflow 3 way: each
				// version is registered from a logged model of its run.
				for _, v := range []struct {
					ws    *emulator.Workspace
					model string
					run   string
				}{{report.World.Dev, tc.sample.DevModel, dv.RunID}, {report.World.Prod, tc.sample.ProdModel, pv.RunID}} {
					outputs := v.ws.RunOutputs(v.run)
					require.Len(t, outputs, 1, "%s: the run logged one model", v.ws.Name())
					mv := v.ws.UCModelVersions(v.model)
					require.NotEmpty(t, mv)
					assert.Equal(t, "models:/"+outputs[0].ModelId, mv[0].Source, v.ws.Name())
				}
			}

			rows, _, ok := report.World.Prod.Table(tc.sample.OutputTable)
			require.True(t, ok, "the predictions table exists in prod")
			assert.Equal(t, int64(demo.ScoredRows), rows)

			c, err := client.New(report.World.Prod.SDKConfig())
			require.NoError(t, err)
			ep, err := serving.NewServingEndpoints(c).Get(ctx, serving.GetServingEndpointRequest{Name: demo.Endpoint})
			require.NoError(t, err)
			assert.Equal(t, serving.EndpointStateReadyReady, ep.State.Ready)
			require.Len(t, ep.Config.ServedEntities, 1)
			assert.Equal(t, tc.sample.ProdModel, ep.Config.ServedEntities[0].EntityName)
			assert.Equal(t, pv.Version, ep.Config.ServedEntities[0].EntityVersion)

			summaries, err := filepath.Glob(filepath.Join(outDir, "*.md"))
			require.NoError(t, err)
			assert.GreaterOrEqual(t, len(summaries), 8, "a summary tab per task step")
		})
	}
}
