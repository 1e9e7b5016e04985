package demo_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/demo"
)

// TestSamplePipelineEndToEnd runs each shipped sample pipeline with the built
// executable against the emulated workspaces and Azure stand-ins, then checks
// the state it left in both workspaces, and that no secret was printed: the
// workspace-registry sample (stages) and the Unity Catalog one (aliases, UC
// in both workspaces) end in the same state but for where the promotion is
// recorded.
func TestSamplePipelineEndToEnd(t *testing.T) {
	// Beside TestFaults: both mostly wait on emulated services and child
	// processes, not on a core.
	t.Parallel()
	for _, sample := range []demo.Sample{demo.WorkspaceRegistry(), demo.UnityCatalog()} {
		t.Run(sample.File, func(t *testing.T) {
			t.Parallel() // each sample in its own world (emulated workspaces, Azurite, Azure stand-ins)
			root, err := azurite.RepoRoot()
			require.NoError(t, err)
			var out strings.Builder
			outDir := t.TempDir()
			report, stop, err := demo.Run(context.Background(), demo.Options{
				Exe:      agenttest.Executable(t),
				Pipeline: filepath.Join(root, filepath.FromSlash(sample.File)),
				Sample:   sample,
				ModelDir: filepath.Join(root, "examples", "demo", "churn-model"),
				OutDir:   outDir,
				Out:      &out,
			})
			t.Cleanup(stop)
			require.NoError(t, err, out.String())
			w := report.World
			demo.CheckOutcome(t, context.Background(), demo.Outcome{
				Sample: sample, Dev: w.Dev.SDKConfig(), Prod: w.Prod.SDKConfig(), WarehouseID: demo.WarehouseID,
				Result: report.Result.Result, Output: out.String(),
				Secrets:    append([]string{w.Dev.Token, w.Prod.Token}, report.Secrets...),
				SummaryDir: outDir,
			})
		})
	}
}
