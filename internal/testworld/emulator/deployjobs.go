package emulator

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
)

// MLflow 3 deployment jobs (Beta) on Unity Catalog models
// (https://docs.databricks.com/aws/en/mlflow/deployment-job): a registered
// model names a job; a run of that job starts whenever a new version of the
// model is created, with the job parameters model_name and model_version.
// Its approval task is Databricks' approval notebook
// (https://docs.databricks.com/notebooks/source/mlflow/deployment-jobs/approval.html),
// which fails unless the version carries the tag named by its
// approval_tag_name parameter (by default the approval task's name) with the
// value "approved" in any case (ApprovalCheck).
//
// Fields, from mlflow/protos/databricks_uc_registry_messages.proto as MLflow
// 3 generates it (RegisteredModel.deployment_job_id and
// deployment_job_state; ModelVersion.deployment_job_state, a
// ModelVersionDeploymentJobState of job_id, run_id, job_state, run_state,
// current_task_name): served by GET
// /api/2.0/mlflow/unity-catalog/registered-models/get and
// .../model-versions/get. The model is connected to its job with MLflow's
// update_registered_model(name, deployment_job_id=...) or in the UI; tests
// use ConnectDeploymentJob.
//
// Deviation: the run starts when the version becomes READY (finalize), the
// moment its files are complete; Databricks documents only "whenever a new
// model version is created".

// UCDeploymentJobState is ModelVersion.deployment_job_state.
type UCDeploymentJobState struct {
	JobID           string `json:"job_id,omitempty"`
	RunID           string `json:"run_id,omitempty"`
	JobState        string `json:"job_state,omitempty"` // DeploymentJobConnection.State: CONNECTED, NOT_FOUND, ...
	RunState        string `json:"run_state,omitempty"` // PENDING, RUNNING, SUCCEEDED, FAILED, APPROVAL, NO_VALID_DEPLOYMENT_JOB_FOUND
	CurrentTaskName string `json:"current_task_name,omitempty"`
}

// UCRegisteredModel is MLflow's Unity Catalog RegisteredModel message.
type UCRegisteredModel struct {
	Name                 string `json:"name"`
	CreationTimestamp    int64  `json:"creation_timestamp"`
	LastUpdatedTimestamp int64  `json:"last_updated_timestamp"`
	UserID               string `json:"user_id,omitempty"`
	Description          string `json:"description,omitempty"`
	Aliases              []struct {
		Alias   string `json:"alias"`
		Version string `json:"version"`
	} `json:"aliases,omitempty"`
	DeploymentJobID    string `json:"deployment_job_id,omitempty"`
	DeploymentJobState string `json:"deployment_job_state,omitempty"`
}

// GetUCRegisteredModelRequest is the query of registered-models/get.
type GetUCRegisteredModelRequest struct {
	Name string `json:"-" url:"name"`
}

// UCRegisteredModelResponse answers registered-models/get.
type UCRegisteredModelResponse struct {
	RegisteredModel *UCRegisteredModel `json:"registered_model"`
}

// approvalTagParam is the approval notebook's widget naming the tag.
const approvalTagParam = "approval_tag_name"

