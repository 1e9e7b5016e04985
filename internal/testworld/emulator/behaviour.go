package emulator

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/databricks/databricks-sdk-go/service/workspace"
)

// Outcome is how a scripted task run ends.
type Outcome string

const (
	// Success: TERMINATED / SUCCESS (the default).
	Success Outcome = "SUCCESS"
	// Failed: TERMINATED / FAILED with Behaviour.Error and ErrorTrace in the
	// run output.
	Failed Outcome = "FAILED"
	// TimedOut: TERMINATED / TIMEDOUT.
	TimedOut Outcome = "TIMEDOUT"
	// Canceled: TERMINATED / CANCELED, as if a user cancelled the task.
	Canceled Outcome = "CANCELED"
	// InternalError: life-cycle state INTERNAL_ERROR, result FAILED.
	InternalError Outcome = "INTERNAL_ERROR"
	// Skipped: life-cycle state SKIPPED without running.
	Skipped Outcome = "SKIPPED"
)

// Behaviour scripts what a task run does. Register it with
// Workspace.OnNotebook (by notebook path) or Workspace.OnTask (by task key;
// it wins over the notebook path).
type Behaviour struct {
	// Duration is how long the task is RUNNING, on the workspace clock
	// (default Options.RunDuration). A task or job timeout_seconds shorter
	// than Duration turns the outcome into TIMEDOUT at the timeout.
	Duration time.Duration
	// Outcome is how the task ends (default Success).
	Outcome Outcome
	// Error and ErrorTrace are the run output's error and error_trace for
	// Failed (a default message is used if Error is empty).
	Error      string
	ErrorTrace string
	// StateMessage overrides the task's state_message.
	StateMessage string
	// NotebookOutput is the value passed to dbutils.notebook.exit. Values
	// over 5 MB are cut and flagged truncated, as Databricks does;
	// Truncated forces the flag.
	NotebookOutput string
	Truncated      bool

	// Train and Score act like the training and scoring notebooks: they run
	// when the task finishes running, before its outcome is decided; an error
	// fails the task.
	Train *Train
	Score *Score
	// Action is any other effect, run after Train and Score.
	Action func(tc *TaskContext) error
}

// Train creates an MLflow run like a training notebook: in Experiment
// (created with its parent folders if missing), with Params, Metrics and
// Tags plus the tags Databricks adds to runs made from a job
// (mlflow.source.type=JOB, mlflow.source.name=jobs/<job>/run/<task run>,
// mlflow.databricks.jobID, mlflow.databricks.jobRunID (the task run id),
// mlflow.databricks.notebookPath, mlflow.user), logs ModelDir (e.g. the
// churn-model fixture) as a model named ArtifactPath (default "model") the
// way the workspace's MLflow era does (MLflowEra: MLflow 2 uploads it under
// the run's artifacts at ArtifactPath and tags the run
// mlflow.log-model.history; MLflow 3 makes a logged model of that name,
// with its own files, as the run's output), finishes the run, and sets the
// notebook exit value to {"mlflow_run_id": "<id>"} unless
// Behaviour.NotebookOutput is set.
type Train struct {
	// Experiment is an absolute workspace path. Empty: the notebook
	// parameter "experiment_name", else /Shared/emulator/<task key>.
	Experiment   string
	RunName      string
	ModelDir     string
	ArtifactPath string
	Params       map[string]string
	Metrics      map[string]float64
	Tags         map[string]string
}

// Score creates or replaces a table with Rows rows, adding a Delta version
// that SQL statements (SELECT COUNT(*), DESCRIBE HISTORY) see. Table empty
// means the notebook parameter "output_table". Unless Behaviour.NotebookOutput
// is set, the exit value is the shipped scoring notebook's: rows_written,
// output_table, table_version, and the model name and version that the
// notebook parameter "model_uri" (models:/name/stage|version, models:/name@alias)
// points at in this workspace's registries; a URI that points at nothing
// fails the task, as loading the model would.
type Score struct {
	Table string
	Rows  int64
}

// TaskContext is what a Behaviour's Action sees. Actions run while the
// workspace is locked: use the TaskContext, not other Workspace methods.
type TaskContext struct {
	JobID        int64
	RunID        int64 // the job run (parent)
	TaskRunID    int64
	TaskKey      string
	NotebookPath string
	// Params are the notebook's widgets: base_parameters overridden by
	// notebook_params / job_parameters of the run.
	Params map[string]string
	// Now is when the task finished running.
	Now time.Time

	ws        *Workspace
	exitValue *string
}

