package train

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/loggedmodel"
	"github.com/brickferry/brickferry/internal/runwait"
)

// taskOutput is what runs/get-output said about one task run.
type taskOutput struct {
	task   jobs.RunTask
	output *jobs.RunOutput
}

// mlflowResult is the MLflow run the training produced.
type mlflowResult struct {
	RunID, ExperimentID string
	// ModelURI is the model the run logged: runs:/<run id>/<artifact path>
	// (MLflow 2) or models:/<logged model id> (MLflow 3, LoggedModelID set).
	ModelURI, LoggedModelID string
	Metrics                 map[string]float64
	How                     string // "exit value" or "search"
}

// finish reads the ended run's outputs and reports the result.
func (s *step) finish(ctx context.Context, run *jobs.Run) error {
	state := runwait.StateOf(run.State)
	result := string(state.Result)
	if result == "" {
		result = string(state.Life) // SKIPPED, INTERNAL_ERROR without a result
	}
	s.log.SetOutput("resultState", result)
	outputs := s.taskOutputs(ctx, run)
	if !runwait.Succeeded(run) {
		s.reportFailedTasks(outputs)
		err := fmt.Errorf("the Databricks run %d ended %s: %s (%s)", run.RunId, state, cmp.Or(state.Message, "no message"), run.RunPageUrl)
		s.summary(ctx, run, nil, err)
		return err
	}
	exit, cut := s.notebookOutput(outputs)
	mr, err := s.findMLflowRun(ctx, run, exit, cut)
	if err == nil && mr != nil {
		s.publishMLflow(mr)
	}
	s.summary(ctx, run, mr, nil)
	switch {
	case err != nil && s.opts.RequireMLflowRun:
		return err
	case err != nil:
		s.log.Warning("%v", err)
	}
	s.log.Info("Run %d succeeded in %s.", run.RunId, runDuration(run))
	return nil
}

// taskOutputs reads runs/get-output for every task that ran. It takes the
// TASK run id (a parent run id is refused for multi-task runs).
func (s *step) taskOutputs(ctx context.Context, run *jobs.Run) []taskOutput {
	var out []taskOutput
	for _, t := range run.Tasks {
		if t.RunId == 0 {
			continue
		}
		o, err := s.jobs.GetRunOutput(ctx, jobs.GetRunOutputRequest{RunId: t.RunId})
		if err != nil {
			s.log.Warning("reading the output of task %s (run %d): %v", t.TaskKey, t.RunId, err)
			continue
		}
		out = append(out, taskOutput{task: t, output: o})
	}
	return out
}

// reportFailedTasks writes one error issue per failed task, with its error
// and trace (neutralised by the Log: remote text may hold "##vso[").
func (s *step) reportFailedTasks(outputs []taskOutput) {
	for _, to := range outputs {
		st := runwait.StateOf(to.task.State)
		if st.Result == jobs.RunResultStateSuccess || st.Result == jobs.RunResultStateUpstreamFailed || st.Result == jobs.RunResultStateExcluded {
			continue
		}
		msg := fmt.Sprintf("Task %s ended %s", to.task.TaskKey, st)
		if to.output.Error != "" {
			msg += ": " + to.output.Error
		} else if st.Message != "" {
			msg += ": " + st.Message
		}
		msg += " (" + to.task.RunPageUrl + ")"
		if to.output.ErrorTrace != "" {
			msg += "\n" + to.output.ErrorTrace
		}
		s.log.Error("%s", msg)
	}
}

// notebookOutput publishes the exit value: of the first notebook task that
// named an MLflow run, else of the last notebook task that gave one. It
// returns the whole value and whether Databricks truncated it.
func (s *step) notebookOutput(outputs []taskOutput) (string, bool) {
	var chosen *jobs.NotebookOutput
	for _, to := range outputs {
		nb := to.output.NotebookOutput
		if nb == nil || nb.Result == "" {
			continue
		}
		if _, ok := parseExit(nb.Result); ok {
			chosen = nb
			break
		}
		chosen = nb
	}
	if chosen == nil {
		return "", false
	}
	if chosen.Truncated {
		s.log.Warning("Databricks truncated the notebook's exit value (over 5 MB); notebookOutput holds the first part only")
	}
	value := chosen.Result
	if len(value) > maxOutputLength {
		s.log.Warning("the notebook's exit value has %d bytes; notebookOutput holds the first %d", len(value), maxOutputLength)
		value = agent.TruncateUTF8(value, maxOutputLength) // an output must stay valid UTF-8
	}
	s.log.SetOutput("notebookOutput", value)
	return chosen.Result, chosen.Truncated
}

