// Package batchscore is the BatchScore@1 task: it keeps one Databricks job
// per output table that scores a table with a registered MLflow model
// (created the first time, reset by exact name afterwards, optionally
// scheduled), runs it now, waits, reads the notebook's JSON exit value and
// proves the Delta output: rows written above a minimum and, with a SQL
// warehouse, COUNT(*) and the table's latest Delta version.
//
// By default the job runs the scoring notebook Brickferry ships
// (examples/notebooks/batch_score.py, embedded in the executable), uploaded
// only when the workspace copy differs. A notebook of the user's gets the
// same parameters (see docs/tasks/BatchScore.md).
//
// Flow: ReadOptions (every input checked, no remote call) → Connect →
// preflight (model version READY, notebook, compute, warehouse: package
// preflight) → the job looked up and the change to it decided (owner.go:
// another pipeline's job, or a schedule removed, is refused unless
// allowJobTakeover) → notebook → job create/reset → run-now (idempotency
// token) → runwait → exit value → checks → outputs and summary. Nothing is
// written before the preflight and the decision pass. Without jobName the
// job is named after the output table (DefaultJobName), and it is tagged
// with the pipeline that owns it (OwnerOf).
package batchscore

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/sql"
	"github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/brickferry/brickferry/examples/notebooks"
	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/idempotency"
	"github.com/brickferry/brickferry/internal/runwait"
)

// Deps are what the task needs from outside.
type Deps struct {
	// Connect reads the task's workspace connection inputs (recording
	// problems in in) and returns how to connect (nil: auth.Connect, the
	// shared resolver).
	Connect auth.ConnectFunc
	// Notebook is the shipped scoring notebook (default notebooks.BatchScore).
	Notebook []byte
	// Clock drives the waiting (default the real clock); tests advance an
	// emulated workspace with it.
	Clock converge.Clock
	// Interval is the run polling schedule (default runwait.Adaptive).
	Interval func(elapsed time.Duration) time.Duration
}

// Task returns the task's function.
func (d Deps) Task() agent.TaskFunc {
	return auth.Task("BatchScore", d.Connect, readOptions, d.newStep)
}

// step is one run of the task (one step of a pipeline).
type step struct {
	opts     Options
	env      agent.Env
	log      *agent.Log
	c        *client.DatabricksClient
	notebook []byte // the shipped scoring notebook
	clock    converge.Clock
	interval func(elapsed time.Duration) time.Duration
}

// newStep makes the step once every input is valid and ws is connected.
func (d Deps) newStep(env agent.Env, log *agent.Log, ws *auth.Workspace, opts Options) (*step, error) {
	s := &step{opts: opts, env: env, log: log, c: ws.Client, notebook: d.Notebook, clock: converge.Or(d.Clock), interval: d.Interval}
	if s.notebook == nil {
		s.notebook = notebooks.BatchScore
	}
	return s, nil
}

// result is what the task found out, for outputs and the summary.
type result struct {
	jobID       int64
	jobURL      string
	created     bool
	uploaded    bool
	runID       int64
	runURL      string
	took        time.Duration
	exit        ExitValue
	check       *TableCheck
	modelVer    string
	outputTable string
}

