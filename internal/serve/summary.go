package serve

import (
	"fmt"
	"math"
	"net/url"
	"strings"

	"github.com/brickferry/brickferry/internal/agent"
)

// summary uploads the run summary tab: the endpoint link, what it serves
// with which traffic, and the smoke test result.
func (s *step) summary() {
	o := s.o
	host := strings.TrimSuffix(s.c.Config.Host, "/")
	var b strings.Builder
	fmt.Fprintf(&b, "## Model serving: %s\n\n", agent.MarkdownCell(o.Endpoint))
	fmt.Fprintf(&b, "Endpoint: [%s](%s/ml/endpoints/%s)  \n", agent.MarkdownCell(o.Endpoint), host, url.PathEscape(o.Endpoint))
	fmt.Fprintf(&b, "Invocations URL: `%s`  \n", s.invocationsURL(s.final))
	fmt.Fprintf(&b, "Model: %s version %s\n\n", agent.MarkdownCell(o.Model), agent.MarkdownCell(o.Version))

	result := "succeeded"
	switch {
	case s.outcome != "" && s.rolledBack:
		result = "**failed, rolled back**"
	case s.outcome != "":
		result = "**failed**"
	}
	action := s.action
	if action == "" {
		action = "nothing changed"
	}
	fmt.Fprintf(&b, "Result: %s (endpoint %s)\n\n", result, action)
	if s.outcome != "" {
		fmt.Fprintf(&b, "> %s\n\n", agent.MarkdownCell(s.outcome))
	}

	if s.final != nil {
		fmt.Fprintf(&b, "| Served entity | Model | Version | Traffic | Workload | State |\n|---|---|---|---:|---|---|\n")
		for _, e := range servedOf(s.final.Config) {
			fmt.Fprintf(&b, "| %s | %s | %s | %d %% | %s %s%s | %s |\n", agent.MarkdownCell(e.Name), agent.MarkdownCell(e.Model), agent.MarkdownCell(e.Version), e.Traffic,
				agent.MarkdownCell(e.WorkloadSize), agent.MarkdownCell(e.WorkloadType), scaleToZero(e.ScaleToZero), agent.MarkdownCell(e.State))
		}
		st := state(s.final)
		fmt.Fprintf(&b, "\nEndpoint state: %s, config update %s\n\n", orUnknown(string(st.Ready)), orUnknown(string(st.ConfigUpdate)))
	}

	if c := s.canary; c.Readings > 0 {
		verdict := c.Verdict
		if verdict == "" {
			verdict = "not decided"
		}
		fmt.Fprintf(&b, "Canary: **%s** after %d reading(s) over %s: %s\n\n", verdict, c.Readings, o.Canary.Watch, agent.MarkdownCell(c.Judgement))
		fmt.Fprintf(&b, "| Served entity | Requests | 5xx | p99 latency |\n|---|---:|---:|---:|\n")
		for _, row := range []struct {
			name string
			m    entityMetrics
		}{{s.plan.newName + " (canary)", c.Canary}, {s.plan.stable + " (stable)", c.Stable}} {
			p99 := "-"
			if v := row.m.p99(); !math.IsNaN(v) {
				p99 = fmt.Sprintf("%.0f ms", v)
			}
			fmt.Fprintf(&b, "| %s | %d | %.2f %% | %s |\n", agent.MarkdownCell(row.name), int64(row.m.Requests), row.m.errorRate(), p99)
		}
		b.WriteString("\n")
	}
	if s.gateway != "" {
		fmt.Fprintf(&b, "AI Gateway set: %s\n\n", agent.MarkdownCell(s.gateway))
	}
	switch sm := s.smoke; {
	case sm.Ran && sm.Err == nil:
		fmt.Fprintf(&b, "Smoke test: passed, HTTP %d, %d prediction(s) for %d row(s) in %d ms (%s)\n", sm.Status, sm.Predictions, sm.Rows, sm.Latency.Milliseconds(), agent.MarkdownCell(sm.Source))
	case sm.Ran:
		fmt.Fprintf(&b, "Smoke test: **failed** after %d ms: %s (%s)\n", sm.Latency.Milliseconds(), agent.MarkdownCell(sm.Err.Error()), agent.MarkdownCell(sm.Source))
	case sm.Skipped != "":
		fmt.Fprintf(&b, "Smoke test: skipped (%s)\n", agent.MarkdownCell(sm.Skipped))
	default:
		fmt.Fprintf(&b, "Smoke test: not run\n")
	}
	if _, err := s.log.UploadSummary("Model serving "+o.Endpoint, b.String()); err != nil {
		s.log.Warning("could not write the run summary: %v", err)
	}
}

func scaleToZero(on bool) string {
	if on {
		return ", scale to zero"
	}
	return ""
}
