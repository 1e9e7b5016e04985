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
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/idempotency"
	"github.com/brickferry/brickferry/internal/runwait"
	"github.com/brickferry/brickferry/tasks"
)

// Deps are what the task needs from outside.
type Deps struct {
	// Connect reads the task's workspace connection inputs and returns how
	// to connect (nil: auth.Connect, the production resolver).
	Connect auth.ConnectFunc
	// Clock and Interval drive the waiting (defaults: the wall clock and
	// runwait.Adaptive); tests and benchmarks simulate time with them.
	Clock    runwait.Clock
	Interval func(elapsed time.Duration) time.Duration
}

// Task returns the DatabricksTrain task function.
func Task(deps Deps) agent.TaskFunc {
	return func(ctx context.Context, env agent.Env, log *agent.Log) error {
		def, err := tasks.Definition("DatabricksTrain")
		if err != nil {
			return err
		}
		in := def.InputsFrom(env)
		connectFunc := deps.Connect
		if connectFunc == nil {
			connectFunc = auth.Connect
		}
		connect := connectFunc(env, in, log, "")
		opts := readOptions(env, in)
		if err := in.Err(); err != nil {
			return err
		}
		ws, err := connect(ctx)
		if err != nil {
			return err
		}
		ctx = ws.Context(ctx)
		c := ws.Client
		clock := deps.Clock
		if clock == nil {
			clock = runwait.RealClock{}
		}
		r := &runner{
			opts: opts, log: log, env: env, clock: clock, interval: deps.Interval,
			jobs: jobs.NewJobs(c), mlflow: ml.NewExperiments(c), repos: workspace.NewRepos(c),
		}
		return r.run(ctx)
	}
}

// runner holds one execution of the task.
type runner struct {
	opts     *Options
	log      *agent.Log
	env      agent.Env
	clock    runwait.Clock
	interval func(time.Duration) time.Duration
	jobs     *jobs.JobsAPI
	mlflow   *ml.ExperimentsAPI
	repos    *workspace.ReposAPI

	runID    int64
	runURL   string
	started  time.Time
	progress int
	tasksURL map[int64]bool
}

func (r *runner) run(ctx context.Context) error {
	if r.opts.CodeSource == codeGitFolder {
		if err := r.updateGitFolder(ctx); err != nil {
			return err
		}
	}
	r.started = r.clock.Now()
	id, err := r.start(ctx)
	if err != nil {
		return err
	}
	r.runID = id
	r.log.SetOutput("runId", fmt.Sprint(id))
	if !r.opts.Wait {
		run, err := r.jobs.GetRun(ctx, jobs.GetRunRequest{RunId: id})
		if err != nil {
			return fmt.Errorf("reading Databricks run %d: %w", id, err)
		}
		r.setURL(run.RunPageUrl)
		r.log.Info("Not waiting for the run to finish (waitForCompletion is false).")
		return nil
	}
	w := runwait.Waiter{Runs: r.jobs, Clock: r.clock, Interval: r.interval, Timeout: r.opts.Timeout, OnChange: r.onChange, Log: r.log}
	run, err := w.Wait(ctx, id)
	if run != nil {
		r.setURL(run.RunPageUrl)
	}
	if err != nil {
		var te *runwait.TimeoutError
		if errors.As(err, &te) {
			r.log.SetOutput("resultState", string(jobs.RunResultStateTimedout))
		}
		if run != nil {
			r.summary(ctx, run, nil, err)
		}
		return err
	}
	return r.finish(ctx, run)
}

func (r *runner) setURL(u string) {
	if u == "" || u == r.runURL {
		return
	}
	r.runURL = u
	r.log.SetOutput("runUrl", u)
}

// start submits the one-time run or runs the existing job now.
func (r *runner) start(ctx context.Context) (int64, error) {
	o := r.opts
	if o.RunType == runExistingJob {
		req, err := r.runNow(ctx)
		if err != nil {
			return 0, err
		}
		id, err := idempotency.Start(ctx, r.env, r.log, "train", r.jobs, func(ctx context.Context, token string) (int64, error) {
			req.IdempotencyToken = token
			w, err := r.jobs.RunNow(ctx, req)
			if err != nil {
				return 0, fmt.Errorf("starting job %d: %w", req.JobId, err)
			}
			return w.RunId, nil
		})
		if err != nil {
			return 0, err
		}
		r.log.Info("Started job %d, run %d.", req.JobId, id)
		return id, nil
	}
	req, err := r.submitRequest()
	if err != nil {
		return 0, err
	}
	id, err := idempotency.Start(ctx, r.env, r.log, "train", r.jobs, func(ctx context.Context, token string) (int64, error) {
		req.IdempotencyToken = token
		w, err := r.jobs.Submit(ctx, req)
		if err != nil {
			return 0, fmt.Errorf("submitting the run: %w", err)
		}
		return w.RunId, nil
	})
	if err != nil {
		return 0, err
	}
	r.log.Info("Submitted run %d (%q).", id, req.RunName)
	return id, nil
}

// updateGitFolder moves a Databricks Git folder (Repos) to the build's
// branch, as the reference pipeline did before running from it.
func (r *runner) updateGitFolder(ctx context.Context) error {
	o := r.opts
	repos, err := r.repos.ListAll(ctx, workspace.ListReposRequest{PathPrefix: o.GitFolderPath})
	if err != nil {
		return fmt.Errorf("finding the Git folder %s: %w", o.GitFolderPath, err)
	}
	for _, repo := range repos {
		if repo.Path != o.GitFolderPath {
			continue
		}
		r.log.Info("Updating the Git folder %s to branch %s (was %s at %s).", repo.Path, o.GitBranch, repo.Branch, repo.HeadCommitId)
		if err := r.repos.Update(ctx, workspace.UpdateRepoRequest{RepoId: repo.Id, Branch: o.GitBranch}); err != nil {
			return fmt.Errorf("updating the Git folder %s to branch %s: %w", o.GitFolderPath, o.GitBranch, err)
		}
		return nil
	}
	return fmt.Errorf("there is no Git folder at %s (input gitFolderPath)", o.GitFolderPath)
}

// onChange logs a state change of the run or of one of its tasks, with the
// time, and reports progress.
func (r *runner) onChange(c runwait.Change) {
	at := c.At.UTC().Format("15:04:05")
	if c.Task == nil {
		if c.From == (runwait.State{}) {
			r.setURL(c.Run.RunPageUrl)
			r.log.Info("Run %d: %s", c.Run.RunId, c.Run.RunPageUrl)
		}
		msg := ""
		if c.To.Message != "" {
			msg = " - " + c.To.Message
		}
		r.log.Info("%s  run %s (after %s)%s", at, c.To, c.Elapsed.Round(time.Second), msg)
	} else if len(c.Run.Tasks) > 1 {
		if r.tasksURL == nil {
			r.tasksURL = map[int64]bool{}
		}
		url := ""
		if !r.tasksURL[c.Task.RunId] {
			r.tasksURL[c.Task.RunId] = true
			url = "  " + c.Task.RunPageUrl
		}
		r.log.Info("%s    task %s %s%s", at, c.Task.TaskKey, c.To, url)
	}
	if p := progressOf(c.Run); p != r.progress {
		r.progress = p
		r.log.Progress(p, "Databricks run "+string(runwait.StateOf(c.Run.State).Life))
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
