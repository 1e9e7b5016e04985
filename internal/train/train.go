// Package train is the DatabricksTrain@1 task: it runs training code on
// Azure Databricks (a notebook, a Python file, a wheel entry point, an
// existing job, or a job specification file), waits for it, and publishes
// the run and the MLflow run it produced as output variables for the next
// steps. See docs/tasks/DatabricksTrain.md for the user's view.
//
// The task is options → validate → run: readOptions reads and checks every
// input before the first remote call; run starts the Databricks run
// (runs/submit or run-now, with an idempotency token: package idempotency,
// which also takes over a run an earlier try left running), waits for it with
// package runwait, reads the notebook output and the MLflow run, and
// reports.
package train

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/idempotency"
	"github.com/brickferry/brickferry/internal/loggedmodel"
	"github.com/brickferry/brickferry/internal/preflight"
	"github.com/brickferry/brickferry/internal/runwait"
)

// Deps are what the task needs from outside.
type Deps struct {
	// Connect reads the task's workspace connection inputs and returns how
	// to connect (nil: auth.Connect, the production resolver).
	Connect auth.ConnectFunc
	// Clock and Interval drive the waiting (defaults: the wall clock, and
	// the schedule predicted from earlier runs, runwait.Adaptive without
	// them); tests and benchmarks simulate time with them.
	Clock    converge.Clock
	Interval func(elapsed time.Duration) time.Duration
}

// Task returns the DatabricksTrain task function.
func Task(deps Deps) agent.TaskFunc {
	return auth.Task("DatabricksTrain", deps.Connect, readOptions, deps.newStep)
}

// step is one run of the task (one step of a pipeline).
type step struct {
	opts     *Options
	log      *agent.Log
	env      agent.Env
	clock    converge.Clock
	interval func(time.Duration) time.Duration
	jobs     *jobs.JobsAPI
	mlflow   *ml.ExperimentsAPI
	models   *loggedmodel.Models
	repos    *workspace.ReposAPI
	// checks are the preflight checks against the workspace (package
	// preflight), made before the first write or compute request.
	checks func() *preflight.Checks

	runID    int64
	runURL   string
	started  time.Time
	progress int
	tasksURL map[int64]bool
}

// newStep makes the step once every input is valid and ws is connected.
func (d Deps) newStep(env agent.Env, log *agent.Log, ws *auth.Workspace, opts *Options) (*step, error) {
	clock := converge.Or(d.Clock)
	c := ws.Client
	return &step{
		opts: opts, log: log, env: env, clock: clock, interval: d.Interval,
		jobs: jobs.NewJobs(c), mlflow: ml.NewExperiments(c), models: loggedmodel.New(c), repos: workspace.NewRepos(c),
		checks: func() *preflight.Checks { return preflight.New(c, ws.Host) },
	}, nil
}

func (s *step) Run(ctx context.Context) error {
	if err := s.preflight(ctx, false); err != nil {
		return err
	}
	if s.opts.CodeSource == codeGitFolder {
		if err := s.updateGitFolder(ctx); err != nil {
			return err
		}
		// The code is in the Git folder only once it is on the build's branch.
		if err := s.preflight(ctx, true); err != nil {
			return err
		}
	}
	s.started = s.clock.Now()
	id, like, err := s.start(ctx)
	if err != nil {
		return err
	}
	s.runID = id
	s.log.SetOutput("runId", fmt.Sprint(id))
	if !s.opts.Wait {
		run, err := s.jobs.GetRun(ctx, jobs.GetRunRequest{RunId: id})
		if err != nil {
			return fmt.Errorf("reading Databricks run %d: %w", id, err)
		}
		s.setURL(run.RunPageUrl)
		s.log.Info("Not waiting for the run to finish (waitForCompletion is false).")
		return nil
	}
	w := runwait.Waiter{Runs: s.jobs, Clock: s.clock, Interval: s.interval, Timeout: s.opts.Timeout, OnChange: s.onChange, Log: s.log,
		History: runwait.LookUp(ctx, s.jobs, like)}
	run, err := w.Wait(ctx, id)
	if run != nil {
		s.setURL(run.RunPageUrl)
	}
	if err != nil {
		var te *runwait.TimeoutError
		if errors.As(err, &te) {
			s.log.SetOutput("resultState", string(jobs.RunResultStateTimedout))
		}
		if run != nil {
			s.summary(ctx, run, nil, err)
		}
		return err
	}
	return s.finish(ctx, run)
}

func (s *step) setURL(u string) {
	if u == "" || u == s.runURL {
		return
	}
	s.runURL = u
	s.log.SetOutput("runUrl", u)
}

