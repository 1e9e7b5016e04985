package demo_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/demo"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// faultPlan answers a seeded 20 % of every workspace request with 429 (with
// and without Retry-After), 503, 500 or a dropped connection.
func faultPlan(seed uint64) *emulator.FaultPlan {
	return &emulator.FaultPlan{Seed: seed, Rules: []emulator.FaultRule{{
		// The smoke test's scoring request gets only the faults a client
		// rides out for any request (429, 503): a 500 or no answer from a
		// model endpoint is what the smoke test exists to report.
		Prefix: "/serving-endpoints/", Method: http.MethodPost, Rate: 0.2,
		Kinds: []emulator.FaultKind{emulator.Fault429, emulator.Fault429RetryAfter, emulator.Fault503},
	}, {
		Rate: 0.2,
		Kinds: []emulator.FaultKind{
			emulator.Fault429, emulator.Fault429RetryAfter, emulator.Fault503, emulator.Fault500, emulator.FaultDrop,
		},
	}}}
}

// TestFaults runs the sample pipeline against workspaces that fail 20 % of
// requests and a blob store that fails 10 %, for 20 seeds (200 in make
// stress). Each run must end in exactly the state of a clean run: the same
// versions, stages and tags, one training run, one scoring job and run, the
// table written once, one endpoint config; and print no secret.
func TestFaults(t *testing.T) {
	ref := clean(t)
	t.Logf("clean state:\n%s", ref.state)
	parallel(t, seeds(20, 200), 4, func(t *testing.T, seed uint64) {
		o := runSample(t, demo.Options{Fast: true, Blob: blob(t), Faults: faultPlan(seed), BlobFaultRate: 0.1, BlobFaultSeed: seed})
		require.NoError(t, o.err, o.out)
		require.Equal(t, "Succeeded", o.report.Result.Result, o.out)
		assert.Equal(t, ref.state, o.state, "the state after faults differs from a clean run's:\nclean:\n%s\nfaults:\n%s", ref.state, o.state)
		faults := 0
		for _, ws := range []*emulator.Workspace{o.report.World.Dev, o.report.World.Prod} {
			for _, r := range ws.Requests() {
				if r.Fault != "" {
					faults++
				}
			}
		}
		assert.Positive(t, faults, "faults were injected")
		assertNoSecrets(t, o, o.out)
	})
}
