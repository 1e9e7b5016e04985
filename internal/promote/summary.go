package promote

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/registry"
)

// summaryRows is how many versions the summary shows around the one acted on.
const summaryRows = 2

// summary adds a tab to the run summary: what the step did and a small table
// of the model's versions around the change, with links into the workspace.
// A failure to build it is a warning, not a failure of the step.
func (s *step) summary(ctx context.Context, r *result) {
	name := s.opts.Model
	all, err := s.ws.Versions(ctx, name)
	if err != nil {
		s.log.Warning("the run summary is incomplete: %v", err)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### MLflow model %s (%s)\n\n", agent.MarkdownCell(name.Full), s.opts.Command)
	if r.note != "" {
		fmt.Fprintf(&b, "%s\n\n", agent.MarkdownCell(r.note))
	}
	b.WriteString("| Version | ")
	if name.UC() {
		b.WriteString("Aliases")
	} else {
		b.WriteString("Stage")
	}
	b.WriteString(" | Status | Source run | Created |\n|---|---|---|---|---|\n")
	experiments := map[string]string{} // run id → experiment id
	for i, v := range all {
		if !s.inSummary(all, i, r) {
			continue
		}
		label := fmt.Sprintf("[%d](%s)", v.Number, s.ws.VersionURL(name, v.Number))
		if v.Number == r.version {
			label = "**" + label + "**"
		}
		where := agent.MarkdownCell(v.Stage)
		if name.UC() {
			var as []string
			for _, a := range v.Aliases {
				as = append(as, "@"+a)
			}
			where = agent.MarkdownCell(strings.Join(as, " "))
		}
		run := ""
		if v.RunID != "" {
			exp, ok := experiments[v.RunID]
			if !ok {
				if got, err := s.ws.run(ctx, v.RunID, "summary"); err == nil && got.Info != nil {
					exp = got.Info.ExperimentId
				}
				experiments[v.RunID] = exp
			}
			run = "`" + agent.MarkdownCell(v.RunID) + "`"
			if exp != "" {
				run = fmt.Sprintf("[%s](%s)", agent.MarkdownCell(v.RunID), s.ws.RunURL(exp, v.RunID))
			}
		}
		created := ""
		if v.Created > 0 {
			created = time.UnixMilli(v.Created).UTC().Format("2006-01-02 15:04 UTC")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", label, where, agent.MarkdownCell(v.Status), run, created)
	}
	if _, err := s.log.UploadSummary("MLflow model "+name.Full, b.String()); err != nil {
		s.log.Warning("could not add the run summary: %v", err)
	}
}

// inSummary keeps the versions near the one acted on, the previous holder,
// and every version in Staging/Production or with an alias.
func (s *step) inSummary(all []registry.Version, i int, r *result) bool {
	v := all[i]
	if v.Number == r.version || v.Number == r.previous || len(v.Aliases) > 0 || v.Stage == "Staging" || v.Stage == "Production" {
		return true
	}
	for j := max(0, i-summaryRows); j <= min(len(all)-1, i+summaryRows); j++ {
		if all[j].Number == r.version {
			return true
		}
	}
	return false
}