// SetExitValue sets the notebook exit value (dbutils.notebook.exit).
func (tc *TaskContext) SetExitValue(v string) { *tc.exitValue = v }

// WriteTable creates or replaces a table with rows rows (a new Delta version).
func (tc *TaskContext) WriteTable(name string, rows int64) {
	tc.ws.writeTableLocked(name, rows, "CREATE OR REPLACE TABLE AS SELECT", tc.Now)
}

// TableVersion is a table's latest Delta version (-1 when it does not exist).
func (tc *TaskContext) TableVersion(name string) int64 {
	if t, ok := tc.ws.sql.tables[normTable(name)]; ok {
		return int64(len(t.versions) - 1)
	}
	return -1
}

// Train runs a Train spec and returns the MLflow run id.
func (tc *TaskContext) Train(t Train) (string, error) {
	return tc.ws.trainLocked(tc, t)
}

type behaviours struct {
	byTask     map[string]Behaviour
	byNotebook map[string]Behaviour
	fallback   *Behaviour
}

func newBehaviours() behaviours {
	return behaviours{byTask: map[string]Behaviour{}, byNotebook: map[string]Behaviour{}}
}

// OnNotebook scripts every task that runs the notebook at path. A
// workspace path (absolute) then holds a notebook, with a placeholder
// source unless one is there already: a run finds the notebook
// (finishTask), and so does a look-up (workspace get-status), as in a
// workspace where a user put it. A relative path is a notebook in a Git
// source, which is not in the workspace tree.
func (ws *Workspace) OnNotebook(notebookPath string, b Behaviour) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.behaviours.byNotebook[notebookPath] = b
	if p := path.Clean(notebookPath); strings.HasPrefix(notebookPath, "/") && ws.notebooks.objects[p] == nil && ws.notebooks.mkdirs(path.Dir(p), ws.clock.Now()) {
		o := ws.notebooks.putObject(p, workspace.ObjectTypeNotebook, []byte("# Databricks notebook source\n# scripted by the emulator (OnNotebook)\n"), ws.clock.Now())
		o.info.Language = workspace.LanguagePython
	}
}

// OnTask scripts every task with this task key (it wins over OnNotebook).
func (ws *Workspace) OnTask(taskKey string, b Behaviour) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.behaviours.byTask[taskKey] = b
}

// OnAnyTask scripts tasks that neither OnTask nor OnNotebook cover.
func (ws *Workspace) OnAnyTask(b Behaviour) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.behaviours.fallback = &b
}

func (b behaviours) lookup(taskKey, notebookPath string) (Behaviour, bool) {
	if v, ok := b.byTask[taskKey]; ok {
		return v, true
	}
	if notebookPath != "" {
		if v, ok := b.byNotebook[notebookPath]; ok {
			return v, true
		}
	}
	if b.fallback != nil {
		return *b.fallback, true
	}
	return Behaviour{}, false
}

// maxNotebookOutput is the size above which Databricks truncates a notebook
// exit value (https://docs.databricks.com/api/workspace/jobs/getrunoutput).
const maxNotebookOutput = 5 << 20