// noRunNamed says why the exit value gives no MLflow run: it names none, or
// Databricks cut it (over 5 MB) so that it can no longer be read as JSON, in
// which case the run it named is lost with its end.
func noRunNamed(cut bool) string {
	if cut {
		return "the notebook's exit value was truncated by Databricks (over 5 MB) and can no longer be read as JSON, so the MLflow run it names cannot be read (keep the exit value small: dbutils.notebook.exit(json.dumps({\"mlflow_run_id\": run.info.run_id})))"
	}
	return "the notebook's exit value names none (end the notebook with dbutils.notebook.exit(json.dumps({\"mlflow_run_id\": run.info.run_id})))"
}

// maxOutputLength keeps an output variable within what the agent handles
// comfortably in one logging command line.
const maxOutputLength = 32 << 10

// exitValue is the documented convention for the notebook's exit value:
// dbutils.notebook.exit(json.dumps({"mlflow_run_id": ..., ...})).
type exitValue struct {
	RunID        string `json:"mlflow_run_id"`
	ExperimentID string `json:"mlflow_experiment_id"`
	ModelPath    string `json:"model_path"`
}

func parseExit(s string) (exitValue, bool) {
	var v exitValue
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &v); err != nil || v.RunID == "" {
		return exitValue{}, false
	}
	return v, true
}

// errNoMLflowRun is returned when neither way finds the run.
var errNoMLflowRun = errors.New("no MLflow run found")

// findMLflowRun takes the run from the exit value, or searches the
// experiment for the run Databricks tagged with one of this run's task runs
// (mlflow.databricks.jobRunID), then reads its metrics and model from MLflow.
func (s *step) findMLflowRun(ctx context.Context, run *jobs.Run, exit string, cut bool) (*mlflowResult, error) {
	var runID, how, modelPath string
	if v, ok := parseExit(exit); ok {
		runID, how, modelPath = v.RunID, "the notebook's exit value", v.ModelPath
	} else if s.opts.Experiment != "" {
		found, err := s.searchMLflowRun(ctx, run, noRunNamed(cut))
		if err != nil {
			return nil, err
		}
		runID, how = found, "experiment "+s.opts.Experiment
	} else {
		return nil, fmt.Errorf("%w: %s, and no MLflow experiment is given to search (input mlflowExperiment)", errNoMLflowRun, noRunNamed(cut))
	}
	got, err := s.mlflow.GetRun(ctx, ml.GetRunRequest{RunId: runID})
	if err != nil {
		return nil, fmt.Errorf("reading MLflow run %s (from %s): %w", runID, how, err)
	}
	mr := &mlflowResult{RunID: runID, How: how, Metrics: map[string]float64{}}
	if got.Run != nil && got.Run.Info != nil {
		mr.ExperimentID = got.Run.Info.ExperimentId
	}
	var tags []ml.RunTag
	if got.Run != nil && got.Run.Data != nil {
		for _, m := range got.Run.Data.Metrics {
			mr.Metrics[m.Key] = m.Value
		}
		tags = got.Run.Data.Tags
	}
	s.findModel(ctx, mr, modelPath, tags)
	return mr, nil
}

// findModel sets the model the run logged. MLflow 2's log_model writes the
// model under the run's artifacts and lists it in the run tag
// mlflow.log-model.history: the model is runs:/<run id>/<path> (the exit
// value's model_path, else the tag's last entry). MLflow 3's log_model
// writes no such tag: the model is a logged model whose source is the run
// (named model_path, if the exit value gives one), models:/<model id>, found
// as MLflow finds it (loggedmodel.OfRun).
func (s *step) findModel(ctx context.Context, mr *mlflowResult, modelPath string, tags []ml.RunTag) {
	runID := mr.RunID
	if history := loggedModelPath(tags); history != "" {
		mr.ModelURI = "runs:/" + runID + "/" + strings.Trim(cmp.Or(modelPath, history), "/")
		return
	}
	lm, others, err := s.models.OfRun(ctx, runID, mr.ExperimentID, strings.Trim(modelPath, "/"))
	switch {
	case err != nil && !loggedmodel.Unsupported(err):
		s.log.Warning("looking for the logged model of MLflow run %s: %v", runID, err)
	case lm != nil:
		if len(others) > 0 {
			s.log.Warning("MLflow run %s logged %d models; using %s (%s), the last one it logged; the others: %s", runID, len(others)+1, lm.Name, lm.ModelId, strings.Join(others, ", "))
		}
		mr.ModelURI, mr.LoggedModelID = loggedmodel.URI(lm.ModelId), lm.ModelId
		return
	}
	if modelPath != "" {
		mr.ModelURI = "runs:/" + runID + "/" + strings.Trim(modelPath, "/")
		return
	}
	s.log.Warning("MLflow run %s logged no model (no logged model from the run, no mlflow.log-model.history tag and no model_path in the exit value); modelUri is not set", runID)
}