// start submits the one-time run or runs the existing job now. like names
// the earlier runs whose durations predict this one's end: the job's, or
// the one-time runs with the same name (every build's, for the default
// name) and the same code.
func (s *step) start(ctx context.Context) (int64, runwait.Like, error) {
	o := s.opts
	if o.RunType == runExistingJob {
		req, err := s.runNow(ctx)
		if err != nil {
			return 0, runwait.Like{}, err
		}
		id, err := idempotency.Start(ctx, s.env, s.log, "train", s.jobs, func(ctx context.Context, token string) (int64, error) {
			req.IdempotencyToken = token
			w, err := s.jobs.RunNow(ctx, req)
			if err != nil {
				return 0, fmt.Errorf("starting job %d: %w", req.JobId, err)
			}
			return w.RunId, nil
		})
		if err != nil {
			return 0, runwait.Like{}, err
		}
		s.log.Info("Started job %d, run %d.", req.JobId, id)
		return id, runwait.Like{JobID: req.JobId}, nil
	}
	req, err := s.submitRequest()
	if err != nil {
		return 0, runwait.Like{}, err
	}
	like := runwait.Like{RunName: req.RunName, Code: runwait.SubmitCode(req.Tasks)}
	if req.RunName == o.RunName && o.RunNamePrefix != "" {
		like.RunName, like.NamePrefix = o.RunNamePrefix, true
	}
	id, err := idempotency.Start(ctx, s.env, s.log, "train", s.jobs, func(ctx context.Context, token string) (int64, error) {
		req.IdempotencyToken = token
		w, err := s.jobs.Submit(ctx, req)
		if err != nil {
			return 0, fmt.Errorf("submitting the run: %w", err)
		}
		return w.RunId, nil
	})
	if err != nil {
		return 0, runwait.Like{}, err
	}
	s.log.Info("Submitted run %d (%q).", id, req.RunName)
	return id, like, nil
}

// preflight checks, before the run is submitted (a cluster started), that
// the code and the compute the inputs name exist: the notebook or Python
// file in the workspace (workspace get-status), the cluster, instance pools
// and cluster policy. Code in a Git folder is checked once the folder is on
// the build's branch (inGitFolder); code in the build's repository is
// fetched by Databricks at the commit, and not checked here.
func (s *step) preflight(ctx context.Context, inGitFolder bool) error {
	o := s.opts
	pf := s.checks()
	if (o.CodeSource == codeWorkspace && !inGitFolder) || (o.CodeSource == codeGitFolder && inGitFolder) {
		switch {
		case o.RunType == runNotebook:
			pf.Notebook(ctx, "notebookPath", o.NotebookPath)
		case o.RunType == runPythonFile && inWorkspaceTree(o.PythonFile):
			pf.File(ctx, "pythonFile", o.PythonFile)
		}
	}
	if !inGitFolder {
		pf.Compute(ctx, o.Compute)
	}
	return pf.Err()
}

// inWorkspaceTree reports whether a path is in the workspace tree as the
// Workspace API names it (/Users, /Shared, /Repos): a Python file given as
// a /Workspace, /Volumes or /dbfs path, or a dbfs:/ URI, is not looked up.
func inWorkspaceTree(p string) bool {
	for _, root := range []string{"/Users/", "/Shared/", "/Repos/"} {
		if strings.HasPrefix(p, root) {
			return true
		}
	}
	return false
}

// updateGitFolder moves a Databricks Git folder (Repos) to the build's
// branch, as the reference pipeline did before running from it.
func (s *step) updateGitFolder(ctx context.Context) error {
	o := s.opts
	repos, err := s.repos.ListAll(ctx, workspace.ListReposRequest{PathPrefix: o.GitFolderPath})
	if err != nil {
		return fmt.Errorf("finding the Git folder %s: %w", o.GitFolderPath, err)
	}
	for _, repo := range repos {
		if repo.Path != o.GitFolderPath {
			continue
		}
		s.log.Info("Updating the Git folder %s to branch %s (was %s at %s).", repo.Path, o.GitBranch, repo.Branch, repo.HeadCommitId)
		if err := s.repos.Update(ctx, workspace.UpdateRepoRequest{RepoId: repo.Id, Branch: o.GitBranch}); err != nil {
			return fmt.Errorf("updating the Git folder %s to branch %s: %w", o.GitFolderPath, o.GitBranch, err)
		}
		return nil
	}
	return fmt.Errorf("there is no Git folder at %s (input gitFolderPath)", o.GitFolderPath)
}

// onChange logs a state change of the run or of one of its tasks, with the
// time, and reports progress.
func (s *step) onChange(c runwait.Change) {
	at := c.At.UTC().Format("15:04:05")
	if c.Task == nil {
		if c.From == (runwait.State{}) {
			s.setURL(c.Run.RunPageUrl)
			s.log.Info("Run %d: %s", c.Run.RunId, c.Run.RunPageUrl)
		}
		msg := ""
		if c.To.Message != "" {
			msg = " - " + c.To.Message
		}
		s.log.Info("%s  run %s (after %s)%s", at, c.To, c.Elapsed.Round(time.Second), msg)
	} else if len(c.Run.Tasks) > 1 {
		if s.tasksURL == nil {
			s.tasksURL = map[int64]bool{}
		}
		url := ""
		if !s.tasksURL[c.Task.RunId] {
			s.tasksURL[c.Task.RunId] = true
			url = "  " + c.Task.RunPageUrl
		}
		s.log.Info("%s    task %s %s%s", at, c.Task.TaskKey, c.To, url)
	}
	if p := progressOf(c.Run); p != s.progress {
		s.progress = p
		s.log.Progress(p, "Databricks run "+string(runwait.StateOf(c.Run.State).Life))
	}
}

// progressOf estimates how far a run is from its tasks' states.
func progressOf(run *jobs.Run) int {
	if runwait.Ended(run) {
		return 100
	}
	if len(run.Tasks) == 0 {
		return 0
	}
	var sum float64
	for _, t := range run.Tasks {
		switch s := runwait.StateOf(t.State).Life; {
		case runwait.Final(s):
			sum++
		case s == jobs.RunLifeCycleStateTerminating:
			sum += 0.9
		case s == jobs.RunLifeCycleStateRunning:
			sum += 0.5
		case s == jobs.RunLifeCycleStatePending || s == jobs.RunLifeCycleStateQueued:
			sum += 0.1
		}
	}
	return min(99, int(100*sum/float64(len(run.Tasks))))
}
