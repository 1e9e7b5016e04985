package serve_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// afterCommitKinds are the faults that lose the answer to a request the
// workspace carried out.
var afterCommitKinds = []emulator.FaultKind{emulator.Fault500AfterCommit, emulator.FaultDropAfterCommit}

// eachLostAnswer runs scenario for each after-commit kind, in parallel, on a
// world whose endpoint serves version 1.
func eachLostAnswer(t *testing.T, scenario func(t *testing.T, w *world, kind emulator.FaultKind)) {
	t.Parallel()
	for _, kind := range afterCommitKinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, emulator.Options{})
			w.serveVersion(1, nil)
			scenario(t, w, kind)
		})
	}
}

// lostAnswer fails the first request of method to path after carrying it out.
func lostAnswer(method, path string, kind emulator.FaultKind) emulator.FaultRule {
	return emulator.FaultRule{Path: path, Method: method, Rate: 1, Limit: 1, Kinds: []emulator.FaultKind{kind}}
}

// TestUpdateWhoseAnswerIsLostIsMadeOnce: the tags PATCH and the config PUT
// of an update are carried out and their answers lost (a 500, or the
// connection reset). The transport sends both again; Databricks refuses the
// second PUT with 409 while the first one's update runs, which is this
// step's own update: the step waits for it, smoke-tests, and succeeds, with
// one config update made.
func TestUpdateWhoseAnswerIsLostIsMadeOnce(t *testing.T) {
	eachLostAnswer(t, func(t *testing.T, w *world, kind emulator.FaultKind) {
		before := w.endpoint().Config.ConfigVersion
		w.ws.ResetRequests()
		w.ws.SetFaults(emulator.FaultPlan{Rules: []emulator.FaultRule{
			lostAnswer(http.MethodPatch, "/api/2.0/serving-endpoints/"+endpoint+"/tags", kind),
			lostAnswer(http.MethodPut, "/api/2.0/serving-endpoints/"+endpoint+"/config", kind),
		}})
		res := w.run(map[string]string{"modelVersion": "2", "tags": "team=mlops"})
		w.ws.SetFaults(emulator.FaultPlan{})
		require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)

		puts := w.ws.RequestsTo(http.MethodPut, "/api/2.0/serving-endpoints/"+endpoint+"/config")
		require.NotEmpty(t, puts)
		assert.Equal(t, kind, puts[0].Fault)
		assert.Equal(t, http.StatusOK, puts[0].Committed, "the first PUT started the update")
		ep := w.endpoint()
		assert.Equal(t, before+1, ep.Config.ConfigVersion, "one config update, not two")
		assert.Equal(t, map[string]int{"churn-2": 100}, w.traffic())
		tags := map[string]string{}
		for _, tag := range ep.Tags {
			tags[tag.Key] = tag.Value
		}
		assert.Equal(t, "mlops", tags["team"], "the tags were set")
		assert.Len(t, w.ws.RequestsTo(http.MethodPost, "/serving-endpoints/"+endpoint+"/invocations"), 1, "the smoke test ran")
	})
}

// TestRollbackWhoseAnswerIsLostIsReported: the smoke test fails and the
// rollback's PUT is carried out with its answer lost: the rollback is
// waited for and reported as done, not as "could not be sent".
func TestRollbackWhoseAnswerIsLostIsReported(t *testing.T) {
	eachLostAnswer(t, func(t *testing.T, w *world, kind emulator.FaultKind) {
		w.ws.ResetRequests()
		// The smoke test's invocation fails. The update's PUT meets the
		// 1 ns latency rule (a fault that changes nothing), which spends
		// it, so the next PUT, the rollback's, loses its answer.
		w.ws.SetFaults(emulator.FaultPlan{Rules: []emulator.FaultRule{
			{Prefix: "/serving-endpoints/" + endpoint + "/invocations", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault500}, Limit: 1},
			{Path: "/api/2.0/serving-endpoints/" + endpoint + "/config", Method: http.MethodPut, Rate: 1, Kinds: []emulator.FaultKind{emulator.FaultLatency}, Latency: 1, Limit: 1},
			lostAnswer(http.MethodPut, "/api/2.0/serving-endpoints/"+endpoint+"/config", kind),
		}})
		res := w.run(map[string]string{"modelVersion": "2"})
		w.ws.SetFaults(emulator.FaultPlan{})
		require.Equal(t, agent.Failed, res.Result, res.Stdout)
		require.Len(t, res.Errors, 1)
		assert.Contains(t, res.Errors[0], "was rolled back to churn-1")
		assert.Equal(t, "true", res.Outputs["rolledBack"])
		assert.Equal(t, map[string]int{"churn-1": 100}, w.traffic())
		puts := w.ws.RequestsTo(http.MethodPut, "/api/2.0/serving-endpoints/"+endpoint+"/config")
		require.GreaterOrEqual(t, len(puts), 2)
		assert.Equal(t, kind, puts[1].Fault, "the rollback's answer was lost")
	})
}
