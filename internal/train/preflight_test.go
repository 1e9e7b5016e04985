package train_test

import (
	"strings"
	"testing"
	"time"

	sdkcompute "github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
)

// TestWhatTheInputsNameIsCheckedBeforeTheRun: a notebook, Python file,
// cluster, instance pool or policy that is not in the workspace fails the
// step before runs/submit, so no cluster ever starts for a typo; every
// problem is reported at once.
func TestWhatTheInputsNameIsCheckedBeforeTheRun(t *testing.T) {
	w := newWorld(t)
	w.ws.OnNotebook(nb, trainBehaviour(t, 50*time.Millisecond))
	w.ws.AddInstancePool(sdkcompute.GetInstancePool{InstancePoolId: "0301-123456-pool1-abcdefgh", InstancePoolName: "ml"})
	w.ws.AddClusterPolicy(sdkcompute.Policy{PolicyId: "E0123456789ABCDEF", Name: "jobs"})

	for _, tc := range []struct {
		name     string
		inputs   map[string]string
		problems []string
	}{
		{"wrong notebook path", map[string]string{"notebookPath": "/Repos/mlops/churn/notebook/train", "workers": "1"},
			[]string{"input notebookPath: there is no notebook /Repos/mlops/churn/notebook/train in the workspace"}},
		{"a folder, not a notebook", map[string]string{"notebookPath": "/Repos/mlops/churn/notebooks", "workers": "1"},
			[]string{"input notebookPath: /Repos/mlops/churn/notebooks is a directory in the workspace"}},
		{"missing Python file", map[string]string{"runType": "pythonFile", "pythonFile": "/Shared/churn/train.py", "workers": "1"},
			[]string{"input pythonFile: there is no file /Shared/churn/train.py"}},
		{"missing cluster", map[string]string{"notebookPath": nb, "compute": "existingCluster", "clusterId": "0301-123456-nope"},
			[]string{"input clusterId: there is no cluster 0301-123456-nope"}},
		{"missing pool, policy and notebook at once", map[string]string{"notebookPath": nb + "2", "workers": "1", "instancePoolId": "0301-123456-pool9-zzzzzzzz", "nodeType": "", "policyId": "E0000000000000000"},
			[]string{"input notebookPath: there is no notebook " + nb + "2", "input instancePoolId: there is no instance pool 0301-123456-pool9-zzzzzzzz", "input policyId: there is no cluster policy E0000000000000000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w.ws.ResetRequests()
			res := w.run(tc.inputs)
			require.Equal(t, agent.Failed, res.Result, res.Stdout)
			assert.Len(t, res.Errors, len(tc.problems), strings.Join(res.Errors, "\n"))
			for _, p := range tc.problems {
				assert.Contains(t, strings.Join(res.Errors, "\n"), p)
			}
			assert.Empty(t, w.ws.RequestsTo("POST", "/api/2.2/jobs/runs/submit"), "no run was submitted")
			assert.Zero(t, w.ws.Writes(), "nothing was written")
		})
	}

	// The same step with what exists runs.
	res := w.run(map[string]string{"notebookPath": nb, "workers": "1", "instancePoolId": "0301-123456-pool1-abcdefgh", "nodeType": "", "policyId": "E0123456789ABCDEF"})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Len(t, w.submits(), 1)
}