// loggedModelPath reads the artifact path of the last model logged in the
// run from the mlflow.log-model.history tag MLflow writes on log_model.
func loggedModelPath(tags []ml.RunTag) string {
	for _, t := range tags {
		if t.Key != "mlflow.log-model.history" {
			continue
		}
		var hist []struct {
			ArtifactPath string `json:"artifact_path"`
		}
		if json.Unmarshal([]byte(t.Value), &hist) == nil && len(hist) > 0 {
			return hist[len(hist)-1].ArtifactPath
		}
	}
	return ""
}

func (s *step) searchMLflowRun(ctx context.Context, run *jobs.Run, why string) (string, error) {
	exp := s.opts.Experiment
	expID := exp
	if !isDigits(exp) {
		got, err := s.mlflow.GetByName(ctx, ml.GetByNameRequest{ExperimentName: exp})
		if err != nil {
			return "", fmt.Errorf("finding MLflow experiment %q (input mlflowExperiment): %w", exp, err)
		}
		expID = got.Experiment.ExperimentId
	}
	ids := []int64{}
	for _, t := range run.Tasks {
		ids = append(ids, t.RunId)
	}
	ids = append(ids, run.RunId)
	for _, id := range ids {
		runs, err := s.mlflow.SearchRunsAll(ctx, ml.SearchRuns{
			ExperimentIds: []string{expID},
			Filter:        fmt.Sprintf("tags.`mlflow.databricks.jobRunID` = '%d'", id),
			MaxResults:    10,
		})
		if err != nil {
			return "", fmt.Errorf("searching MLflow experiment %s: %w", exp, err)
		}
		if len(runs) > 0 && runs[0].Info != nil {
			if len(runs) > 1 {
				s.log.Warning("%d MLflow runs in %s are tagged with job run %d; using the latest, %s", len(runs), exp, id, runs[0].Info.RunId)
			}
			return runs[0].Info.RunId, nil
		}
	}
	return "", fmt.Errorf("%w: %s, and no run in MLflow experiment %s is tagged with job run %d or its tasks", errNoMLflowRun, why, exp, run.RunId)
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func (s *step) publishMLflow(mr *mlflowResult) {
	s.log.Info("MLflow run %s (experiment %s), found through %s.", mr.RunID, mr.ExperimentID, mr.How)
	s.log.SetOutput("mlflowRunId", mr.RunID)
	if mr.ExperimentID != "" {
		s.log.SetOutput("mlflowExperimentId", mr.ExperimentID)
	}
	if mr.ModelURI != "" {
		s.log.SetOutput("modelUri", mr.ModelURI)
	}
	if mr.LoggedModelID != "" {
		s.log.SetOutput("loggedModelId", mr.LoggedModelID)
	}
	seen := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(mr.Metrics)) {
		name := MetricVariable(k)
		if prev, dup := seen[name]; dup {
			s.log.Warning("metrics %q and %q both become output %s; keeping %q", prev, k, name, prev)
			continue
		}
		seen[name] = k
		s.log.SetOutput(name, formatFloat(mr.Metrics[k]))
	}
}

var notVarChar = regexp.MustCompile(`[^A-Za-z0-9_]`)

// MetricVariable is the output variable of an MLflow metric: "metric_" and
// the metric's key with every character other than a letter, digit or '_'
// replaced by '_' (val.auc → metric_val_auc), so that $(step.metric_val_auc)
// works in every expression syntax.
func MetricVariable(key string) string {
	return "metric_" + notVarChar.ReplaceAllString(key, "_")
}

func formatFloat(f float64) string {
	return fmt.Sprintf("%v", f)
}

func runDuration(run *jobs.Run) time.Duration {
	switch {
	case run.RunDuration > 0:
		return time.Duration(run.RunDuration) * time.Millisecond
	case run.EndTime > 0 && run.StartTime > 0:
		return time.Duration(run.EndTime-run.StartTime) * time.Millisecond
	}
	return 0
}
