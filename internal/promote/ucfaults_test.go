package promote_test

import (
	"net/http"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/registry"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// TestRegisterIntoUnityCatalogRidesOutLostAnswers: every write of a Unity
// Catalog registration (read from a clean registration's requests) is failed
// once: before the workspace does the work (500, dropped connection) or after
// it (500, reset connection). The step ends with one READY version holding
// the run's files. Finalize, which is not idempotent, is looked at after
// such a failure and sent again only while the version is still
// PENDING_REGISTRATION.
func TestRegisterIntoUnityCatalogRidesOutLostAnswers(t *testing.T) {
	t.Parallel()
	clean := startUCWorkspace(t)
	runID := train(t, clean, map[string]float64{"auc": 0.91})
	clean.ResetRequests()
	res := run(t, clean, ucRegisterInputs(runID))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	routes := map[[2]string]bool{}
	for _, r := range clean.Requests() {
		if r.IsWrite() {
			routes[[2]string{r.Method, r.Path}] = true
		}
	}
	require.Contains(t, routes, [2]string{http.MethodPost, registry.UCRoute + "finalize"})

	for _, kind := range []emulator.FaultKind{emulator.Fault500, emulator.FaultDrop, emulator.Fault500AfterCommit, emulator.FaultDropAfterCommit} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			ws := startUCWorkspace(t)
			runID := train(t, ws, map[string]float64{"auc": 0.91})
			var rules []emulator.FaultRule
			for r := range routes {
				rules = append(rules, emulator.FaultRule{Method: r[0], Path: r[1], Rate: 1, Limit: 1, Kinds: []emulator.FaultKind{kind}})
			}
			ws.SetFaults(emulator.FaultPlan{Seed: 1, Rules: rules})
			res := run(t, ws, ucRegisterInputs(runID))
			ws.SetFaults(emulator.FaultPlan{})
			require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
			for r := range routes {
				reqs := ws.RequestsTo(r[0], r[1])
				if assert.NotEmpty(t, reqs, "%s %s", r[0], r[1]) {
					assert.Equal(t, kind, reqs[0].Fault, "%s %s: the first request failed", r[0], r[1])
				}
			}
			versions := ws.UCModelVersions("main.ml.churn")
			require.Len(t, versions, 1, "one version")
			assert.Equal(t, catalog.ModelVersionInfoStatusReady, versions[0].Status)
			assert.Equal(t, fixtureFiles(t), ucFiles(t, ws, versions[0]), "exactly the run's files")
		})
	}
}
