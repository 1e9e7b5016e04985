package demo_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/demo"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// route is a method and a path of the Databricks API.
type route struct{ method, path string }

func (r route) String() string { return r.method + " " + r.path }

// smokeTest is the prefix of the model's scoring route: the smoke test's
// request gets only the faults a client rides out for any request (429,
// 503), as a 500 or no answer from a model endpoint is what the smoke test
// exists to report.
const smokeTest = "/serving-endpoints/"

// writeRoutes are the routes a clean run sent writes to (every method but
// GET and HEAD), in either workspace, the smoke test's scoring request
// aside: every create the pipeline makes, read from what it did rather
// than listed by hand, so a create added to the pipeline gets faults too.
func writeRoutes(clean outcome) []route {
	seen := map[route]bool{}
	for _, ws := range []*emulator.Workspace{clean.report.World.Dev, clean.report.World.Prod} {
		for _, r := range ws.Requests() {
			if r.IsWrite() && !strings.HasPrefix(r.Path, smokeTest) {
				seen[route{r.Method, r.Path}] = true
			}
		}
	}
	out := make([]route, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b route) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// blobWrites counts the blob writes of a clean run.
func blobWrites(clean outcome) int {
	n := 0
	for _, r := range clean.report.World.BlobProxy.Requests() {
		if r.IsWrite() {
			n++
		}
	}
	return n
}

var apiAfterCommit = []emulator.FaultKind{emulator.Fault500AfterCommit, emulator.FaultDropAfterCommit}

// forcedPerSeed is how many (write route, after-commit kind) pairs each
// seed fails for certain. Seed s takes pairs forcedPerSeed·(s-1) ... in
// turn, so 20 seeds go through every pair of up to 30 routes.
const forcedPerSeed = 3

// forcedAfterCommit is the pair number n: the route and the fault its first
// request gets after it was carried out.
func forcedAfterCommit(writes []route, n int) (route, emulator.FaultKind) {
	n %= len(writes) * len(apiAfterCommit)
	return writes[n%len(writes)], apiAfterCommit[n/len(writes)]
}

// faultPlan fails, in each workspace:
//   - the first request of forcedPerSeed write routes after carrying it out
//     (500, or the connection reset), the routes and kinds taken in turn by
//     seed so that the seeds of make test cover every pair;
//   - a seeded 20 % of every request with 429 (with and without
//     Retry-After), 503, 500, a dropped connection, or, after carrying it
//     out, 500 or a reset connection.
func faultPlan(seed uint64, writes []route) *emulator.FaultPlan {
	var rules []emulator.FaultRule
	for j := range forcedPerSeed {
		r, kind := forcedAfterCommit(writes, forcedPerSeed*int(seed-1)+j)
		rules = append(rules, emulator.FaultRule{Path: r.path, Method: r.method, Rate: 1, Limit: 1, Kinds: []emulator.FaultKind{kind}})
	}
	rules = append(rules, emulator.FaultRule{
		Prefix: smokeTest, Method: http.MethodPost, Rate: 0.2,
		Kinds: []emulator.FaultKind{emulator.Fault429, emulator.Fault429RetryAfter, emulator.Fault503},
	}, emulator.FaultRule{
		Rate: 0.2,
		Kinds: append([]emulator.FaultKind{
			emulator.Fault429, emulator.Fault429RetryAfter, emulator.Fault503, emulator.Fault500, emulator.FaultDrop,
		}, apiAfterCommit...),
	})
	return &emulator.FaultPlan{Seed: seed, Rules: rules}
}

var blobAfterCommit = []azurite.Fault{azurite.Fault500AfterCommit, azurite.FaultDropAfterCommit}

// blobFaultPlan fails one blob write after the blob service carried it out
// (the writes and kinds taken in turn by seed), and a seeded 10 % of every
// blob request: 503 ServerBusy, 500 InternalError, a dropped connection, or
// for a write 500 OperationTimedOut or a reset connection after it was
// carried out.
func blobFaultPlan(seed uint64, writes int) *azurite.FaultPlan {
	n := int(seed-1) % (writes * len(blobAfterCommit))
	return &azurite.FaultPlan{
		Seed: seed, Rate: 0.1,
		Kinds:  append([]azurite.Fault{azurite.FaultServerBusy, azurite.FaultInternalError, azurite.FaultDrop}, blobAfterCommit...),
		Writes: map[int]azurite.Fault{1 + n%writes: blobAfterCommit[n/writes]},
	}
}

// TestFaults runs the sample pipeline against workspaces that fail 20 % of
// requests and a blob store that fails 10 %, for 20 seeds (200 in make
// stress), with faults before the server does the work and after it (the
// request carried out, its answer lost): the faults that let a retry make a
// duplicate. Each run must end in exactly the state of a clean run: the
// same versions, stages and tags, one training run, one scoring job and run,
// one MLflow run per experiment, the table written once, one endpoint
// config; and print no secret. Across the seeds, every write route of a
// clean run and every blob write must have been failed after commit in
// both ways (500 and dropped connection).
func TestFaults(t *testing.T) {
	ref := clean(t)
	t.Logf("clean state:\n%s", ref.state)
	writes := writeRoutes(ref)
	nBlob := blobWrites(ref)
	require.NotEmpty(t, writes, "the clean run wrote nothing")
	require.Positive(t, nBlob, "the clean run wrote no blob")
	t.Logf("write routes of a clean run (each failed after commit in turn): %v; blob writes: %d", writes, nBlob)

	var mu sync.Mutex
	seen := map[string]bool{} // "route kind" and "blob kind" that hit a request carried out
	ran := 0
	n := seeds(20, 200)
	parallel(t, n, 4, func(t *testing.T, seed uint64) {
		o := runSample(t, demo.Options{Fast: true, Blob: blob(t), Faults: faultPlan(seed, writes), BlobFaults: blobFaultPlan(seed, nBlob)})
		require.NoError(t, o.err, o.out)
		require.Equal(t, "Succeeded", o.report.Result.Result, o.out)
		if diff := o.state.Diff(ref.state); len(diff) > 0 {
			t.Errorf("the state after faults differs from a clean run's:\n  %s\nclean:\n%s\nfaults:\n%s", strings.Join(diff, "\n  "), ref.state, o.state)
		}
		faults, afterCommit := 0, map[string]bool{}
		for _, ws := range []*emulator.Workspace{o.report.World.Dev, o.report.World.Prod} {
			for _, r := range ws.Requests() {
				if r.Fault != "" {
					faults++
				}
				if r.Fault.AfterCommit() && r.Committed == http.StatusOK {
					afterCommit[fmt.Sprintf("%s %s", route{r.Method, r.Path}, r.Fault)] = true
				}
			}
		}
		for _, r := range o.report.World.BlobProxy.Requests() {
			if r.Fault.AfterCommit() && r.Committed >= 200 && r.Committed < 300 {
				afterCommit[fmt.Sprintf("blob %s comp=%s %s", r.Method, r.Comp, r.Fault)] = true
			}
		}
		assert.Positive(t, faults, "faults were injected")
		assertNoSecrets(t, o, o.out)
		mu.Lock()
		defer mu.Unlock()
		ran++
		for k := range afterCommit {
			seen[k] = true
		}
	})
	if ran < n {
		return // some seeds were skipped (-run) or stopped: no coverage to check
	}
	t.Logf("%d (route or blob write, kind) pairs lost the answer to a request carried out", len(seen))
	// Every write route and the blob writes were failed after they were
	// carried out, both ways, in at least one seed.
	var missing []string
	for _, r := range writes {
		for _, k := range apiAfterCommit {
			if key := fmt.Sprintf("%s %s", r, k); !seen[key] {
				missing = append(missing, key)
			}
		}
	}
	for _, k := range blobAfterCommit {
		found := false
		for key := range seen {
			found = found || (strings.HasPrefix(key, "blob ") && strings.HasSuffix(key, " "+string(k)))
		}
		if !found {
			missing = append(missing, "blob write "+string(k))
		}
	}
	assert.Empty(t, missing, "write routes never failed after a request was carried out (the plan must cover every create of the pipeline)")
}
