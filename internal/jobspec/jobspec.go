// Package jobspec reads Databricks job specification files, the JSON a user
// would post to jobs/create, and turns them into databricks-sdk-go request
// types: jobs.SubmitRun for a one-time run, jobs.CreateJob for a job.
//
// Files found in the wild come in several shapes, all accepted:
//
//   - Jobs API 2.1+ settings: {"name", "tasks": [...], "job_clusters": [...], ...};
//   - the Jobs API 2.0 single-task shape, with new_cluster / existing_cluster_id,
//     notebook_task (or another task type), libraries, max_retries... at the
//     top level and "format": "SINGLE_TASK" (the reference pipeline's files,
//     copied to internal/testworld/fixtures/seed-jobs); it becomes one task in "tasks";
//   - the same wrapped as jobs/get prints it ({"job_id", "settings": {...}}) or
//     as jobs/reset takes it ({"job_id", "new_settings": {...}});
//   - a runs/submit payload ("run_name" instead of "name").
//
// Keys repeated in one object are allowed and the last one wins, as in
// most JSON readers (the reference files repeat azure_attributes and
// num_workers); they are reported in Spec.Duplicates. Fields that the
// SDK's types do not know are reported in Spec.Unknown rather than refused,
// since the Jobs API grows faster than any client.
package jobspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/databricks/databricks-sdk-go/service/jobs"
)

// Spec is a parsed job specification.
type Spec struct {
	// Settings are the job's settings in the Jobs API 2.2 shape.
	Settings jobs.JobSettings
	// SingleTask is true when the file used the old single-task shape.
	SingleTask bool
	// Duplicates lists the keys that appeared more than once in one object,
	// as JSON paths (e.g. "new_cluster.num_workers"); the last value won.
	Duplicates []string
	// Unknown lists the fields that the SDK's types do not declare; they
	// are not sent.
	Unknown []string
}

// taskFields are the task-level fields of the Jobs API 2.0 single-task shape
// (https://docs.databricks.com/api/workspace/jobs/create, 2.0 reference).
var taskFields = []string{
	"new_cluster", "existing_cluster_id", "notebook_task", "spark_jar_task", "spark_python_task",
	"spark_submit_task", "python_wheel_task", "pipeline_task", "sql_task", "dbt_task", "run_job_task",
	"libraries", "max_retries", "min_retry_interval_millis", "retry_on_timeout", "environment_key",
}

// Parse reads a job specification. Errors name the file's problem precisely
// (line and column for bad JSON).
func Parse(data []byte) (*Spec, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("the file is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	spec := &Spec{}
	root, err := readValue(dec, "", &spec.Duplicates)
	if err != nil {
		return nil, jsonError(data, dec, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, jsonError(data, dec, errors.New("unexpected data after the JSON object"))
	}
	obj, ok := root.(map[string]any)
	if !ok {
		return nil, errors.New("the file must hold a JSON object (the job's settings)")
	}
	for _, wrapper := range []string{"settings", "new_settings"} {
		if inner, ok := obj[wrapper].(map[string]any); ok && obj["tasks"] == nil {
			obj = inner
			break
		}
	}
	if name, ok := obj["run_name"]; ok && obj["name"] == nil {
		obj["name"] = name
		delete(obj, "run_name")
	}
	if err := spec.normalizeSingleTask(obj); err != nil {
		return nil, err
	}
	spec.Unknown = unknownFields(reflect.TypeOf(jobs.JobSettings{}), obj, "")
	for _, u := range spec.Unknown {
		deletePath(obj, u)
	}
	canonical, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(canonical, &spec.Settings); err != nil {
		return nil, fmt.Errorf("the settings do not match the Jobs API: %w", err)
	}
	if err := validate(&spec.Settings); err != nil {
		return nil, err
	}
	return spec, nil
}

// normalizeSingleTask moves the task-level fields of the 2.0 shape into one
// task, keyed by the job's name.
func (s *Spec) normalizeSingleTask(obj map[string]any) error {
	var found []string
	for _, f := range taskFields {
		if _, ok := obj[f]; ok {
			found = append(found, f)
		}
	}
	if len(found) == 0 {
		delete(obj, "format")
		return nil
	}
	if _, ok := obj["tasks"]; ok {
		return fmt.Errorf("the file has both \"tasks\" and task fields at the top level (%s): use one shape", strings.Join(found, ", "))
	}
	task := map[string]any{"task_key": taskKey(obj["name"])}
	for _, f := range found {
		task[f] = obj[f]
		delete(obj, f)
	}
	obj["tasks"] = []any{task}
	delete(obj, "format") // SINGLE_TASK no longer describes the result
	s.SingleTask = true
	return nil
}

var notKeyChar = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// taskKey derives a task key (letters, digits, '_' and '-', at most 100
// characters) from a job name.
func taskKey(name any) string {
	s, _ := name.(string)
	s = strings.Trim(notKeyChar.ReplaceAllString(s, "_"), "_")
	if s == "" {
		return "main"
	}
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

func validate(s *jobs.JobSettings) error {
	if len(s.Tasks) == 0 {
		return errors.New("the job has no tasks")
	}
	keys := map[string]bool{}
	clusters := map[string]bool{}
	for _, c := range s.JobClusters {
		clusters[c.JobClusterKey] = true
	}
	for i, t := range s.Tasks {
		if t.TaskKey == "" {
			return fmt.Errorf("task %d has no task_key", i+1)
		}
		if keys[t.TaskKey] {
			return fmt.Errorf("task_key %q is used by two tasks", t.TaskKey)
		}
		keys[t.TaskKey] = true
		if t.JobClusterKey != "" && !clusters[t.JobClusterKey] {
			return fmt.Errorf("task %q uses job_cluster_key %q, which job_clusters does not define", t.TaskKey, t.JobClusterKey)
		}
		if t.NotebookTask != nil && t.NotebookTask.NotebookPath == "" {
			return fmt.Errorf("task %q: notebook_task has no notebook_path", t.TaskKey)
		}
	}
	for _, t := range s.Tasks {
		for _, d := range t.DependsOn {
			if !keys[d.TaskKey] {
				return fmt.Errorf("task %q depends on %q, which is not a task of the job", t.TaskKey, d.TaskKey)
			}
		}
	}
	return nil
}

// readValue decodes one JSON value into map[string]any / []any / scalars,
// keeping the last of repeated keys and recording their paths.
func readValue(dec *json.Decoder, path string, dups *[]string) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string)
				child := key
				if path != "" {
					child = path + "." + key
				}
				v, err := readValue(dec, child, dups)
				if err != nil {
					return nil, err
				}
				if _, seen := obj[key]; seen && !slices.Contains(*dups, child) {
					*dups = append(*dups, child)
				}
				obj[key] = v
			}
			_, err := dec.Token() // '}'
			return obj, err
		case '[':
			arr := []any{}
			for i := 0; dec.More(); i++ {
				v, err := readValue(dec, path+"["+strconv.Itoa(i)+"]", dups)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token() // ']'
			return arr, err
		}
		return nil, fmt.Errorf("unexpected %q", t)
	default:
		return t, nil
	}
}

