package train

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	sdkcompute "github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/compute"
)

// taskKey of the one task of a run the task builds itself.
const taskKey = "train"

// remoteTimeoutGrace is added to the task's timeout to form the run's own
// timeout_seconds: if the agent dies, Databricks still stops the run.
const remoteTimeoutGrace = 600

// submitRequest is the runs/submit request: built from the inputs, or from
// the job specification file with the inputs' parameters, code source and
// idempotency token applied.
func (s *step) submitRequest() (jobs.SubmitRun, error) {
	o := s.opts
	var req jobs.SubmitRun
	if o.Spec != nil {
		run, dropped, err := o.Spec.SubmitRun()
		if err != nil {
			return req, fmt.Errorf("converting %s into a one-time run: %w", o.JobFile, err)
		}
		s.reportSpec(dropped)
		req = run
		if req.RunName == "" {
			req.RunName = o.RunName
		}
	} else {
		req = jobs.SubmitRun{RunName: o.RunName, Tasks: []jobs.SubmitTask{s.buildTask()}}
		if o.Timeout > 0 {
			req.TimeoutSeconds = int(o.Timeout.Seconds()) + remoteTimeoutGrace
		}
		if o.Compute.Kind == compute.Serverless && o.RunType != runNotebook {
			var deps []string
			for _, l := range o.Libraries {
				if l.Pypi != nil {
					deps = append(deps, l.Pypi.Package)
				} else {
					deps = append(deps, l.Whl)
				}
			}
			req.Environments = []jobs.JobEnvironment{{EnvironmentKey: "default", Spec: &sdkcompute.Environment{EnvironmentVersion: "2", Dependencies: deps}}}
		}
	}
	if o.Git != nil {
		if req.GitSource != nil {
			s.log.Info("The job file's git_source (%s) is replaced by the build's repository.", req.GitSource.GitUrl)
		}
		req.GitSource = o.Git
		s.log.Info("Code: %s at commit %s", o.Git.GitUrl, o.Git.GitCommit)
	}
	applyParameters(req.Tasks, o.Parameters)
	return req, nil
}

func (s *step) reportSpec(dropped []string) {
	spec := s.opts.Spec
	if spec.SingleTask {
		s.log.Info("%s uses the Jobs API 2.0 single-task shape; it runs as one task %q.", s.opts.JobFile, spec.Settings.Tasks[0].TaskKey)
	}
	if len(spec.Duplicates) > 0 {
		s.log.Info("%s repeats keys (the last value is used): %s", s.opts.JobFile, strings.Join(spec.Duplicates, ", "))
	}
	if len(spec.Unknown) > 0 {
		s.log.Warning("%s has fields the Jobs API client does not know; they are not sent: %s", s.opts.JobFile, strings.Join(spec.Unknown, ", "))
	}
	if len(dropped) > 0 {
		s.log.Info("Fields that only apply to a saved job are not sent with a one-time run: %s", strings.Join(dropped, ", "))
	}
}

// buildTask is the single task of a run built from the inputs.
func (s *step) buildTask() jobs.SubmitTask {
	o := s.opts
	t := jobs.SubmitTask{TaskKey: taskKey}
	source := jobs.SourceWorkspace
	if o.Git != nil {
		source = jobs.SourceGit
	}
	switch o.RunType {
	case runNotebook:
		t.NotebookTask = &jobs.NotebookTask{NotebookPath: o.NotebookPath, Source: source}
	case runPythonFile:
		t.SparkPythonTask = &jobs.SparkPythonTask{PythonFile: o.PythonFile}
		if o.Git != nil {
			t.SparkPythonTask.Source = jobs.SourceGit
		}
	case runPythonWheel:
		t.PythonWheelTask = &jobs.PythonWheelTask{PackageName: o.WheelPackage, EntryPoint: o.WheelEntryPoint}
	}
	o.Compute.ApplyToSubmitTask(&t)
	switch o.Compute.Kind {
	case compute.NewCluster, compute.ExistingCluster:
		t.Libraries = o.Libraries
	case compute.Serverless:
		if o.RunType != runNotebook {
			t.EnvironmentKey = "default"
		}
	}
	return t
}

