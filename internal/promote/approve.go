package promote

import (
	"context"
	"fmt"
	"strconv"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/brickferry/brickferry/internal/registry"
	"github.com/brickferry/brickferry/internal/runwait"
)

// approvalValue is the tag value the approval notebook accepts (it compares
// in lower case with "approved"), spelled as Databricks' UI writes it.
const approvalValue = "Approved"

// approvalTagParam is the parameter of Databricks' approval notebook that
// names the tag it waits for
// (https://docs.databricks.com/notebooks/source/mlflow/deployment-jobs/approval.html);
// by default the deployment job template fills it with the approval task's
// name.
const approvalTagParam = "approval_tag_name"

// approve is the approve command: the Azure DevOps side of an MLflow 3
// deployment job's approval task. Unity Catalog runs the model's deployment
// job whenever a version is created; its approval task (Databricks'
// approval notebook) fails until the version carries the approval tag with
// the value "approved". The command
//
//  1. reads the model's deployment job and the version's deployment job
//     state, and refuses before any write if the model has none;
//  2. sets the approval tag to Approved (setting it again is harmless);
//  3. if the run's approval task already failed waiting for it, re-runs that
//     task and the tasks after it (runs/repair), as approving in the
//     Databricks UI does; a run still going needs nothing more;
//  4. waits for the run (waitForDeployment), whose result is the step's.
//
// Rerunning the step after any failure is safe: the tag is set again, and a
// run whose approval task is re-running or done is not repaired again.
func (s *step) approve(ctx context.Context) (*result, error) {
	o := s.opts
	v, err := s.ws.Resolve(ctx, o.Model, o.Version)
	if err != nil {
		return nil, err
	}
	jobID, conn, err := s.ws.DeploymentJob(ctx, o.Model)
	if err != nil {
		return nil, err
	}
	if jobID == 0 {
		return nil, fmt.Errorf("%s has no deployment job: connect one to the model first (the model's page, Deployment job; or MLflow's update_registered_model(name, deployment_job_id=...)), or promote without one with the transition command", o.Model.Full)
	}
	if conn != "" && conn != "CONNECTED" {
		return nil, fmt.Errorf("the deployment job %d of %s is %s, not CONNECTED: fix the connection in the model's page", jobID, o.Model.Full, conn)
	}
	api := jobs.NewJobs(s.ws.Client)
	job, err := api.GetByJobId(ctx, jobID)
	if err != nil {
		return nil, fmt.Errorf("reading the deployment job %d of %s: %w", jobID, o.Model.Full, err)
	}
	task, tag, err := approvalTask(job, o.ApprovalTag)
	if err != nil {
		return nil, err
	}
	state, err := s.ws.DeploymentState(ctx, o.Model, v.Number)
	if err != nil {
		return nil, err
	}

	res := &result{version: v.Number, note: fmt.Sprintf("Approved for deployment job %d (tag %s).", jobID, tag)}
	s.log.Info("Approving version %d of %s for its deployment job %d: tag %s = %s.", v.Number, o.Model.Full, jobID, tag, approvalValue)
	if err := s.ws.SetTag(ctx, o.Model, v.Number, tag, approvalValue); err != nil {
		return res, err
	}
	if state == nil || state.RunID == "" {
		s.log.Warning("version %d of %s has no deployment job run (it was created before the job was connected, or the run has not started yet): the tag is set for the next run", v.Number, o.Model.Full)
		return res, nil
	}
	runID, err := strconv.ParseInt(state.RunID, 10, 64)
	if err != nil {
		return res, fmt.Errorf("the deployment job run id %q of version %d is not a run id", state.RunID, v.Number)
	}
	run, err := api.GetRun(ctx, jobs.GetRunRequest{RunId: runID})
	if err != nil {
		return res, fmt.Errorf("reading deployment job run %d: %w", runID, err)
	}
	s.log.SetOutput("deploymentRunId", state.RunID)
	s.log.SetOutput("deploymentRunUrl", run.RunPageUrl)
	s.log.Info("Deployment job run %d: %s", runID, run.RunPageUrl)
	if runwait.Ended(run) && taskFailed(run, task) {
		s.log.Info("The approval task %s failed waiting for the approval: re-running it and the tasks after it.", task)
		repair := jobs.RepairRun{RunId: runID, RerunTasks: []string{task}, RerunDependentTasks: true, LatestRepairId: latestRepair(run)}
		if _, err := api.RepairRun(ctx, repair); err != nil {
			return res, fmt.Errorf("re-running the approval task %s of deployment job run %d: %w", task, runID, err)
		}
	}
	if !o.WaitForDeployment {
		return res, nil
	}
	w := runwait.Waiter{Runs: api, Clock: s.clock, Timeout: o.Timeout, WatchOnly: true, Log: s.log,
		OnChange: func(c runwait.Change) {
			if c.Task != nil {
				s.log.Info("[%s] task %s: %s", c.Elapsed.Round(1e9), c.Task.TaskKey, c.To)
			}
		}}
	final, err := w.Wait(ctx, runID)
	if err != nil {
		return res, err
	}
	result := string(final.State.ResultState)
	s.log.SetOutput("deploymentResult", result)
	if !runwait.Succeeded(final) {
		return res, fmt.Errorf("deployment job run %d of version %d ended %s: %s", runID, v.Number, runwait.StateOf(final.State), final.RunPageUrl)
	}
	s.log.Info("Deployment job run %d succeeded.", runID)
	return res, nil
}

