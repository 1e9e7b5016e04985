package batchscore_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// TestAnswersLostAfterCommitMakeNothingTwice: every write of a first
// BatchScore run (the notebook's folder and upload, the job's create, the
// run-now) is carried out by the workspace and its answer lost (a 500, or
// the connection reset). The built executable, with its real retrying
// transport, must end with one job, one run and the table written once: a
// create whose answer was lost is looked for before it is sent again.
func TestAnswersLostAfterCommitMakeNothingTwice(t *testing.T) {
	writes := []string{"/api/2.0/workspace/mkdirs", "/api/2.0/workspace/import", "/api/2.2/jobs/create", "/api/2.2/jobs/run-now"}
	for _, kind := range []emulator.FaultKind{emulator.Fault500AfterCommit, emulator.FaultDropAfterCommit} {
		t.Run(string(kind), func(t *testing.T) {
			w := newExeWorld(t)
			var rules []emulator.FaultRule
			for _, p := range writes {
				rules = append(rules, emulator.FaultRule{Path: p, Method: http.MethodPost, Rate: 1, Limit: 1, Kinds: []emulator.FaultKind{kind}})
			}
			w.ws.SetFaults(emulator.FaultPlan{Seed: 1, Rules: rules})
			res := w.run(t, inputs())
			w.ws.SetFaults(emulator.FaultPlan{})
			require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
			for _, p := range writes {
				reqs := w.ws.RequestsTo(http.MethodPost, p)
				require.NotEmpty(t, reqs, p)
				assert.Equal(t, kind, reqs[0].Fault, "%s: the first request lost its answer", p)
				assert.Equal(t, http.StatusOK, reqs[0].Committed, "%s: the first request was carried out", p)
			}
			all := w.jobs(t)
			var ids []int64
			for _, j := range all {
				ids = append(ids, j.JobId)
			}
			require.Len(t, ids, 1, "one job, although the answer to its create was lost: a duplicate job means the create was sent again without looking")
			assert.Len(t, w.ws.RequestsTo(http.MethodPost, "/api/2.2/jobs/create"), 1, "the lost create is found, not sent again")
			runs, err := jobs.NewJobs(w.sdk(t)).ListRunsAll(context.Background(), jobs.ListRunsRequest{JobId: all[0].JobId})
			require.NoError(t, err)
			assert.Len(t, runs, 1, "one scoring run, although the answer to run-now was lost")
			assert.Equal(t, "0", res.Outputs["tableVersion"], "the table was written once")
		})
	}
}