// applyParameters passes the parameters to every task that takes them:
// notebook base parameters and wheel named parameters (the inputs win over
// the file's), and "--name value" arguments of Python files.
func applyParameters(tasks []jobs.SubmitTask, params []agent.KeyValue) {
	if len(params) == 0 {
		return
	}
	for i := range tasks {
		t := &tasks[i]
		switch {
		case t.NotebookTask != nil:
			t.NotebookTask.BaseParameters = merge(t.NotebookTask.BaseParameters, params)
		case t.PythonWheelTask != nil:
			t.PythonWheelTask.NamedParameters = merge(t.PythonWheelTask.NamedParameters, params)
		case t.SparkPythonTask != nil:
			for _, p := range params {
				t.SparkPythonTask.Parameters = append(t.SparkPythonTask.Parameters, "--"+p.Key, p.Value)
			}
		}
	}
}

func merge(m map[string]string, params []agent.KeyValue) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	for _, p := range params {
		m[p.Key] = p.Value
	}
	return m
}

// runNow finds the existing job and builds its run-now request. Parameters
// go as job parameters when the job declares job-level parameters (only
// those it declares; Databricks refuses others), else as notebook
// parameters.
func (s *step) runNow(ctx context.Context) (jobs.RunNow, error) {
	o := s.opts
	var job *jobs.Job
	if o.JobID != 0 {
		j, err := s.jobs.Get(ctx, jobs.GetJobRequest{JobId: o.JobID})
		if err != nil {
			return jobs.RunNow{}, fmt.Errorf("finding job %d (input job): %w", o.JobID, err)
		}
		job = j
	} else {
		found, err := s.jobs.ListAll(ctx, jobs.ListJobsRequest{Name: o.JobName})
		if err != nil {
			return jobs.RunNow{}, fmt.Errorf("finding the job named %q: %w", o.JobName, err)
		}
		switch len(found) {
		case 0:
			return jobs.RunNow{}, fmt.Errorf("there is no job named %q in the workspace (input job)", o.JobName)
		case 1:
		default:
			ids := make([]string, len(found))
			for i, j := range found {
				ids[i] = fmt.Sprint(j.JobId)
			}
			return jobs.RunNow{}, fmt.Errorf("%d jobs are named %q (ids %s): give the job's id in input job", len(found), o.JobName, strings.Join(ids, ", "))
		}
		j, err := s.jobs.Get(ctx, jobs.GetJobRequest{JobId: found[0].JobId})
		if err != nil {
			return jobs.RunNow{}, fmt.Errorf("reading job %d: %w", found[0].JobId, err)
		}
		job = j
	}
	req := jobs.RunNow{JobId: job.JobId}
	if len(o.Parameters) == 0 {
		return req, nil
	}
	var declared map[string]bool
	if job.Settings != nil && len(job.Settings.Parameters) > 0 {
		declared = map[string]bool{}
		for _, p := range job.Settings.Parameters {
			declared[p.Name] = true
		}
	}
	if declared == nil {
		req.NotebookParams = merge(nil, o.Parameters)
		return req, nil
	}
	req.JobParameters = map[string]string{}
	for _, p := range o.Parameters {
		switch {
		case declared[p.Key]:
			req.JobParameters[p.Key] = p.Value
		case strings.HasPrefix(p.Key, "brickferry_"):
			s.log.Debug("job %d declares no parameter %s; not passed", job.JobId, p.Key)
		default:
			s.log.Warning("job %d declares no job parameter %q; it is not passed (declared: %s)", job.JobId, p.Key, strings.Join(slices.Sorted(maps.Keys(declared)), ", "))
		}
	}
	return req, nil
}