func (s *step) Run(ctx context.Context) error {
	o, log, c := s.opts, s.log, s.c
	sys := s.env.System()
	host := strings.TrimSuffix(c.Config.Host, "/")
	jobsAPI := jobs.NewJobs(c)
	var res result

	// Everything the job will use is checked, and the change to the job is
	// decided, before the first write: a typo or a job of another pipeline
	// leaves the workspace as it was.
	log.Section("Checks")
	version, err := s.preflight(ctx, host)
	if err != nil {
		return err
	}
	res.modelVer = strconv.Itoa(version)
	existing, err := findJob(ctx, jobsAPI, o.JobName)
	if err != nil {
		return err
	}
	settings := o.JobSettings(sys)
	if log.DebugEnabled() {
		if b, err := settings.MarshalJSON(); err == nil {
			log.Debug("job settings: %s", b)
		}
	}
	if err := s.checkChange(existing, settings); err != nil {
		return err
	}
	if o.JobNameDefault {
		s.warnOldDefault(ctx, jobsAPI)
	}

	log.Section("Scoring code")
	if o.Shipped {
		up, err := syncNotebook(ctx, workspace.NewWorkspace(c), o.NotebookPath, s.notebook)
		if err != nil {
			return err
		}
		res.uploaded = up
		if up {
			log.Info("Uploaded the Brickferry scoring notebook to %s", o.NotebookPath)
		} else {
			log.Info("The Brickferry scoring notebook at %s is up to date", o.NotebookPath)
		}
	} else {
		log.Info("Scoring with the notebook %s", o.NotebookPath)
	}

	log.Section("Job")
	id, created, err := writeJob(ctx, jobsAPI, existing, settings)
	if err != nil {
		return err
	}
	res.jobID, res.created = id, created
	res.jobURL = fmt.Sprintf("%s/jobs/%d", host, id)
	log.SetOutput("jobId", strconv.FormatInt(id, 10))
	verb := "Updated"
	if created {
		verb = "Created"
	}
	log.Info("%s the job %q (%d), owned by %s: %s", verb, o.JobName, id, o.Owner, res.jobURL)
	log.Info("Compute: %s", o.Compute)
	if o.Schedule != nil {
		log.Info("Schedule: %s", scheduleText(o.Schedule))
	} else {
		log.Info("No schedule: the job runs when the pipeline runs it")
	}
	log.Progress(20, "job ready")

	log.Section("Run")
	runID, err := idempotency.Start(ctx, s.env, log, "score", jobsAPI, func(ctx context.Context, token string) (int64, error) {
		log.Debug("idempotency token %s", token)
		started, err := jobsAPI.RunNow(ctx, jobs.RunNow{JobId: id, JobParameters: o.Params(), IdempotencyToken: token})
		if err != nil {
			return 0, fmt.Errorf("starting the job %q (%d): %w", o.JobName, id, err)
		}
		return started.RunId, nil
	})
	if err != nil {
		return err
	}
	res.runID = runID
	res.runURL = fmt.Sprintf("%s/jobs/%d/runs/%d", host, id, res.runID)
	log.SetOutput("runId", strconv.FormatInt(res.runID, 10))
	waiter := runwait.Waiter{
		Runs: jobsAPI, Clock: s.clock, Interval: s.interval, Timeout: o.Timeout, Log: log,
		OnChange: func(ch runwait.Change) {
			if ch.Task == nil && ch.From == (runwait.State{}) && ch.Run.RunPageUrl != "" {
				res.runURL = ch.Run.RunPageUrl
				log.SetOutput("runUrl", res.runURL)
				log.Info("Run %d: %s", res.runID, res.runURL)
			}
			reportChange(log, ch)
		},
	}
	run, err := waiter.Wait(ctx, res.runID)
	if run != nil && run.RunPageUrl != "" {
		res.runURL = run.RunPageUrl
	}
	if err != nil {
		return err
	}
	res.took = time.Duration(run.RunDuration) * time.Millisecond
	taskRun := scoringTask(run)
	if !runwait.Succeeded(run) {
		return runFailure(ctx, log, jobsAPI, run, taskRun, res.runURL)
	}
	log.Progress(80, "run succeeded")
	if taskRun == nil {
		return fmt.Errorf("the run has no %q task: %s", taskKey, res.runURL)
	}
	out, err := jobsAPI.GetRunOutput(ctx, jobs.GetRunOutputRequest{RunId: taskRun.RunId})
	if err != nil {
		return fmt.Errorf("reading the output of run %d: %w", taskRun.RunId, err)
	}
	exitText := ""
	if out.NotebookOutput != nil {
		exitText = out.NotebookOutput.Result
		if out.NotebookOutput.Truncated {
			return fmt.Errorf("the notebook's exit value was truncated by Databricks (over 5 MB): %s", res.runURL)
		}
	}
	log.Info("Exit value: %s", exitText)
	ev, err := ParseExitValue(exitText)
	if err != nil {
		return fmt.Errorf("%w (run %s)", err, res.runURL)
	}
	res.exit = ev
	res.outputTable = cmp.Or(ev.OutputTable, o.OutputTable)
	if ev.ModelVersion != "" {
		res.modelVer = ev.ModelVersion
	}
	if err := s.check(ctx, &res); err != nil {
		return err
	}
	s.publish(res)
	return nil
}

