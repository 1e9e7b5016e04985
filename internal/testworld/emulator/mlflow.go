package emulator

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/ml"
)

// MLflow tracking: experiments and runs as the Databricks-hosted MLflow
// server keeps them (https://docs.databricks.com/api/workspace/experiments).
// Experiments are workspace objects: a name is an absolute workspace path
// whose parent folder must exist. Artifacts of a run live under
// dbfs:/databricks/mlflow-tracking/<experiment id>/<run id>/artifacts.

type mlflowState struct {
	experiments map[string]*ml.Experiment // id →
	byName      map[string]string         // name → id
	runs        map[string]*mlflowRun
	logged      map[string]*loggedModel // logged models (MLflow 3) by model id
}

type mlflowRun struct {
	info     ml.RunInfo
	params   []ml.Param
	metrics  map[string]ml.Metric // latest value per key
	history  []ml.Metric
	tags     []ml.RunTag
	storeKey string           // artifact root inside the artifact store
	outputs  []ml.ModelOutput // logged models the run produced (MLflow 3)
}

func newMLflowState() mlflowState {
	return mlflowState{experiments: map[string]*ml.Experiment{}, byName: map[string]string{}, runs: map[string]*mlflowRun{}, logged: map[string]*loggedModel{}}
}

func (r *mlflowRun) tag(key string) (string, bool) {
	for _, t := range r.tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

func (r *mlflowRun) setTag(key, value string) {
	for i := range r.tags {
		if r.tags[i].Key == key {
			r.tags[i].Value = value
			return
		}
	}
	r.tags = append(r.tags, ml.RunTag{Key: key, Value: value})
}

func (r *mlflowRun) param(key string) (string, bool) {
	for _, p := range r.params {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

func (r *mlflowRun) toSDK() *ml.Run {
	data := &ml.RunData{Params: append([]ml.Param(nil), r.params...), Tags: append([]ml.RunTag(nil), r.tags...)}
	for _, k := range slices.Sorted(maps.Keys(r.metrics)) {
		data.Metrics = append(data.Metrics, r.metrics[k])
	}
	info := r.info
	return &ml.Run{Info: &info, Data: data}
}

// runView is a run as runs/get and runs/search answer it: the SDK's Run
// and, in MLflow 3, its outputs (service.proto Run.outputs, RunOutputs),
// which databricks-sdk-go v0.81.0's ml.Run does not have.
type runView struct {
	*ml.Run
	Outputs *RunOutputs `json:"outputs,omitempty"`
}

func (r *mlflowRun) view() runView {
	v := runView{Run: r.toSDK()}
	if len(r.outputs) > 0 {
		v.Outputs = &RunOutputs{ModelOutputs: slices.Clone(r.outputs)}
	}
	return v
}

// getRunResponse answers runs/get with the run's outputs (ml.GetRunResponse
// otherwise).
type getRunResponse struct {
	Run runView `json:"run"`
}

func (ws *Workspace) mlflowRoutes() {
	handle(ws, "POST /api/2.0/mlflow/experiments/create", func(r *http.Request, req *ml.CreateExperiment) (any, *apiError) {
		id, aerr := ws.createExperiment(req.Name, req.ArtifactLocation, req.Tags, false)
		if aerr != nil {
			return nil, aerr
		}
		return &ml.CreateExperimentResponse{ExperimentId: id}, nil
	})
	handle(ws, "GET /api/2.0/mlflow/experiments/get", func(r *http.Request, req *ml.GetExperimentRequest) (any, *apiError) {
		e, ok := ws.mlflow.experiments[req.ExperimentId]
		if !ok {
			return nil, notFound("Node ID %s does not exist.", req.ExperimentId)
		}
		exp := *e
		return &ml.GetExperimentResponse{Experiment: &exp}, nil
	})
	handle(ws, "GET /api/2.0/mlflow/experiments/get-by-name", func(r *http.Request, req *ml.GetByNameRequest) (any, *apiError) {
		id, ok := ws.mlflow.byName[req.ExperimentName]
		if !ok {
			return nil, notFound("Could not find experiment with name '%s'", req.ExperimentName)
		}
		exp := *ws.mlflow.experiments[id]
		return &ml.GetExperimentByNameResponse{Experiment: &exp}, nil
	})
	// MLflow FileStore.delete_experiment: only an active experiment can be
	// deleted (a missing or deleted one is RESOURCE_DOES_NOT_EXIST); it
	// keeps its name and id, with lifecycle_stage "deleted", and get and
	// get-by-name still return it (FileStore.get_experiment searches active
	// and deleted experiments).
	handle(ws, "POST /api/2.0/mlflow/experiments/delete", func(r *http.Request, req *ml.DeleteExperiment) (any, *apiError) {
		if req.ExperimentId == "" {
			return nil, invalidParam("Missing required field: experiment_id")
		}
		exp, ok := ws.mlflow.experiments[req.ExperimentId]
		if !ok || exp.LifecycleStage != "active" {
			return nil, notFound("Could not find experiment with ID %s", req.ExperimentId)
		}
		exp.LifecycleStage = "deleted"
		exp.LastUpdateTime = millis(ws.clock.Now())
		return struct{}{}, nil
	})
	handle(ws, "POST /api/2.0/mlflow/runs/create", func(r *http.Request, req *ml.CreateRun) (any, *apiError) {
		run, aerr := ws.createMLflowRun(req.ExperimentId, req.RunName, req.StartTime, req.Tags, ws.clock.Now())
		if aerr != nil {
			return nil, aerr
		}
		return &ml.CreateRunResponse{Run: run.toSDK()}, nil
	})
	handle(ws, "GET /api/2.0/mlflow/runs/get", func(r *http.Request, req *ml.GetRunRequest) (any, *apiError) {
		run, aerr := ws.mlflowRunOf(req.RunId, req.RunUuid)
		if aerr != nil {
			return nil, aerr
		}
		return &getRunResponse{Run: run.view()}, nil
	})
	handle(ws, "POST /api/2.0/mlflow/runs/update", func(r *http.Request, req *ml.UpdateRun) (any, *apiError) {
		run, aerr := ws.mlflowRunOf(req.RunId, req.RunUuid)
		if aerr != nil {
			return nil, aerr
		}
		if req.Status != "" {
			run.info.Status = ml.RunInfoStatus(req.Status)
		}
		if req.EndTime != 0 {
			run.info.EndTime = req.EndTime
		}
		if req.RunName != "" {
			run.info.RunName = req.RunName
			run.setTag("mlflow.runName", req.RunName)
		}
		info := run.info
		return &ml.UpdateRunResponse{RunInfo: &info}, nil
	})
	handle(ws, "POST /api/2.0/mlflow/runs/log-batch", func(r *http.Request, req *ml.LogBatch) (any, *apiError) {
		run, aerr := ws.mlflowRun(req.RunId)
		if aerr != nil {
			return nil, aerr
		}
		if aerr := batchLimits(req); aerr != nil {
			return nil, aerr
		}
		return nil, ws.logBatch(run, req.Params, req.Metrics, req.Tags)
	})
	handle(ws, "POST /api/2.0/mlflow/runs/set-tag", func(r *http.Request, req *ml.SetTag) (any, *apiError) {
		run, aerr := ws.mlflowRunOf(req.RunId, req.RunUuid)
		if aerr != nil {
			return nil, aerr
		}
		if req.Key == "" {
			return nil, invalidParam("Missing required field: key")
		}
		run.setTag(req.Key, req.Value)
		return nil, nil
	})
	handle(ws, "POST /api/2.0/mlflow/runs/search", ws.searchRuns)
}

// createExperiment creates an experiment; mkParents creates missing parent
// folders (only simulated notebooks do that).
func (ws *Workspace) createExperiment(name, artifactLocation string, tags []ml.ExperimentTag, mkParents bool) (string, *apiError) {
	if name == "" {
		return "", invalidParam("Missing required field: name")
	}
	if !strings.HasPrefix(name, "/") {
		return "", invalidParam("Got an invalid experiment name '%s'. An experiment name must be an absolute path within the Databricks workspace, e.g. '/Users/<some-username>/my-experiment'.", name)
	}
	if _, ok := ws.mlflow.byName[name]; ok {
		return "", alreadyExists("Node named '%s' already exists", name)
	}
	parent := path.Dir(name)
	if mkParents {
		ws.notebooks.mkdirs(parent, ws.clock.Now())
	} else if !ws.notebooks.isDir(parent) {
		return "", notFound("Parent directory %s does not exist.", parent)
	}
	id := strconv.FormatInt(ws.ids.take()*1000+int64(len(ws.mlflow.experiments)), 10)
	if artifactLocation == "" {
		artifactLocation = "dbfs:/databricks/mlflow-tracking/" + id
	}
	now := millis(ws.clock.Now())
	ws.mlflow.experiments[id] = &ml.Experiment{
		ExperimentId: id, Name: name, ArtifactLocation: artifactLocation, LifecycleStage: "active",
		CreationTime: now, LastUpdateTime: now, Tags: tags,
	}
	ws.mlflow.byName[name] = id
	ws.notebooks.putObject(name, objectExperiment, nil, ws.clock.Now())
	return id, nil
}

func (ws *Workspace) createMLflowRun(experimentID, runName string, startTime int64, tags []ml.RunTag, now time.Time) (*mlflowRun, *apiError) {
	exp, ok := ws.mlflow.experiments[experimentID]
	if !ok {
		return nil, notFound("No Experiment with id=%s exists", experimentID)
	}
	id := randomHex(16)
	if startTime == 0 {
		startTime = millis(now)
	}
	if runName == "" {
		runName = "run-" + id[:6]
	}
	run := &mlflowRun{
		info: ml.RunInfo{
			RunId: id, RunUuid: id, RunName: runName, ExperimentId: experimentID, UserId: ws.UserName,
			Status: ml.RunInfoStatusRunning, StartTime: startTime, LifecycleStage: "active",
			ArtifactUri: exp.ArtifactLocation + "/" + id + "/artifacts",
		},
		metrics:  map[string]ml.Metric{},
		storeKey: "mlflow-tracking/" + experimentID + "/" + id + "/artifacts",
	}
	run.setTag("mlflow.runName", runName)
	run.setTag("mlflow.user", ws.UserName)
	for _, t := range tags {
		run.setTag(t.Key, t.Value)
	}
	ws.mlflow.runs[id] = run
	return run, nil
}

// mlflowRunOf is the run a request names by run_id or, as older clients do,
// by run_uuid.
func (ws *Workspace) mlflowRunOf(runID, runUUID string) (*mlflowRun, *apiError) {
	if runID == "" {
		runID = runUUID
	}
	return ws.mlflowRun(runID)
}

func (ws *Workspace) mlflowRun(id string) (*mlflowRun, *apiError) {
	return byID(ws.mlflow.runs, id, "run_id", "Run '%s' not found")
}

// byID is m[id]: an empty id is INVALID_PARAMETER_VALUE naming the request
// field, an unknown one RESOURCE_DOES_NOT_EXIST with notFoundFormat (one %s,
// the id).
func byID[V any](m map[string]V, id, field, notFoundFormat string) (V, *apiError) {
	var zero V
	if id == "" {
		return zero, invalidParam("Missing required field: %s", field)
	}
	v, ok := m[id]
	if !ok {
		return zero, notFound(notFoundFormat, id)
	}
	return v, nil
}

// logBatch follows MLflow: params are write-once (logging a different value
// is INVALID_PARAMETER_VALUE), metrics keep history, tags overwrite.
// batchLimits refuses a log-batch over MLflow's limits: per request up to
// 1000 metrics, 100 params, 100 tags, and 1000 of all three together
// (databricks-sdk-go v0.81.0 service/ml LogBatch doc comments). The message
// is MLflow's (mlflow/utils/validation.py _validate_batch_log_limits).
func batchLimits(req *ml.LogBatch) *apiError {
	for _, l := range []struct {
		what    string
		n, most int
	}{
		{"metrics", len(req.Metrics), 1000},
		{"params", len(req.Params), 100},
		{"tags", len(req.Tags), 100},
		{"metrics, params, and tags", len(req.Metrics) + len(req.Params) + len(req.Tags), 1000},
	} {
		if l.n > l.most {
			return invalidParam("A batch logging request can contain at most %d %s. Got %d %s. Please split up %s across multiple requests and try again.", l.most, l.what, l.n, l.what, l.what)
		}
	}
	return nil
}

func (ws *Workspace) logBatch(run *mlflowRun, params []ml.Param, metrics []ml.Metric, tags []ml.RunTag) *apiError {
	for _, p := range params {
		if old, ok := run.param(p.Key); ok {
			if old != p.Value {
				return invalidParam("Changing param values is not allowed. Param with key='%s' was already logged with value='%s' for run ID='%s'. Attempted logging new value '%s'.", p.Key, old, run.info.RunId, p.Value)
			}
			continue
		}
		run.params = append(run.params, p)
	}
	for _, m := range metrics {
		if m.Key == "" {
			return invalidParam("Missing required field: metrics.key")
		}
		m.RunId = run.info.RunId
		run.history = append(run.history, m)
		if old, ok := run.metrics[m.Key]; !ok || m.Step > old.Step || (m.Step == old.Step && m.Timestamp >= old.Timestamp) {
			run.metrics[m.Key] = m
		}
	}
	for _, t := range tags {
		run.setTag(t.Key, t.Value)
	}
	return nil
}

func (ws *Workspace) searchRuns(r *http.Request, req *ml.SearchRuns) (any, *apiError) {
	filter, err := parseRunFilter(req.Filter)
	if err != nil {
		return nil, invalidParam("Invalid filter '%s': %v", req.Filter, err)
	}
	exps := map[string]bool{}
	for _, id := range req.ExperimentIds {
		exps[id] = true
	}
	var matched []*mlflowRun
	for _, run := range ws.mlflow.runs {
		if len(exps) > 0 && !exps[run.info.ExperimentId] {
			continue
		}
		if filter.matches(run) {
			matched = append(matched, run)
		}
	}
	sort.Slice(matched, func(i, j int) bool {
		if matched[i].info.StartTime != matched[j].info.StartTime {
			return matched[i].info.StartTime > matched[j].info.StartTime
		}
		return matched[i].info.RunId < matched[j].info.RunId
	})
	start, end, next, aerr := searchPage(req.PageToken, req.MaxResults, 1000, len(matched))
	if aerr != nil {
		return nil, aerr
	}
	resp := &searchRunsResponse{NextPageToken: next}
	for _, run := range matched[start:end] {
		resp.Runs = append(resp.Runs, run.view())
	}
	return resp, nil
}

// searchRunsResponse is ml.SearchRunsResponse with each run's outputs.
type searchRunsResponse struct {
	Runs          []runView `json:"runs,omitempty"`
	NextPageToken string    `json:"next_page_token,omitempty"`
}

// searchPage is the page of n results that an MLflow search answers:
// page_token is the offset of the page's first result and maxResults (def
// when not positive) its size; next is the token of the following page, ""
// on the last one.
func searchPage(pageToken string, maxResults, def, n int) (start, end int, next string, aerr *apiError) {
	if maxResults <= 0 {
		maxResults = def
	}
	if pageToken != "" {
		v, err := strconv.Atoi(pageToken)
		if err != nil || v < 0 || v > n {
			return 0, 0, "", invalidParam("Invalid page_token %q", pageToken)
		}
		start = v
	}
	end = min(start+maxResults, n)
	if end < n {
		next = strconv.Itoa(end)
	}
	return start, end, next, nil
}

// runFilter is the subset of MLflow's search filter grammar the emulator
// understands: clauses joined by AND, each `<entity>.<key> <op> <value>`
// where entity is tags/params/metrics/attributes, keys may be backquoted,
// string values are single- or double-quoted, and op is =, != (strings) or
// =, !=, <, <=, >, >= (metrics), or IN ('a', 'b') for attributes.run_id.
type runFilter []filterClause

type filterClause struct {
	entity, key, op string
	values          []string
}

func parseRunFilter(s string) (runFilter, error) {
	toks, err := tokenizeFilter(s)
	if err != nil {
		return nil, err
	}
	var f runFilter
	for i := 0; i < len(toks); {
		if len(f) > 0 {
			if !strings.EqualFold(toks[i], "AND") {
				return nil, fmt.Errorf("expected AND, got %q", toks[i])
			}
			i++
		}
		if i+1 >= len(toks) {
			return nil, fmt.Errorf("incomplete clause")
		}
		ident := toks[i]
		entity, key, ok := strings.Cut(ident, ".")
		if !ok {
			entity, key = "attributes", ident
		}
		key = strings.Trim(key, "`\"")
		switch entity {
		case "tag", "tags":
			entity = "tags"
		case "param", "params", "parameter", "parameters":
			entity = "params"
		case "metric", "metrics":
			entity = "metrics"
		case "attribute", "attributes", "attr", "run":
			entity = "attributes"
		default:
			return nil, fmt.Errorf("unknown entity %q", entity)
		}
		op := strings.ToUpper(toks[i+1])
		c := filterClause{entity: entity, key: key, op: op}
		i += 2
		if op == "IN" {
			if i >= len(toks) || toks[i] != "(" {
				return nil, fmt.Errorf("expected ( after IN")
			}
			i++
			for i < len(toks) && toks[i] != ")" {
				if toks[i] != "," {
					c.values = append(c.values, unquote(toks[i]))
				}
				i++
			}
			i++
		} else {
			if i >= len(toks) {
				return nil, fmt.Errorf("missing value")
			}
			c.values = []string{unquote(toks[i])}
			i++
		}
		f = append(f, c)
	}
	return f, nil
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') {
		return s[1 : len(s)-1]
	}
	return s
}

func tokenizeFilter(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '(' || c == ')' || c == ',':
			toks = append(toks, string(c))
			i++
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("unterminated string")
			}
			toks = append(toks, s[i:i+j+2])
			i += j + 2
		case c == '=' || c == '!' || c == '<' || c == '>':
			j := i + 1
			if j < len(s) && s[j] == '=' {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			j := i
			inTick := false
			for j < len(s) {
				if s[j] == '`' {
					inTick = !inTick
				} else if !inTick && strings.ContainsRune(" \t\n()=,!<>'\"", rune(s[j])) {
					break
				}
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}

// filterable is what a search filter reads of an entity (a run, a logged
// model): its tags, params, latest metric values and attributes.
type filterable interface {
	tag(key string) (string, bool)
	param(key string) (string, bool)
	metric(key string) (float64, bool)
	attribute(key string) (string, bool)
}

func (f runFilter) matches(e filterable) bool {
	for _, c := range f {
		if !c.matches(e) {
			return false
		}
	}
	return true
}

func (c filterClause) matches(e filterable) bool {
	var got string
	var ok bool
	switch c.entity {
	case "tags":
		got, ok = e.tag(c.key)
	case "params":
		got, ok = e.param(c.key)
	case "metrics":
		v, found := e.metric(c.key)
		want, err := strconv.ParseFloat(c.values[0], 64)
		return found && err == nil && compareFloat(v, c.op, want)
	case "attributes":
		got, ok = e.attribute(c.key)
	}
	if !ok {
		return false
	}
	switch c.op {
	case "=":
		return got == c.values[0]
	case "!=":
		return got != c.values[0]
	case "IN":
		return slices.Contains(c.values, got)
	}
	return false
}

func (r *mlflowRun) metric(key string) (float64, bool) {
	m, ok := r.metrics[key]
	return m.Value, ok
}

func (r *mlflowRun) attribute(key string) (string, bool) {
	switch key {
	case "run_id", "run_uuid":
		return r.info.RunId, true
	case "run_name":
		return r.info.RunName, true
	case "status":
		return string(r.info.Status), true
	case "user_id":
		return r.info.UserId, true
	}
	return "", false
}

func compareFloat(a float64, op string, b float64) bool {
	switch op {
	case "=":
		return a == b
	case "!=":
		return a != b
	case "<":
		return a < b
	case "<=":
		return a <= b
	case ">":
		return a > b
	case ">=":
		return a >= b
	}
	return false
}

// listArtifacts answers GET /api/2.0/mlflow/artifacts/list: the direct
// children of path in the run's artifact root (MLflow does not recurse).
func (ws *Workspace) listArtifacts(r *http.Request, req *ml.ListArtifactsRequest) (any, *apiError) {
	run, aerr := ws.mlflowRunOf(req.RunId, req.RunUuid)
	if aerr != nil {
		return nil, aerr
	}
	files, aerr := ws.listArtifactFiles(r.Context(), run.storeKey, req.Path)
	if aerr != nil {
		return nil, aerr
	}
	return &ml.ListArtifactsResponse{RootUri: run.info.ArtifactUri, Files: files}, nil
}

// PurgeRun removes a run and its artifacts for good, as Databricks does to
// a run that is permanently deleted (Databricks REST API, Restore Run,
// POST /api/2.0/mlflow/runs/restore: "Throws RESOURCE_DOES_NOT_EXIST if the
// run was never created or was permanently deleted"): runs/get then answers
// RESOURCE_DOES_NOT_EXIST. Model versions registered from the run keep
// their own copy of its files (createModelVersion).
func (ws *Workspace) PurgeRun(runID string) error {
	var key string
	ws.do(func() {
		if run, ok := ws.mlflow.runs[runID]; ok {
			key = run.storeKey
			delete(ws.mlflow.runs, runID)
		}
	})
	if key == "" {
		return fmt.Errorf("emulator: no run %s", runID)
	}
	return ws.store.remove(context.Background(), key+"/")
}

// MLflowRun returns a copy of a tracking run as the API would answer it.
func (ws *Workspace) MLflowRun(runID string) (ml.Run, bool) {
	return lookupView(ws, ws.mlflow.runs, runID, func(r *mlflowRun) ml.Run { return *r.toSDK() })
}

// lookupView is view(m[id]) read under the workspace lock, for the Go-side
// accessors; ok is false when there is no such entry.
func lookupView[V, T any](ws *Workspace, m map[string]V, id string, view func(V) T) (out T, ok bool) {
	ws.do(func() {
		if v, found := m[id]; found {
			out, ok = view(v), true
		}
	})
	return out, ok
}

// ExperimentRuns counts the tracking runs of every experiment, by
// experiment name (e.g. for a test that checks nothing was made twice).
func (ws *Workspace) ExperimentRuns() map[string]int {
	out := map[string]int{}
	ws.do(func() {
		for id, exp := range ws.mlflow.experiments {
			n := 0
			for _, run := range ws.mlflow.runs {
				if run.info.ExperimentId == id {
					n++
				}
			}
			out[exp.Name] = n
		}
	})
	return out
}