// jsonError places a syntax error in the file.
func jsonError(data []byte, dec *json.Decoder, err error) error {
	off := dec.InputOffset()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	// Go up to 1.26 reports a cut-off document as io.ErrUnexpectedEOF; later
	// releases as a SyntaxError at the end of the input.
	atEnd := se != nil && int(se.Offset) >= len(bytes.TrimRight(data, " \t\r\n"))
	if atEnd || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("the JSON ends too early (a missing '}' or ']'?)")
	}
	line := 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(data[:min(int(off), len(data))], '\n')
	return fmt.Errorf("not valid JSON at line %d, column %d: %w", line, col, err)
}

// unknownFields lists the keys of v that type t (an SDK struct) does not
// declare, recursively, as dotted paths.
func unknownFields(t reflect.Type, v any, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		fields := jsonFields(t)
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			ft, ok := fields[k]
			if !ok {
				out = append(out, join(k))
				continue
			}
			out = append(out, unknownFields(ft, obj[k], join(k))...)
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, e := range arr {
			out = append(out, unknownFields(t.Elem(), e, path+"["+strconv.Itoa(i)+"]")...)
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for k, e := range obj {
			out = append(out, unknownFields(t.Elem(), e, join(k))...)
		}
		sort.Strings(out)
	}
	return out
}

func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// deletePath removes a field found by unknownFields.
func deletePath(obj map[string]any, path string) {
	var cur any = obj
	parts := splitPath(path)
	for i, p := range parts {
		last := i == len(parts)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				delete(c, p)
				return
			}
			cur = c[p]
		case []any:
			n, err := strconv.Atoi(p)
			if err != nil || n >= len(c) || last {
				return
			}
			cur = c[n]
		default:
			return
		}
	}
}

// splitPath splits "tasks[0].new_cluster.x" into tasks, 0, new_cluster, x.
func splitPath(path string) []string {
	path = strings.ReplaceAll(strings.ReplaceAll(path, "[", "."), "]", "")
	return strings.Split(path, ".")
}

// CreateJob is the jobs/create request for the spec.
func (s *Spec) CreateJob() (jobs.CreateJob, error) {
	var out jobs.CreateJob
	err := convert(s.Settings, &out)
	return out, err
}

// SubmitRun is the runs/submit request for a one-time run of the spec.
// A one-time run has no job clusters: each task gets its job cluster's
// spec as new_cluster. Fields that only make sense for a saved job
// (schedule, triggers, max_concurrent_runs, job parameters, tags, task
// retries, ...) are not sent; Dropped lists those that were set.
func (s *Spec) SubmitRun() (run jobs.SubmitRun, dropped []string, err error) {
	var m map[string]any
	if err := convert(s.Settings, &m); err != nil {
		return run, nil, err
	}
	clusters := map[string]any{}
	for _, c := range s.Settings.JobClusters {
		var spec any
		if err := convert(c.NewCluster, &spec); err != nil {
			return run, nil, err
		}
		clusters[c.JobClusterKey] = spec
	}
	tasks, _ := m["tasks"].([]any)
	for _, t := range tasks {
		task, _ := t.(map[string]any)
		if key, ok := task["job_cluster_key"].(string); ok {
			task["new_cluster"] = clusters[key]
			delete(task, "job_cluster_key")
		}
	}
	delete(m, "job_clusters")
	if name, ok := m["name"]; ok {
		m["run_name"] = name
		delete(m, "name")
	}
	dropped = unknownFields(reflect.TypeOf(jobs.SubmitRun{}), m, "")
	for _, d := range dropped {
		deletePath(m, d)
	}
	err = convert(m, &run)
	return run, dropped, err
}

// convert copies between types with the same JSON shape, through the SDK's
// own (un)marshalling so that ForceSendFields survive (num_workers: 0).
func convert(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}
