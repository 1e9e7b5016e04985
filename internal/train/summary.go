package train

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/runwait"
)

// summary writes the Markdown tab of the pipeline run: the run link,
// duration, result, parameters and MLflow metrics.
func (s *step) summary(_ context.Context, run *jobs.Run, mr *mlflowResult, runErr error) {
	var b strings.Builder
	state := runwait.StateOf(run.State)
	result := state.String()
	if runErr != nil && !runwait.Ended(run) {
		result = "not finished: " + firstLine(runErr.Error())
	}
	fmt.Fprintf(&b, "## Databricks training run\n\n")
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| Run | [%s](%s) |\n", agent.MarkdownCell(cmp.Or(run.RunName, fmt.Sprint(run.RunId))), run.RunPageUrl)
	fmt.Fprintf(&b, "| Result | %s |\n", agent.MarkdownCell(result))
	if state.Message != "" {
		fmt.Fprintf(&b, "| Message | %s |\n", agent.MarkdownCell(state.Message))
	}
	d := runDuration(run)
	if d == 0 {
		d = s.clock.Now().Sub(s.started)
	}
	fmt.Fprintf(&b, "| Duration | %s |\n", d.Round(time.Second))
	if mr != nil {
		fmt.Fprintf(&b, "| MLflow run | `%s` (experiment %s) |\n", agent.MarkdownCell(mr.RunID), agent.MarkdownCell(mr.ExperimentID))
		if mr.ModelURI != "" {
			fmt.Fprintf(&b, "| Model | `%s` |\n", agent.MarkdownCell(mr.ModelURI))
		}
	}
	if len(run.Tasks) > 1 {
		fmt.Fprintf(&b, "\n### Tasks\n\n| Task | Result | Link |\n|---|---|---|\n")
		for _, t := range run.Tasks {
			fmt.Fprintf(&b, "| %s | %s | [open](%s) |\n", agent.MarkdownCell(t.TaskKey), agent.MarkdownCell(runwait.StateOf(t.State).String()), t.RunPageUrl)
		}
	}
	if len(s.opts.Parameters) > 0 {
		fmt.Fprintf(&b, "\n### Parameters\n\n| Name | Value |\n|---|---|\n")
		for _, p := range s.opts.Parameters {
			fmt.Fprintf(&b, "| %s | %s |\n", agent.MarkdownCell(p.Key), agent.MarkdownCell(p.Value))
		}
	}
	if mr != nil && len(mr.Metrics) > 0 {
		fmt.Fprintf(&b, "\n### MLflow metrics\n\n| Metric | Value | Output variable |\n|---|---|---|\n")
		for _, k := range slices.Sorted(maps.Keys(mr.Metrics)) {
			fmt.Fprintf(&b, "| %s | %s | `%s` |\n", agent.MarkdownCell(k), formatFloat(mr.Metrics[k]), MetricVariable(k))
		}
	}
	if _, err := s.log.UploadSummary("Databricks training", b.String()); err != nil {
		s.log.Warning("writing the summary: %v", err)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
