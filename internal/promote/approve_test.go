package promote_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// deploymentJob creates an MLflow 3 deployment job as Databricks' template
// lays it out (evaluation → approval → deployment, job parameters
// model_name and model_version; the approval notebook's approval_tag_name
// parameter left to the task's name), scripts its tasks (deploy fails when
// deployFails) and connects it to the Unity Catalog model.
func deploymentJob(t *testing.T, ws *emulator.Workspace, model string, deployFails bool) int64 {
	t.Helper()
	ws.OnTask("Evaluation", emulator.Behaviour{})
	ws.OnTask("Approval_Check", emulator.ApprovalCheck())
	deploy := emulator.Behaviour{}
	if deployFails {
		deploy = emulator.Behaviour{Outcome: emulator.Failed, Error: "Exception: the endpoint update failed"}
	}
	ws.OnTask("Deployment", deploy)
	created, err := jobs.NewJobs(sdk(t, ws)).Create(ctx(t), jobs.CreateJob{
		Name:       "churn deployment job",
		Parameters: []jobs.JobParameterDefinition{{Name: "model_name", Default: ""}, {Name: "model_version", Default: ""}},
		Tasks: []jobs.Task{
			{TaskKey: "Evaluation", NotebookTask: &jobs.NotebookTask{NotebookPath: "/Workspace/deployment/evaluation"}},
			{TaskKey: "Approval_Check", DependsOn: []jobs.TaskDependency{{TaskKey: "Evaluation"}},
				NotebookTask: &jobs.NotebookTask{NotebookPath: "/Workspace/deployment/approval", BaseParameters: map[string]string{"approval_tag_name": "{{task.name}}"}}},
			{TaskKey: "Deployment", DependsOn: []jobs.TaskDependency{{TaskKey: "Approval_Check"}},
				NotebookTask: &jobs.NotebookTask{NotebookPath: "/Workspace/deployment/deployment"}},
		},
	})
	require.NoError(t, err)
	ws.ConnectDeploymentJob(model, created.JobId)
	return created.JobId
}

func approveInputs(version string) map[string]string {
	return map[string]string{"command": "approve", "modelName": "main.ml.churn", "modelVersion": version, "timeoutMinutes": "1"}
}

// waitRunEnded waits (real clock) until the run ended.
func waitRunEnded(t *testing.T, ws *emulator.Workspace, runID int64) *jobs.Run {
	t.Helper()
	var run *jobs.Run
	require.Eventually(t, func() bool {
		var err error
		run, err = jobs.NewJobs(sdk(t, ws)).GetRun(ctx(t), jobs.GetRunRequest{RunId: runID})
		require.NoError(t, err)
		return run.State.LifeCycleState == jobs.RunLifeCycleStateTerminated
	}, 10*time.Second, 10*time.Millisecond)
	return run
}

// TestApproveRunsTheDeploymentJobToTheEnd: register starts the deployment
// job (and says which run); its approval task fails until approved; approve
// sets the tag, re-runs the approval task and what follows, and reports the
// run's success. A second approve changes nothing.
func TestApproveRunsTheDeploymentJobToTheEnd(t *testing.T) {
	t.Parallel()
	ws := startUCWorkspace(t)
	ucVersion(t, ws, "main.ml.churn", train(t, ws, map[string]float64{"auc": 0.9})) // creates the model
	deploymentJob(t, ws, "main.ml.churn", false)
	runID := train(t, ws, map[string]float64{"auc": 0.91})

	res := run(t, ws, ucRegisterInputs(runID))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	require.Equal(t, "2", res.Outputs["modelVersion"])
	require.NotEmpty(t, res.Outputs["deploymentRunId"], "register names the deployment job run the new version started\n%s", res.Stdout)
	assert.Contains(t, res.Outputs["deploymentRunUrl"], "/run/"+res.Outputs["deploymentRunId"])
	deployRun := waitRunEnded(t, ws, int64(mustAtoi(t, res.Outputs["deploymentRunId"])))
	require.Equal(t, jobs.RunResultStateFailed, deployRun.State.ResultState, "not approved yet: the approval task fails")
	// Someone re-runs the approval task by hand before approving: it fails
	// again, and the run now has a repair, whose id the next repair must name.
	_, err := jobs.NewJobs(sdk(t, ws)).RepairRun(ctx(t), jobs.RepairRun{RunId: deployRun.RunId, RerunTasks: []string{"Approval_Check"}, RerunDependentTasks: true})
	require.NoError(t, err)
	deployRun = waitRunEnded(t, ws, deployRun.RunId)
	require.Equal(t, jobs.RunResultStateFailed, deployRun.State.ResultState)

	res = run(t, ws, approveInputs("2"))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "Approved", ucVersionTags(t, ws, "2")["Approval_Check"])
	assert.Equal(t, "SUCCESS", res.Outputs["deploymentResult"])
	assert.Equal(t, res.Outputs["deploymentRunId"], itoa(int(deployRun.RunId)))
	assert.Len(t, ws.RequestsTo("POST", "/api/2.2/jobs/runs/repair"), 2, "the failed approval task is re-run once by the step (once by hand before)")

	ws.ResetRequests()
	res = run(t, ws, approveInputs("2"))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Empty(t, ws.RequestsTo("POST", "/api/2.2/jobs/runs/repair"), "a run that succeeded is not repaired again")
}

// TestApproveFailsWithTheDeploymentJob: the step's result is the deployment
// job run's.
func TestApproveFailsWithTheDeploymentJob(t *testing.T) {
	t.Parallel()
	ws := startUCWorkspace(t)
	ucVersion(t, ws, "main.ml.churn", train(t, ws, map[string]float64{"auc": 0.9}))
	deploymentJob(t, ws, "main.ml.churn", true)
	res := run(t, ws, ucRegisterInputs(train(t, ws, map[string]float64{"auc": 0.91})))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	waitRunEnded(t, ws, int64(mustAtoi(t, res.Outputs["deploymentRunId"])))

	res = run(t, ws, approveInputs("2"))
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	require.NotEmpty(t, res.Errors)
	assert.Contains(t, res.Errors[0], "deployment job run "+res.Outputs["deploymentRunId"]+" of version 2 ended TERMINATED/FAILED")
	assert.Equal(t, "FAILED", res.Outputs["deploymentResult"])
}

// TestApproveRefusesBeforeAnyWrite: a workspace registry model is refused
// while the inputs are read, a model without a deployment job after reading
// it; neither writes anything.
func TestApproveRefusesBeforeAnyWrite(t *testing.T) {
	t.Parallel()
	ws := startUCWorkspace(t)
	ucVersion(t, ws, "main.ml.churn", train(t, ws, map[string]float64{"auc": 0.9}))
	ws.ResetRequests()

	in := approveInputs("1")
	in["modelName"] = "churn"
	res := run(t, ws, in)
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Contains(t, res.Errors[0], "churn is a workspace model registry model: deployment jobs and their approvals are for Unity Catalog models")
	assert.Empty(t, ws.Requests(), "refused before any request")

	res = run(t, ws, approveInputs("1"))
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Contains(t, res.Errors[0], "main.ml.churn has no deployment job")
	assert.Zero(t, ws.Writes(), "nothing written")
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err, "not a number: %q", s)
	return n
}