func (ws *Workspace) deploymentJobRoutes() {
	handle(ws, "GET /api/2.0/mlflow/unity-catalog/registered-models/get", func(r *http.Request, req *GetUCRegisteredModelRequest) (any, *apiError) {
		m, aerr := ws.ucModel(req.Name)
		if aerr != nil {
			return nil, aerr
		}
		out := &UCRegisteredModel{Name: m.info.FullName, CreationTimestamp: m.info.CreatedAt, LastUpdatedTimestamp: m.info.UpdatedAt,
			UserID: m.info.CreatedBy, Description: m.info.Comment}
		for _, a := range m.aliasList() {
			out.Aliases = append(out.Aliases, struct {
				Alias   string `json:"alias"`
				Version string `json:"version"`
			}{a.AliasName, strconv.Itoa(a.VersionNum)})
		}
		if m.deploymentJob != 0 {
			out.DeploymentJobID = strconv.FormatInt(m.deploymentJob, 10)
			out.DeploymentJobState = "CONNECTED"
			if _, ok := ws.jobs.jobs[m.deploymentJob]; !ok {
				out.DeploymentJobState = "NOT_FOUND"
			}
		}
		return &UCRegisteredModelResponse{RegisteredModel: out}, nil
	})
	// Jobs API 2.2 runs/repair (databricks-sdk-go service/jobs RepairRun:
	// "Re-run one or more tasks. Tasks are re-run as part of the original
	// job run"). rerun_tasks and rerun_dependent_tasks are modelled; a run
	// that has not ended is refused with INVALID_STATE (the status code is
	// not verified against Databricks).
	handle(ws, "POST /api/2.2/jobs/runs/repair", func(r *http.Request, req *jobs.RepairRun) (any, *apiError) {
		run, ok := ws.jobs.runs[req.RunId]
		if !ok {
			return nil, invalidParam("Run %d does not exist.", req.RunId)
		}
		now := ws.clock.Now()
		if !run.done(now) {
			return nil, invalidState("Run %d is still active: only a run that has ended can be repaired.", req.RunId)
		}
		// SDK doc RepairRun.LatestRepairId: "not required when repairing a
		// run for the first time, but must be provided on subsequent
		// requests to repair the same run." The message is not verified.
		if n := len(run.repairs); n > 0 && req.LatestRepairId != run.repairs[n-1].id {
			return nil, invalidParam("latest_repair_id must be %d, the latest repair of run %d.", run.repairs[n-1].id, req.RunId)
		}
		if len(req.RerunTasks) > 0 && req.RerunAllFailedTasks {
			// SDK doc RepairRun.RerunAllFailedTasks: "Only one of
			// rerun_tasks or rerun_all_failed_tasks can be used."
			return nil, invalidParam("Only one of rerun_tasks or rerun_all_failed_tasks can be used.")
		}
		rerun := map[string]bool{}
		for _, k := range req.RerunTasks {
			if run.task(k) == nil {
				return nil, invalidParam("Task %s is not part of run %d.", k, req.RunId)
			}
			rerun[k] = true
		}
		if req.RerunAllFailedTasks {
			for _, t := range run.tasks {
				if t.result != jobs.RunResultStateSuccess {
					rerun[t.spec.TaskKey] = true
				}
			}
		}
		if len(rerun) == 0 {
			return nil, invalidParam("rerun_tasks or rerun_all_failed_tasks is required.")
		}
		if req.RerunDependentTasks {
			for changed := true; changed; {
				changed = false
				for _, t := range run.tasks {
					for _, d := range t.spec.DependsOn {
						if rerun[d.TaskKey] && !rerun[t.spec.TaskKey] {
							rerun[t.spec.TaskKey], changed = true, true
						}
					}
				}
			}
		}
		repair := runRepair{id: ws.ids.take(), at: now}
		for i, t := range run.tasks {
			if !rerun[t.spec.TaskKey] {
				continue
			}
			nt := &taskRun{id: ws.ids.take(), parent: run, spec: t.spec, notBefore: now}
			nb := ""
			if t.spec.NotebookTask != nil {
				nb = t.spec.NotebookTask.NotebookPath
			}
			nt.beh, nt.known = ws.behaviours.lookup(t.spec.TaskKey, nb)
			run.tasks[i] = nt
			ws.jobs.taskRuns[nt.id] = nt
			repair.taskRuns = append(repair.taskRuns, nt.id)
		}
		run.repairs = append(run.repairs, repair)
		ws.advanceRuns(now)
		return &jobs.RepairRunResponse{RepairId: repair.id}, nil
	})
}

// runRepair is one runs/repair of a run: its id, when, and the new task runs.
type runRepair struct {
	id       int64
	at       time.Time
	taskRuns []int64
}

// ConnectDeploymentJob makes jobID the deployment job of the Unity Catalog
// model fullName, as MLflow's update_registered_model(deployment_job_id=)
// does: every version that becomes READY from now on starts a run of it.
func (ws *Workspace) ConnectDeploymentJob(fullName string, jobID int64) {
	ws.do(func() {
		if m, ok := ws.uc.models[strings.ToLower(fullName)]; ok {
			m.deploymentJob = jobID
		}
	})
}

