package train_test

import (
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// These scenarios need hours of simulated time, so they run in this process
// with the waiter's clock advancing the emulator's (newSimWorld); that also
// puts the task's code under go test -race. The others run the built
// executable on the real clock.

// TestLongRunOnSimulatedTime: a training run of one and a half hours, polled
// on the adaptive schedule, reported with its duration and MLflow run.
func TestLongRunOnSimulatedTime(t *testing.T) {
	w := newSimWorld(t)
	w.ws.OnNotebook(nb, trainBehaviour(t, 90*time.Minute))
	res := w.run(map[string]string{"notebookPath": nb, "autoscale": "2-8", "parameters": "max_depth=6"})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)

	run, ok := w.ws.MLflowRun(res.Outputs["mlflowRunId"])
	require.True(t, ok, "mlflowRunId names a real MLflow run")
	assert.Equal(t, "runs:/"+run.Info.RunId+"/model", res.Outputs["modelUri"])
	assert.Equal(t, "0.91", res.Outputs["metric_auc"])
	assert.Equal(t, "SUCCESS", res.Outputs["resultState"])
	assert.Contains(t, res.Progress, 100)
	assert.Regexp(t, `\d\d:\d\d:\d\d  run RUNNING`, res.Stdout)

	// Every 10 s after the first two minutes: about 6 polls a minute.
	polls := len(w.ws.RequestsTo("GET", "/api/2.2/jobs/runs/get"))
	assert.Greater(t, polls, 500)
	assert.Less(t, polls, 650)

	task := w.submits()[0].Tasks[0]
	require.NotNil(t, task.NewCluster.Autoscale)
	assert.Equal(t, 2, task.NewCluster.Autoscale.MinWorkers)
	assert.Equal(t, 8, task.NewCluster.Autoscale.MaxWorkers)

	require.Len(t, res.Summaries, 1)
	for _, md := range res.Summaries {
		assert.Contains(t, md, "TERMINATED/SUCCESS")
		assert.Contains(t, md, "| Duration | 1h30m7s |")
		assert.Contains(t, md, "| max_depth | 6 |")
		assert.Contains(t, md, "| auc | 0.91 | `metric_auc` |")
	}
}

// TestTimeoutOnSimulatedTime: the default timeout is two hours; a run of
// three is cancelled at the task's timeout.
func TestTimeoutOnSimulatedTime(t *testing.T) {
	w := newSimWorld(t)
	w.ws.OnNotebook(nb, emulator.Behaviour{Duration: 3 * time.Hour})
	start := w.clock.Now()
	res := w.run(map[string]string{"notebookPath": nb, "workers": "1"})
	require.Equal(t, agent.Failed, res.Result)
	assert.InDelta(t, 2*time.Hour, w.clock.Now().Sub(start), float64(time.Minute))
	cancels := w.ws.RequestsTo("POST", "/api/2.2/jobs/runs/cancel")
	require.Len(t, cancels, 1)
	assert.Equal(t, res.Outputs["runId"], itoa(cancels[0].Body.(*jobs.CancelRun).RunId))
	assert.Equal(t, "TIMEDOUT", res.Outputs["resultState"])
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "did not finish within 2h0m0s; the run was cancelled")
	assert.Equal(t, 2*3600+600, w.submits()[0].TimeoutSeconds)
	for _, md := range res.Summaries {
		assert.True(t, strings.Contains(md, "not finished") || strings.Contains(md, "CANCELED"), md)
	}
}