func (ws *Workspace) trainLocked(tc *TaskContext, t Train) (string, error) {
	exp := t.Experiment
	if exp == "" {
		exp = tc.Params["experiment_name"]
	}
	if exp == "" {
		exp = "/Shared/emulator/" + tc.TaskKey
	}
	expID, ok := ws.mlflow.byName[exp]
	if !ok {
		id, aerr := ws.createExperiment(exp, "", nil, true)
		if aerr != nil {
			return "", fmt.Errorf("mlflow.set_experiment(%q): %s", exp, aerr.Message)
		}
		expID = id
	}
	ws.mlflow.experiments[expID].LastUpdateTime = millis(tc.Now)
	tags := []ml.RunTag{
		{Key: "mlflow.source.type", Value: "JOB"},
		{Key: "mlflow.source.name", Value: fmt.Sprintf("jobs/%d/run/%d", tc.JobID, tc.TaskRunID)},
		{Key: "mlflow.databricks.jobID", Value: strconv.FormatInt(tc.JobID, 10)},
		{Key: "mlflow.databricks.jobRunID", Value: strconv.FormatInt(tc.TaskRunID, 10)},
		{Key: "mlflow.databricks.jobType", Value: "NORMAL"},
		{Key: "mlflow.databricks.notebookPath", Value: tc.NotebookPath},
		{Key: "mlflow.databricks.workspaceID", Value: strconv.FormatInt(ws.WorkspaceID, 10)},
		{Key: "mlflow.databricks.workspaceURL", Value: ws.Host},
	}
	for _, k := range slices.Sorted(maps.Keys(t.Tags)) {
		tags = append(tags, ml.RunTag{Key: k, Value: t.Tags[k]})
	}
	run, aerr := ws.createMLflowRun(expID, t.RunName, millis(tc.Now), tags, tc.Now)
	if aerr != nil {
		return "", fmt.Errorf("mlflow.start_run: %s", aerr.Message)
	}
	var params []ml.Param
	for _, k := range slices.Sorted(maps.Keys(t.Params)) {
		params = append(params, ml.Param{Key: k, Value: t.Params[k]})
	}
	var metrics []ml.Metric
	for _, k := range slices.Sorted(maps.Keys(t.Metrics)) {
		metrics = append(metrics, ml.Metric{Key: k, Value: t.Metrics[k], Timestamp: millis(tc.Now)})
	}
	if aerr := ws.logBatch(run, params, metrics, nil); aerr != nil {
		return "", fmt.Errorf("mlflow.log_params: %s", aerr.Message)
	}
	if t.ModelDir != "" {
		files, err := ReadFolder(t.ModelDir)
		if err != nil {
			return "", fmt.Errorf("mlflow.log_model: %w", err)
		}
		ap := t.ArtifactPath
		if ap == "" {
			ap = "model"
		}
		if ws.opts.MLflow == MLflow3 {
			if _, err := ws.logModel3(run, ap, files, tc.Now); err != nil {
				return "", fmt.Errorf("mlflow.log_model: %w", err)
			}
		} else {
			if err := putFiles(ws.bgCtx(), ws.store, run.storeKey+"/"+ap, files); err != nil {
				return "", fmt.Errorf("mlflow.log_model: %w", err)
			}
			history, _ := json.Marshal([]map[string]any{{"run_id": run.info.RunId, "artifact_path": ap, "utc_time_created": tc.Now.UTC().Format("2006-01-02 15:04:05.000000"), "flavors": map[string]any{}}})
			run.setTag("mlflow.log-model.history", string(history))
		}
	}
	run.info.Status = ml.RunInfoStatusFinished
	run.info.EndTime = millis(tc.Now)
	return run.info.RunId, nil
}

// ReadFolder reads every file below dir (e.g. an MLflow model folder),
// keyed by slash-separated relative path, as Train uploads ModelDir. An
// empty folder is an error.
func ReadFolder(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[path.Clean(filepath.ToSlash(rel))] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read model folder %s: %w", dir, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("model folder %s is empty", dir)
	}
	return out, nil
}

// resolveModelURILocked finds the version a models:/ URI points at now, as
// MLflow does when the scoring notebook loads the model.
func (ws *Workspace) resolveModelURILocked(uri string) (name, version string, err error) {
	rest, ok := strings.CutPrefix(uri, "models:/")
	if !ok {
		return "", "", fmt.Errorf("model_uri %q is not a models:/ URI", uri)
	}
	if n, alias, isAlias := strings.Cut(rest, "@"); isAlias {
		m, found := ws.uc.models[strings.ToLower(n)]
		if !found {
			return "", "", fmt.Errorf("RESOURCE_DOES_NOT_EXIST: model %s does not exist", n)
		}
		v, found := m.aliases[alias]
		if !found {
			return "", "", fmt.Errorf("RESOURCE_DOES_NOT_EXIST: model %s has no alias %s", n, alias)
		}
		return n, strconv.Itoa(v), nil
	}
	i := strings.LastIndex(rest, "/")
	if i < 0 {
		return "", "", fmt.Errorf("model_uri %q has no version or stage", uri)
	}
	n, ref := rest[:i], rest[i+1:]
	if _, err := strconv.Atoi(ref); err == nil {
		return n, ref, nil
	}
	m, found := ws.registry.models[n]
	if !found {
		return "", "", fmt.Errorf("RESOURCE_DOES_NOT_EXIST: registered model %s does not exist", n)
	}
	for i := len(m.versions) - 1; i >= 0; i-- {
		if v := m.versions[i]; v != nil && strings.EqualFold(v.mv.CurrentStage, ref) {
			return n, v.mv.Version, nil
		}
	}
	return "", "", fmt.Errorf("model %s has no version in stage %s", n, ref)
}
