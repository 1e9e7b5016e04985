package batchscore

import (
	"fmt"
	"strings"
	"time"

	"github.com/brickferry/brickferry/internal/agent"
)

// summary is the Markdown of the run summary tab.
func summary(o Options, r result) string {
	var b strings.Builder
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	b.WriteString("### Batch score\n\n| | |\n|---|---|\n")
	verb := "updated"
	if r.created {
		verb = "created"
	}
	row("Job", fmt.Sprintf("[%s](%s) (%d, %s)", agent.MarkdownCell(o.JobName), r.jobURL, r.jobID, verb))
	took := ""
	if r.took > 0 {
		took = ", " + r.took.Round(time.Second).String()
	}
	row("Run", fmt.Sprintf("[%d](%s) succeeded%s", r.runID, r.runURL, took))
	model := agent.MarkdownCell(o.Model.URI)
	if r.modelVer != "" {
		model += " → version " + agent.MarkdownCell(r.modelVer)
	}
	row("Model", model)
	row("Input", agent.MarkdownCell(o.sourceText()))
	mode := o.WriteMode
	if mode == "merge" {
		mode += " on " + strings.Join(o.MergeKeys, ", ")
	}
	row("Output table", agent.MarkdownCell(r.outputTable)+" ("+agent.MarkdownCell(mode)+")")
	row("Rows written", fmt.Sprintf("%d", r.exit.RowsWritten))
	if r.exit.HasVersion {
		row("Delta version", fmt.Sprintf("%d", r.exit.TableVersion))
	}
	if r.check != nil {
		row("SQL check", fmt.Sprintf("COUNT(*) = %d, latest version %d (warehouse %s)", r.check.Rows, r.check.Version, agent.MarkdownCell(o.SQLWarehouseID)))
	}
	if o.Schedule != nil {
		row("Schedule", agent.MarkdownCell(scheduleText(o.Schedule)))
	}
	nb := agent.MarkdownCell(o.NotebookPath)
	if o.Shipped {
		nb += " (Brickferry notebook"
		if r.uploaded {
			nb += ", uploaded"
		}
		nb += ")"
	}
	row("Notebook", nb)
	row("Compute", agent.MarkdownCell(o.Compute.String()))
	return b.String()
}
