package promote_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/artifactstest"
)

// TestCopyLargeModel copies a model of one 1 GiB file and 300 small files
// from the dev workspace registry to prod's, through the executable with its
// production tuning, and reads every byte of the new version back.
//
// The small files are there for what many files exercise: the listing read
// page by page (dev lists 100 files a page, so the folder of 300 shards
// takes three pages), signing in batches of 100, and many files in flight
// beside the large one. Those do not need 2,000 files (the test's earlier
// size): the source is a workspace registry version, signed with one
// get-signed-download-uri request per file, at most 15 a second (the SDK's
// client-side limit, docs/copy.md), so 2,000 files spent about 2 min 14 s
// of the test's 3 min 20 s waiting on that limit. The rate of many small
// files through the executable is a bench figure
// (copy_small_files_per_s_exe, docs/performance.md).
func TestCopyLargeModel(t *testing.T) {
	t.Parallel()
	w := newPagedCopyWorld(t, largeModelListPage)
	c := copyCtx(t, 10*time.Minute)
	files := churnFiles(t, artifactstest.Random("data/weights.bin", 1<<30, 21))
	files = append(files, artifactstest.SmallFiles("data/shards", 3*largeModelListPage, 22)...)
	start := time.Now()
	w.registerSource(t, c, "churn", files)
	want := digestOf(t, files)
	t.Logf("seeded %d files, %d bytes in %s", len(files), totalSize(files), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	res := w.mustCopy(t, map[string]string{"modelName": "churn", "modelVersion": "1"})
	el := time.Since(start)
	t.Logf("copied in %s (%.1f MiB/s, %.0f files/s)", el.Round(time.Millisecond), float64(totalSize(files))/(1<<20)/el.Seconds(), float64(len(files))/el.Seconds())
	assert.Equal(t, fmt.Sprint(len(files)), res.Outputs["filesCopied"])
	assert.Equal(t, fmt.Sprint(totalSize(files)), res.Outputs["bytesCopied"])
	assert.Equal(t, "1", res.Outputs["targetModelVersion"])

	start = time.Now()
	mv := registryVersions(t, c, w.prdC, "churn")
	require.Len(t, mv, 1)
	assert.Equal(t, want, versionTagMap(mv[0])["brickferry_content_digest"])
	got, n := readDigest(t, c, registryVersionFiles(t, c, w.prdC, "churn", "1"))
	assert.Equal(t, len(files), n)
	assert.Equal(t, want, got, "the version holds every byte of the source")
	t.Logf("read back in %s", time.Since(start).Round(time.Millisecond))
}

// largeModelListPage is how many files a page of dev's listing holds in
// TestCopyLargeModel.
const largeModelListPage = 100
