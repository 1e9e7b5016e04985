package demo_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/demo"
)

// stress reports whether the long variants run (make stress sets it).
func stress() bool { return os.Getenv("BRICKFERRY_STRESS") == "1" }

// seeds is how many seeds a seeded suite runs: short in make test, long in
// make stress.
func seeds(short, long int) int {
	if stress() {
		return long
	}
	return short
}

// samplePipeline is the pipeline file of sample: its own, unless
// BRICKFERRY_SUITE_PIPELINE names another (to run the suites on part of it).
func samplePipeline(t *testing.T, sample demo.Sample) string {
	if p := os.Getenv("BRICKFERRY_SUITE_PIPELINE"); p != "" {
		return p
	}
	root, err := azurite.RepoRoot()
	require.NoError(t, err)
	return filepath.Join(root, filepath.FromSlash(sample.File))
}

// suiteSamples are the sample pipelines the suites run: both shipped ones
// (workspace registry, Unity Catalog), or only the workspace-registry one
// when BRICKFERRY_SUITE_PIPELINE replaces its file.
func suiteSamples() []demo.Sample {
	if os.Getenv("BRICKFERRY_SUITE_PIPELINE") != "" {
		return []demo.Sample{demo.WorkspaceRegistry()}
	}
	return []demo.Sample{demo.WorkspaceRegistry(), demo.UnityCatalog()}
}

// outcome is one run of the sample pipeline in a fresh world.
type outcome struct {
	report *demo.Report
	state  demo.State
	out    string // the readable log, and every step's raw stdout and stderr
	err    error
}

// runSample runs the sample pipeline opts.Sample (the workspace-registry
// one when unset) with opts (Exe, Pipeline, ModelDir, OutDir and Out filled
// in) and reads the state it left.
func runSample(t *testing.T, opts demo.Options) outcome {
	t.Helper()
	root, err := azurite.RepoRoot()
	require.NoError(t, err)
	var out strings.Builder
	if opts.Sample.File == "" {
		opts.Sample = demo.WorkspaceRegistry()
	}
	opts.Exe = agenttest.Executable(t)
	opts.Pipeline = samplePipeline(t, opts.Sample)
	opts.ModelDir = filepath.Join(root, "examples", "demo", "churn-model")
	opts.OutDir = t.TempDir()
	opts.Out = &out
	report, stop, err := demo.Run(context.Background(), opts)
	defer stop()
	o := outcome{report: report, err: err}
	if report != nil && report.World != nil {
		st, serr := report.World.State(context.Background())
		require.NoError(t, serr)
		o.state = st
	}
	var all strings.Builder
	all.WriteString(out.String())
	if report != nil && report.Result != nil {
		for _, s := range report.Result.Steps() {
			all.WriteString(s.Stdout)
			all.WriteString(s.Stderr)
		}
	}
	o.out = all.String()
	return o
}

// sasSignature is a signed storage URL's signature (sig=...).
var sasSignature = regexp.MustCompile(`[?&]sig=[A-Za-z0-9%+/=]{8,}`)

// assertNoSecrets checks that text holds none of the secrets of the run: the
// ones the runner knew (tokens, client secrets, secret variables), the ones
// the stand-ins minted (Entra and OIDC tokens), the workspaces' tokens, and
// no SAS signature.
func assertNoSecrets(t *testing.T, o outcome, text string) {
	t.Helper()
	if o.report == nil || o.report.World == nil {
		return
	}
	w := o.report.World
	secrets := append([]string{w.Dev.Token, w.Prod.Token}, o.report.Secrets...)
	secrets = append(secrets, w.Azure.Secrets()...)
	secrets = append(secrets, w.Azure.Minted()...)
	text = demo.WithoutSecretHandOver(text)
	hits := 0
	for _, s := range secrets {
		if len(s) >= 6 && strings.Contains(text, s) {
			hits++
			t.Errorf("a secret (%d characters, starting %q) appears in the output", len(s), s[:3])
		}
	}
	if m := sasSignature.FindString(text); m != "" {
		hits++
		t.Errorf("a SAS signature appears in the output: %.12s...", m)
	}
	assert.Zero(t, hits, "secrets found in the output")
}

// cleanRun is the clean run of one sample, made once.
type cleanRun struct {
	once sync.Once
	o    outcome
}

var (
	cleanMu    sync.Mutex
	cleanRuns  = map[string]*cleanRun{} // by Sample.File
	sharedBlob *azurite.Server
	blobOnce   sync.Once
)

// blob is one Azurite shared by the suites of this package (each world has
// its own containers in it).
func blob(t *testing.T) *azurite.Server {
	blobOnce.Do(func() {
		s, err := azurite.Run(context.Background(), io.Discard)
		require.NoError(t, err)
		sharedBlob = s
	})
	require.NotNil(t, sharedBlob)
	return sharedBlob
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedBlob != nil {
		sharedBlob.Close()
	}
	os.Exit(code)
}

// clean is a run of a sample pipeline without faults, made once per sample:
// the reference the suites compare with. Its blob requests pass through a
// proxy that injects nothing and records them (World.BlobProxy), like the
// fault runs'.
func clean(t *testing.T, sample demo.Sample) outcome {
	cleanMu.Lock()
	c, ok := cleanRuns[sample.File]
	if !ok {
		c = &cleanRun{}
		cleanRuns[sample.File] = c
	}
	cleanMu.Unlock()
	c.once.Do(func() {
		c.o = runSample(t, demo.Options{Sample: sample, Fast: true, Blob: blob(t), BlobFaults: &azurite.FaultPlan{}})
	})
	require.NoError(t, c.o.err, c.o.out)
	require.Equal(t, "Succeeded", c.o.report.Result.Result, c.o.out)
	return c.o
}

// parallel runs fn for seeds 1..n, width at a time. The seeds are not
// t.Parallel subtests: those would run at most -parallel at a time
// (GOMAXPROCS by default, 2 on a 2-core machine), while each run mostly
// waits on the emulated workspaces and its own retries, not on a core. Each
// of width goroutines runs its share of subtests one after the other (t.Run
// may be called from several goroutines at once).
func parallel(t *testing.T, n, width int, fn func(t *testing.T, seed uint64)) {
	t.Run("seeds", func(t *testing.T) {
		next := make(chan uint64, n)
		for i := 1; i <= n; i++ {
			next <- uint64(i)
		}
		close(next)
		var wg sync.WaitGroup
		for range width {
			wg.Go(func() {
				for seed := range next {
					t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) { fn(t, seed) })
				}
			})
		}
		wg.Wait()
	})
}
