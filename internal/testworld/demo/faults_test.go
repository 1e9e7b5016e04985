package demo_test

import (
	"fmt"
	"net/http"
	"regexp"
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

// route is a method and a path of the Databricks API; an id the pipeline's
// runs make afresh each time (a logged model's) is written {model_id}, a
// path pattern the fault rules match (emulator.FaultRule.Path).
type route struct{ method, path string }

func (r route) String() string { return r.method + " " + r.path }

// loggedModelID is the id segment of a logged model's routes.
var loggedModelID = regexp.MustCompile(`/logged-models/m-[0-9a-f]+`)

// routeOf is the route of a request, its logged model id as {model_id}.
func routeOf(r emulator.Request) route {
	return route{r.Method, loggedModelID.ReplaceAllString(r.Path, "/logged-models/{model_id}")}
}

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
				seen[routeOf(r)] = true
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

// plan is how one sample pipeline's seeds fail: its write routes and blob
// writes (from its clean run), each seed failing forced of the (route,
// after-commit kind) pairs for certain, taken in turn, so that the sample's
// seeds go through every pair.
type plan struct {
	writes []route
	blobs  int
	forced int
}

func newPlan(clean outcome, seeds int) plan {
	p := plan{writes: writeRoutes(clean), blobs: blobWrites(clean)}
	pairs := len(p.writes) * len(apiAfterCommit)
	// At least 3 a seed; more when there are too few seeds to go through
	// every pair otherwise.
	p.forced = max(3, (pairs+seeds-1)/max(seeds, 1))
	return p
}

// api fails, in each workspace, for the i-th seed (from 0) of the sample:
//   - the first request of p.forced write routes after carrying it out
//     (500, or the connection reset), the (route, kind) pairs taken in turn;
//   - a seeded 20 % of every request with 429 (with and without
//     Retry-After), 503, 500, a dropped connection, or, after carrying it
//     out, 500 or a reset connection.
func (p plan) api(seed uint64, i int) *emulator.FaultPlan {
	var rules []emulator.FaultRule
	pairs := len(p.writes) * len(apiAfterCommit)
	for j := range min(p.forced, pairs) {
		n := (p.forced*i + j) % pairs
		r, kind := p.writes[n%len(p.writes)], apiAfterCommit[n/len(p.writes)]
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

// blob fails, for the i-th seed of the sample, one blob write after the
// blob service carried it out (the writes and kinds taken in turn), and a
// seeded 10 % of every blob request: 503 ServerBusy, 500 InternalError, a
// dropped connection, or for a write 500 OperationTimedOut or a reset
// connection after it was carried out.
func (p plan) blob(seed uint64, i int) *azurite.FaultPlan {
	n := i % (p.blobs * len(blobAfterCommit))
	return &azurite.FaultPlan{
		Seed: seed, Rate: 0.1,
		Kinds:  append([]azurite.Fault{azurite.FaultServerBusy, azurite.FaultInternalError, azurite.FaultDrop}, blobAfterCommit...),
		Writes: map[int]azurite.Fault{1 + n%p.blobs: blobAfterCommit[n/p.blobs]},
	}
}

// TestFaults runs the sample pipelines (workspace registry and Unity
// Catalog, the seeds alternating) against workspaces that fail 20 % of
// requests and a blob store that fails 10 %, for 20 seeds (200 in make
// stress), with faults before the server does the work and after it (the
// request carried out, its answer lost): the faults that let a retry make a
// duplicate. Each run must end in exactly the state of a clean run of its
// sample: the same versions, stages or aliases and tags, one training run,
// one scoring job and run, one MLflow run per experiment, the table written
// once, one endpoint config; and print no secret. Across the seeds, every
// write route of each sample's clean run and its blob writes must have been
// failed after commit in both ways (500 and dropped connection).
func TestFaults(t *testing.T) {
	t.Parallel() // beside TestSamplePipelineEndToEnd
	n := seeds(20, 200)
	samples := suiteSamples()
	refs := make([]outcome, len(samples))
	plans := make([]plan, len(samples))
	// The clean runs at the same time, each in its own subtest (t.Run may
	// be called from several goroutines at once).
	var wg sync.WaitGroup
	cleaned := make([]bool, len(samples))
	for k, sample := range samples {
		wg.Go(func() {
			cleaned[k] = t.Run("clean "+sample.File, func(t *testing.T) { refs[k] = clean(t, sample) })
		})
	}
	wg.Wait()
	for k, sample := range samples {
		require.True(t, cleaned[k], "the clean run of %s failed", sample.File)
		plans[k] = newPlan(refs[k], n/len(samples))
		require.NotEmpty(t, plans[k].writes, "the clean run of %s wrote nothing", sample.File)
		require.Positive(t, plans[k].blobs, "the clean run of %s wrote no blob", sample.File)
		t.Logf("%s: clean state:\n%s", sample.File, refs[k].state)
		t.Logf("%s: write routes of a clean run (%d a seed failed after commit, in turn): %v; blob writes: %d", sample.File, plans[k].forced, plans[k].writes, plans[k].blobs)
	}

	var mu sync.Mutex
	seen := make([]map[string]bool, len(samples)) // "route kind" and "blob ... kind" that hit a request carried out
	for k := range seen {
		seen[k] = map[string]bool{}
	}
	ran := 0
	// Ten seeds at a time: a seed spends most of its 10 to 30 s waiting on
	// the executable's retry backoff and the emulated workspaces (the
	// package's CPU time is about a third of its wall time); four at a
	// time took 105 s for the 20 seeds, ten at a time 53 s, each seed as
	// long as before. Four under make stress, whose executable is the
	// race build (2.3-2.7 times slower, docs/reliability.md).
	parallel(t, n, seeds(10, 4), func(t *testing.T, seed uint64) {
		k, i := int(seed-1)%len(samples), int(seed-1)/len(samples)
		ref, p := refs[k], plans[k]
		o := runSample(t, demo.Options{Sample: samples[k], Fast: true, Blob: blob(t), Faults: p.api(seed, i), BlobFaults: p.blob(seed, i)})
		require.NoError(t, o.err, o.out)
		require.Equal(t, "Succeeded", o.report.Result.Result, o.out)
		if diff := o.state.Diff(ref.state); len(diff) > 0 {
			t.Errorf("%s: the state after faults differs from a clean run's:\n  %s\nclean:\n%s\nfaults:\n%s", samples[k].File, strings.Join(diff, "\n  "), ref.state, o.state)
		}
		faults, afterCommit := 0, map[string]bool{}
		for _, ws := range []*emulator.Workspace{o.report.World.Dev, o.report.World.Prod} {
			for _, r := range ws.Requests() {
				if r.Fault != "" {
					faults++
				}
				if r.Fault.AfterCommit() && r.Committed == http.StatusOK {
					afterCommit[fmt.Sprintf("%s %s", routeOf(r), r.Fault)] = true
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
		for key := range afterCommit {
			seen[k][key] = true
		}
	})
	if ran < n {
		return // some seeds were skipped (-run) or stopped: no coverage to check
	}
	// Every write route and the blob writes of each sample were failed
	// after they were carried out, both ways, in at least one seed.
	var missing []string
	for k, sample := range samples {
		t.Logf("%s: %d (route or blob write, kind) pairs lost the answer to a request carried out", sample.File, len(seen[k]))
		for _, r := range plans[k].writes {
			for _, kind := range apiAfterCommit {
				if key := fmt.Sprintf("%s %s", r, kind); !seen[k][key] {
					missing = append(missing, sample.File+": "+key)
				}
			}
		}
		for _, kind := range blobAfterCommit {
			found := false
			for key := range seen[k] {
				found = found || (strings.HasPrefix(key, "blob ") && strings.HasSuffix(key, " "+string(kind)))
			}
			if !found {
				missing = append(missing, sample.File+": blob write "+string(kind))
			}
		}
	}
	assert.Empty(t, missing, "write routes never failed after a request was carried out (the plan must cover every create of the pipeline)")
}
