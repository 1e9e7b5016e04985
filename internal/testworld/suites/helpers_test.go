package suites_test

import (
	"flag"
	"maps"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

var seedFlag = flag.Int64("suites.seed", 0, "seed of the suites' random points: signal and kill points, delays (0: from the clock, logged)")

func TestMain(m *testing.M) { testworld.Main(m) }

// startWorkspace starts an https workspace signed by ca.
func startWorkspace(t *testing.T, opts emulator.Options) *emulator.Workspace {
	t.Helper()
	ws, _ := emulator.StartHTTPS(t, opts)
	return ws
}

// agentRun is task as the agent starts it, connected to ws with the
// variable-group method (databricks-host, secret databricks-token).
func agentRun(t *testing.T, ws *emulator.Workspace, task string, inputs, env map[string]string) agenttest.Run {
	_, caFile := emulator.TestCA(t)
	e := map[string]string{"AGENT_CAINFO": caFile}
	maps.Copy(e, env)
	return agenttest.Run{
		Task: task, Inputs: inputs, Env: e,
		Variables: map[string]string{"databricks-host": ws.URL()},
		Secrets:   map[string]string{"databricks-token": ws.Token},
	}
}

// sdk is a client of ws for setting up and checking state.
func sdk(t *testing.T, ws *emulator.Workspace) *client.DatabricksClient {
	t.Helper()
	cfg := ws.SDKConfig()
	cfg.RateLimitPerSecond = 100000
	cfg.RetryTimeoutSeconds = 30
	c, err := client.New(cfg)
	require.NoError(t, err)
	return c
}

// tick moves a manual clock while a process runs on the wall clock, step
// every 5 ms; the returned function stops it.
func tick(c *emulator.ManualClock, step time.Duration) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				c.Advance(step)
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// points draws a suite's random points (delays, request counts, seeds)
// from -suites.seed, so that the seed a run logs replays it. stream keeps
// the suites' sequences apart. Safe for concurrent use.
type points struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newPoints(t *testing.T, stream uint64) *points {
	seed := *seedFlag
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("random points from seed %d (replay with -suites.seed=%d)", seed, seed)
	return &points{rng: rand.New(rand.NewPCG(uint64(seed), stream))}
}

// fork is a source of its own for one subtest. Forked in a fixed order
// before the subtests run in parallel, each subtest draws the same points
// for the same seed.
func (p *points) fork() *points {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &points{rng: rand.New(rand.NewPCG(p.rng.Uint64(), p.rng.Uint64()))}
}

func (p *points) intn(n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.IntN(n)
}

func (p *points) uint64() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.Uint64()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
