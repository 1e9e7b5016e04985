package promote_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/cli"
	"github.com/brickferry/brickferry/internal/promote"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/tasks"
)

// TestRegisterWaitsOnTheInjectedClock registers a version that takes 90
// minutes to become READY. The task's wait runs on the emulator's manual
// clock (Deps.Clock): every pause advances it instead of sleeping, so the
// wait takes milliseconds, and a wait on the wall clock would fail the test
// by its own deadline. With a 60-minute timeout the same version times out,
// also at once.
func TestRegisterWaitsOnTheInjectedClock(t *testing.T) {
	for _, c := range []struct {
		name    string
		timeout string
		want    agent.Result
	}{
		{"ready after 90 simulated minutes", "120", agent.Succeeded},
		{"timeout after 60 simulated minutes", "60", agent.Failed},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := emulator.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
			ws := startWorkspace(t, emulator.Options{Clock: clock, RegistrationDelay: 90 * time.Minute})
			runID := trainTicking(t, ws, map[string]float64{"auc": 0.9}, func() { clock.Advance(time.Second) })

			def, err := tasks.Definition("MLflowPromote")
			require.NoError(t, err)
			registry := cli.Registry{"MLflowPromote": cli.Task{Definition: def, Run: promote.Task(promote.Deps{
				Connect: auth.Direct(&auth.Workspace{Name: "workspace", Host: ws.URL(), Client: sdk(t, ws)}),
				Clock:   clock,
			})}}
			in := registerInputs(runID)
			in["timeoutMinutes"] = c.timeout
			start, began := clock.Now(), time.Now()
			res := agentRun(t, ws, in).InProcess(t, registry)
			require.Equal(t, c.want, res.Result, res.Stdout)
			assert.Less(t, time.Since(began), 30*time.Second, "the wait ran on the wall clock")
			waited := clock.Now().Sub(start)
			if c.want == agent.Succeeded {
				assert.Equal(t, "models:/churn/1", res.Outputs["modelUri"])
				assert.GreaterOrEqual(t, waited, 90*time.Minute, "READY before its registration delay")
			} else {
				assert.Contains(t, res.Stdout, "was not READY after 1h0m0s")
				assert.Less(t, waited, 90*time.Minute)
			}
			assert.Greater(t, clock.Sleeps(), int64(3), "the wait polled on the injected clock")
		})
	}
}
