package modelcopy_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickops/brickops/internal/artifacts"
	"github.com/brickops/brickops/internal/artifacts/artifactstest"
)

// TestLargeModel copies a 1 GiB file plus 2,000 small files between two
// workspaces. It takes minutes: run it with BRICKOPS_LONG=1 (make bench
// measures the same copy).
func TestLargeModel(t *testing.T) {
	if os.Getenv("BRICKOPS_LONG") == "" {
		t.Skip("set BRICKOPS_LONG=1 to copy 1 GiB and 2,000 files")
	}
	w := newWorld(t)
	ctx := ctxFor(t, 20*time.Minute)
	files := append(churn(t), artifactstest.Random("data/weights.bin", 1<<30, 21))
	files = append(files, artifactstest.SmallFiles("data/shards", 2000, 22)...)
	start := time.Now()
	w.registerSource(t, ctx, "churn", files)
	t.Logf("seeded %d files in %s", len(files), time.Since(start))
	d := w.deps(nil)
	d.Transfer = artifacts.Options{}
	start = time.Now()
	r := w.copy(t, ctx, d, map[string]string{"modelName": "churn", "modelVersion": "1"})
	require.NoError(t, r.err, r.stdout)
	el := time.Since(start)
	t.Logf("copied %s bytes, %s files in %s (%.1f MiB/s)", r.outputs["bytesCopied"], r.outputs["filesCopied"], el, float64(r.out.BytesCopied)/(1<<20)/el.Seconds())
	assert.Equal(t, fmt.Sprint(len(files)), r.outputs["filesCopied"])
	assert.Equal(t, digestOf(t, files), r.out.Digest)
	require.Len(t, registryVersions(t, ctx, w.prdC, "churn"), 1)
}
