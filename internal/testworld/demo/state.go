package demo

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/serving"

	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// State is what a pipeline run left in both workspaces, with the values that
// differ between two equivalent runs (generated ids, times) normalised, so
// that two runs can be compared with ==-like equality: the fault, crash and
// concurrency suites compare a run's State with a clean run's.
type State struct {
	Dev, Prod WorkspaceState
}

// WorkspaceState is one workspace's part of State.
type WorkspaceState struct {
	// Versions of the sample's model: "v1 Production READY" (workspace
	// registry) or "v1 @champion READY" (Unity Catalog), plus its tags.
	Versions []string
	// JobRuns counts runs by run type and result (e.g. "SUBMIT_RUN SUCCESS": 1).
	JobRuns map[string]int
	// Jobs are the names of the jobs that exist.
	Jobs []string
	// MLflowRuns counts the MLflow runs of each experiment, by name.
	MLflowRuns map[string]int
	// Table is "rows@delta-version" of the scored table ("" if absent).
	Table string
	// Endpoint is "READY config=N served=churn:1" ("" if absent).
	Endpoint string
}

var volatile = regexp.MustCompile(`\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b[0-9a-f]{32}\b|\b[1-9][0-9]{15}\b|https://127\.0\.0\.1:[0-9]+`)

// State reads the world's state back through the Databricks API (the
// experiments from the emulator itself), with faults off.
func (w *World) State(ctx context.Context) (State, error) {
	var st State
	for _, x := range []struct {
		ws    *emulator.Workspace
		model string
		out   *WorkspaceState
	}{{w.Dev, w.Sample.DevModel, &st.Dev}, {w.Prod, w.Sample.ProdModel, &st.Prod}} {
		s, err := workspaceState(ctx, x.ws, x.model, w.Sample.OutputTable)
		if err != nil {
			return st, fmt.Errorf("%s workspace: %w", x.ws.Name(), err)
		}
		*x.out = s
	}
	return st, nil
}

func workspaceState(ctx context.Context, ws *emulator.Workspace, model, table string) (WorkspaceState, error) {
	var s WorkspaceState
	c, err := client.New(ws.SDKConfig())
	if err != nil {
		return s, err
	}
	versions, err := ModelVersions(ctx, ws.SDKConfig(), model)
	if err != nil {
		return s, err
	}
	for _, v := range versions {
		var tags []string
		for k, val := range v.Tags {
			tags = append(tags, k+"="+volatile.ReplaceAllString(val, "<id>"))
		}
		sort.Strings(tags)
		s.Versions = append(s.Versions, fmt.Sprintf("v%s %s %s [%s]", v.Version, v.Where, v.Status, strings.Join(tags, " ")))
	}
	js := jobs.NewJobs(c)
	runs, err := js.ListRunsAll(ctx, jobs.ListRunsRequest{Limit: 25})
	if err != nil {
		return s, err
	}
	s.JobRuns = map[string]int{}
	for _, r := range runs {
		result := ""
		if r.State != nil {
			result = string(r.State.ResultState)
		}
		s.JobRuns[string(r.RunType)+" "+result]++
	}
	all, err := js.ListAll(ctx, jobs.ListJobsRequest{})
	if err != nil {
		return s, err
	}
	for _, j := range all {
		if j.Settings != nil {
			s.Jobs = append(s.Jobs, j.Settings.Name)
		}
	}
	sort.Strings(s.Jobs)
	// The emulator has no experiments/search route: its Go side lists them.
	s.MLflowRuns = ws.ExperimentRuns()
	if rows, version, ok := ws.Table(table); ok {
		s.Table = fmt.Sprintf("%d@%d", rows, version)
	}
	if ep, err := serving.NewServingEndpoints(c).Get(ctx, serving.GetServingEndpointRequest{Name: Endpoint}); err == nil {
		var served []string
		var cfgVersion int64
		if ep.Config != nil {
			cfgVersion = ep.Config.ConfigVersion
			for _, e := range ep.Config.ServedEntities {
				served = append(served, e.EntityName+":"+e.EntityVersion)
			}
		}
		ready := ""
		if ep.State != nil {
			ready = string(ep.State.Ready)
		}
		s.Endpoint = fmt.Sprintf("%s config=%d served=%s", ready, cfgVersion, strings.Join(served, ","))
	}
	return s, nil
}

// String prints a State for a test failure.
func (s State) String() string {
	var b strings.Builder
	for _, x := range []struct {
		name string
		ws   WorkspaceState
	}{{"dev", s.Dev}, {"prod", s.Prod}} {
		fmt.Fprintf(&b, "%s: versions %q, job runs %v, jobs %q, MLflow runs %v, table %q, endpoint %q\n",
			x.name, x.ws.Versions, x.ws.JobRuns, x.ws.Jobs, x.ws.MLflowRuns, x.ws.Table, x.ws.Endpoint)
	}
	return b.String()
}

// Diff names, in words, every way s differs from ref (the state of a clean
// run): what exists more often than in ref (a duplicate), less often
// (something lost), or in another state. Empty when they are equal.
func (s State) Diff(ref State) []string {
	var out []string
	for _, x := range []struct {
		name      string
		got, want WorkspaceState
	}{{"dev", s.Dev, ref.Dev}, {"prod", s.Prod, ref.Prod}} {
		g, w := x.got, x.want
		out = append(out, diffCounts(x.name+" model versions", counts(g.Versions), counts(w.Versions))...)
		out = append(out, diffCounts(x.name+" jobs", counts(g.Jobs), counts(w.Jobs))...)
		out = append(out, diffCounts(x.name+" job runs", g.JobRuns, w.JobRuns)...)
		out = append(out, diffCounts(x.name+" MLflow runs of experiment", g.MLflowRuns, w.MLflowRuns)...)
		if g.Table != w.Table {
			out = append(out, fmt.Sprintf("%s scored table: %q (rows@Delta version), clean run %q", x.name, g.Table, w.Table))
		}
		if g.Endpoint != w.Endpoint {
			out = append(out, fmt.Sprintf("%s serving endpoint %s: %q, clean run %q", x.name, Endpoint, g.Endpoint, w.Endpoint))
		}
	}
	return out
}

func counts(items []string) map[string]int {
	m := map[string]int{}
	for _, it := range items {
		m[it]++
	}
	return m
}

// diffCounts compares how many of each thing there are.
func diffCounts(what string, got, want map[string]int) []string {
	keys := map[string]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		g, w := got[k], want[k]
		switch {
		case g > w && w > 0:
			out = append(out, fmt.Sprintf("DUPLICATE: %s %q: %d, clean run %d", what, k, g, w))
		case g > w:
			out = append(out, fmt.Sprintf("EXTRA: %s %q: %d, clean run none", what, k, g))
		case g < w:
			out = append(out, fmt.Sprintf("MISSING: %s %q: %d, clean run %d", what, k, g, w))
		}
	}
	return out
}
