package train

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/brickferry/brickferry/internal/runwait"
)

// summary writes the Markdown tab of the pipeline run: the run link,
// duration, result, parameters and MLflow metrics.
func (r *runner) summary(_ context.Context, run *jobs.Run, mr *mlflowResult, runErr error) {
	var b strings.Builder
	state := runwait.StateOf(run.State)
	result := state.String()
	if runErr != nil && !runwait.Ended(run) {
		result = "not finished: " + firstLine(runErr.Error())
	}
	fmt.Fprintf(&b, "## Databricks training run\n\n")
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| Run | [%s](%s) |\n", mdCell(firstNonEmpty(run.RunName, fmt.Sprint(run.RunId))), run.RunPageUrl)
	fmt.Fprintf(&b, "| Result | %s |\n", mdCell(result))
	if state.Message != "" {
		fmt.Fprintf(&b, "| Message | %s |\n", mdCell(state.Message))
	}
	d := runDuration(run)
	if d == 0 {
		d = r.clock.Now().Sub(r.started)
	}
	fmt.Fprintf(&b, "| Duration | %s |\n", d.Round(time.Second))
	if mr != nil {
		fmt.Fprintf(&b, "| MLflow run | `%s` (experiment %s) |\n", mdCell(mr.RunID), mdCell(mr.ExperimentID))
		if mr.ModelURI != "" {
			fmt.Fprintf(&b, "| Model | `%s` |\n", mdCell(mr.ModelURI))
		}
	}
	if len(run.Tasks) > 1 {
		fmt.Fprintf(&b, "\n### Tasks\n\n| Task | Result | Link |\n|---|---|---|\n")
		for _, t := range run.Tasks {
			fmt.Fprintf(&b, "| %s | %s | [open](%s) |\n", mdCell(t.TaskKey), mdCell(runwait.StateOf(t.State).String()), t.RunPageUrl)
		}
	}
	if len(r.opts.Parameters) > 0 {
		fmt.Fprintf(&b, "\n### Parameters\n\n| Name | Value |\n|---|---|\n")
		for _, p := range r.opts.Parameters {
			fmt.Fprintf(&b, "| %s | %s |\n", mdCell(p.Key), mdCell(p.Value))
		}
	}
	if mr != nil && len(mr.Metrics) > 0 {
		fmt.Fprintf(&b, "\n### MLflow metrics\n\n| Metric | Value | Output variable |\n|---|---|---|\n")
		for _, k := range sortedKeys(mr.Metrics) {
			fmt.Fprintf(&b, "| %s | %s | `%s` |\n", mdCell(k), formatFloat(mr.Metrics[k]), MetricVariable(k))
		}
	}
	if _, err := r.log.UploadSummary("Databricks training", b.String()); err != nil {
		r.log.Warning("writing the summary: %v", err)
	}
}

// mdCell keeps text inside one Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