// check proves the output: the rows written against the minimum, and the
// table itself through a SQL warehouse when one is given.
func (s *step) check(ctx context.Context, res *result) error {
	o, log := s.opts, s.log
	log.Section("Checks")
	if res.exit.RowsWritten < o.MinRows {
		return fmt.Errorf("the run wrote %d row(s) to %s, fewer than the minimum of %d (input minRows): %s",
			res.exit.RowsWritten, res.outputTable, o.MinRows, res.runURL)
	}
	log.Info("Rows written: %d (minimum %d)", res.exit.RowsWritten, o.MinRows)
	if o.SQLWarehouseID == "" {
		if !res.exit.HasVersion {
			log.Warning("the notebook returned no table_version and no SQL warehouse is set to read it: the tableVersion output is empty")
		}
		return nil
	}
	tc, err := checkTable(ctx, sql.NewStatementExecution(s.c), s.clock, o.SQLWarehouseID, res.outputTable)
	if err != nil {
		return fmt.Errorf("checking the output table: %w", err)
	}
	res.check = &tc
	log.Info("SQL warehouse %s: SELECT COUNT(*) FROM %s = %d; latest Delta version %d", o.SQLWarehouseID, res.outputTable, tc.Rows, tc.Version)
	switch {
	case o.WriteMode == "overwrite" && tc.Rows != res.exit.RowsWritten:
		return fmt.Errorf("the table %s has %d rows after an overwrite with %d rows: %s", res.outputTable, tc.Rows, res.exit.RowsWritten, res.runURL)
	case tc.Rows < o.MinRows:
		return fmt.Errorf("the table %s has %d row(s), fewer than the minimum of %d: %s", res.outputTable, tc.Rows, o.MinRows, res.runURL)
	case !res.exit.HasVersion:
		res.exit.TableVersion, res.exit.HasVersion = tc.Version, true
	case tc.Version < res.exit.TableVersion:
		return fmt.Errorf("the table %s is at Delta version %d, older than the version %d the run reported: %s", res.outputTable, tc.Version, res.exit.TableVersion, res.runURL)
	case tc.Version > res.exit.TableVersion:
		log.Warning("the table %s was written again after the run (Delta version %d, the run wrote %d)", res.outputTable, tc.Version, res.exit.TableVersion)
	}
	return nil
}

func (s *step) publish(res result) {
	o, log := s.opts, s.log
	version := ""
	if res.exit.HasVersion {
		version = strconv.FormatInt(res.exit.TableVersion, 10)
	}
	log.SetOutput("rowsWritten", strconv.FormatInt(res.exit.RowsWritten, 10))
	log.SetOutput("outputTable", res.outputTable)
	log.SetOutput("tableVersion", version)
	log.SetOutput("modelVersion", res.modelVer)
	log.Progress(100, "done")
	if _, err := log.UploadSummary("Batch score", summary(o, res)); err != nil {
		log.Warning("could not write the summary: %v", err)
	}
}

// scoringTask is the run's task that ran the notebook.
func scoringTask(run *jobs.Run) *jobs.RunTask {
	for i := range run.Tasks {
		if run.Tasks[i].TaskKey == taskKey {
			return &run.Tasks[i]
		}
	}
	if len(run.Tasks) == 1 {
		return &run.Tasks[0]
	}
	return nil
}

// runFailure explains a run that ended without success, with the notebook's
// error and trace when Databricks has them.
func runFailure(ctx context.Context, log *agent.Log, api *jobs.JobsAPI, run *jobs.Run, t *jobs.RunTask, url string) error {
	st := runwait.StateOf(run.State)
	msg := fmt.Sprintf("the scoring run ended %s", st)
	if st.Message != "" {
		msg += " (" + st.Message + ")"
	}
	if t != nil {
		if out, err := api.GetRunOutput(ctx, jobs.GetRunOutputRequest{RunId: t.RunId}); err == nil {
			if out.Error != "" {
				msg += ": " + out.Error
			}
			if out.ErrorTrace != "" {
				log.Group("Error trace")
				log.Info("%s", out.ErrorTrace)
				log.EndGroup()
			}
		}
	}
	return fmt.Errorf("%s: %s", msg, url)
}

func reportChange(log *agent.Log, ch runwait.Change) {
	what := "run"
	if ch.Task != nil {
		what = "task " + ch.Task.TaskKey
	}
	text := ch.To.String()
	if ch.To.Message != "" {
		text += " (" + ch.To.Message + ")"
	}
	log.Info("[%s] %s: %s", ch.Elapsed.Round(time.Second), what, text)
}

func scheduleText(s *Schedule) string {
	t := s.Cron + " (" + s.TimeZone + ")"
	if s.Paused {
		t += ", paused"
	}
	return t
}