// startDeploymentRun starts the model's deployment job for v, with the job
// parameters model_name and model_version the deployment job template
// declares.
func (ws *Workspace) startDeploymentRun(m *ucModel, v *ucVersion) {
	job, ok := ws.jobs.jobs[m.deploymentJob]
	if m.deploymentJob == 0 || !ok {
		return
	}
	s := job.Settings
	params := map[string]string{}
	var jobParams []jobs.JobParameter
	for _, p := range s.Parameters {
		params[p.Name] = p.Default
	}
	params["model_name"] = m.info.FullName
	params["model_version"] = strconv.Itoa(v.info.Version)
	for _, p := range s.Parameters {
		jobParams = append(jobParams, jobs.JobParameter{Name: p.Name, Default: p.Default, Value: params[p.Name]})
	}
	var tasks []jobs.RunTask
	for _, t := range s.Tasks {
		var rt jobs.RunTask
		if convert(t, &rt) == nil {
			tasks = append(tasks, rt)
		}
	}
	run := ws.startRun(job.JobId, s.Name, jobs.RunTypeJobRun, tasks, params, time.Duration(s.TimeoutSeconds)*time.Second)
	run.jobParams = jobParams
	v.deploymentRun = run.id
}

// deploymentState is v's deployment_job_state (nil without a deployment job).
func (ws *Workspace) deploymentState(m *ucModel, v *ucVersion) *UCDeploymentJobState {
	if m.deploymentJob == 0 {
		return nil
	}
	st := &UCDeploymentJobState{JobID: strconv.FormatInt(m.deploymentJob, 10), JobState: "CONNECTED"}
	if _, ok := ws.jobs.jobs[m.deploymentJob]; !ok {
		st.JobState = "NOT_FOUND"
	}
	run, ok := ws.jobs.runs[v.deploymentRun]
	if !ok {
		st.RunState = "NO_VALID_DEPLOYMENT_JOB_FOUND"
		return st
	}
	now := ws.clock.Now()
	ws.advanceRuns(now)
	st.RunID = strconv.FormatInt(run.id, 10)
	life, result, _ := run.parentState(now)
	switch {
	case life == jobs.RunLifeCycleStatePending || life == jobs.RunLifeCycleStateQueued:
		st.RunState = "PENDING"
	case !run.done(now):
		st.RunState = "RUNNING"
	case result == jobs.RunResultStateSuccess:
		st.RunState = "SUCCEEDED"
	default:
		st.RunState = "FAILED"
		for _, t := range run.tasks {
			if t.result == jobs.RunResultStateFailed && isApprovalTask(t) {
				st.RunState = "APPROVAL"
			}
		}
	}
	for _, t := range run.tasks {
		if t.scheduled && (!t.finished || t.result != jobs.RunResultStateSuccess) {
			st.CurrentTaskName = t.spec.TaskKey
			break
		}
	}
	return st
}

// isApprovalTask reports whether t runs the approval notebook (it has the
// approval_tag_name parameter).
func isApprovalTask(t *taskRun) bool {
	if t.spec.NotebookTask == nil {
		return false
	}
	_, ok := t.spec.NotebookTask.BaseParameters[approvalTagParam]
	return ok
}

// ApprovalCheck is a Behaviour that acts like Databricks' approval notebook
// for deployment jobs: it reads the widgets model_name, model_version and
// approval_tag_name ("{{task.name}}" or empty: the task's key), and fails
// with the notebook's message unless the version's tag of that name is
// "approved" in any case.
func ApprovalCheck() Behaviour {
	return Behaviour{Action: func(tc *TaskContext) error {
		tag := tc.Params[approvalTagParam]
		if tag == "" || tag == "{{task.name}}" {
			tag = tc.TaskKey
		}
		m, ok := tc.ws.uc.models[strings.ToLower(tc.Params["model_name"])]
		if !ok {
			return errorString("RestException: RESOURCE_DOES_NOT_EXIST: Registered model '" + tc.Params["model_name"] + "' does not exist.")
		}
		v, ok := versionAt(m.versions, tc.Params["model_version"])
		if !ok {
			return errorString("RestException: RESOURCE_DOES_NOT_EXIST: Model version " + tc.Params["model_version"] + " does not exist.")
		}
		for _, t := range v.tags {
			if t.Key == tag && strings.EqualFold(t.Value, "approved") {
				return nil
			}
		}
		return errorString("Exception: Model version not approved for deployment")
	}}
}

type errorString string

func (e errorString) Error() string { return string(e) }