// approvalTask finds the deployment job's approval task: the task whose
// notebook has the approval notebook's approval_tag_name parameter, and the
// tag it waits for (given: the approvalTag input; else that parameter's
// value, or the task's name when it is empty or "{{task.name}}").
func approvalTask(job *jobs.Job, given string) (task, tag string, err error) {
	if job.Settings != nil {
		for _, t := range job.Settings.Tasks {
			if t.NotebookTask == nil {
				continue
			}
			p, ok := t.NotebookTask.BaseParameters[approvalTagParam]
			if !ok {
				continue
			}
			switch {
			case given != "":
				tag = given
			case p == "" || p == "{{task.name}}":
				tag = t.TaskKey
			default:
				tag = p
			}
			if err := registry.CheckUCTagKey(tag); err != nil {
				return "", "", fmt.Errorf("the approval tag of deployment job %d: %w", job.JobId, err)
			}
			return t.TaskKey, tag, nil
		}
	}
	return "", "", fmt.Errorf("deployment job %d has no approval task (a notebook task with the parameter %s, as in Databricks' deployment job template)", job.JobId, approvalTagParam)
}

// latestRepair is the id of the run's latest repair (0: never repaired),
// which runs/repair requires from the second repair of a run on
// (databricks-sdk-go service/jobs RepairRun.LatestRepairId).
func latestRepair(run *jobs.Run) int64 {
	var id int64
	for _, h := range run.RepairHistory {
		if h.Type == jobs.RepairHistoryItemTypeRepair {
			id = h.Id
		}
	}
	return id
}

// taskFailed reports whether the run's task key ended without success.
func taskFailed(run *jobs.Run, key string) bool {
	for _, t := range run.Tasks {
		if t.TaskKey == key && t.State != nil && runwait.Final(t.State.LifeCycleState) {
			return t.State.ResultState != jobs.RunResultStateSuccess
		}
	}
	return false
}

// reportDeploymentRun names the deployment job run that Unity Catalog
// started for the new version n, if the model has a deployment job
// (outputs deploymentRunId and deploymentRunUrl). The version is registered
// either way: a failure to read the run is a warning.
func (s *step) reportDeploymentRun(ctx context.Context, n int) {
	state, err := s.ws.DeploymentState(ctx, s.opts.Model, n)
	if err != nil {
		s.log.Warning("could not read the deployment job run of version %d: %v", n, err)
		return
	}
	if state == nil || state.RunID == "" {
		return
	}
	s.log.SetOutput("deploymentRunId", state.RunID)
	runID, err := strconv.ParseInt(state.RunID, 10, 64)
	if err != nil {
		return
	}
	run, err := jobs.NewJobs(s.ws.Client).GetRun(ctx, jobs.GetRunRequest{RunId: runID})
	if err != nil {
		s.log.Warning("could not read deployment job run %d: %v", runID, err)
		return
	}
	s.log.SetOutput("deploymentRunUrl", run.RunPageUrl)
	s.log.Info("The version started deployment job %s run %d (%s): approve it with the approve command.", state.JobID, runID, run.RunPageUrl)
}
