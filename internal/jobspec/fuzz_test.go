package jobspec

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/brickferry/brickferry/internal/testworld/fixtures"
)

// validTaskKey is what Databricks accepts as a task_key
// (https://docs.databricks.com/api/workspace/jobs/create, tasks.task_key).
var validTaskKey = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)

// FuzzParse: the job-spec reader takes any bytes without panicking, and
//
//   - a spec it accepts is in normal form: its settings written as JSON
//     (the shape jobs/create takes) read back to the same settings, with
//     nothing unknown, repeated or left in the single-task shape;
//   - it has tasks with unique keys, its job clusters and dependencies are
//     defined, and a task key it made from a job name is one Databricks
//     takes;
//   - it converts to a jobs/create request of the same JSON and to a
//     runs/submit request where each task on a job cluster has that
//     cluster as its own new_cluster;
//   - an error of a file that is not JSON says where (line and column within
//     the file) or that the file ends too early.
//
// The seeds are the reference pipeline's six job files and the shapes of
// the package comment.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"name":"x","tasks":[{"task_key":"a","notebook_task":{"notebook_path":"/x"}}]}`,
		`{"name":"x","notebook_task":{"notebook_path":"/x"}}`, `{"name":1}`, `{"a":1,"a":2}`, `[`, `null`, `{"tasks":[null]}`,
		`{"job_id":1,"settings":{"name":"s","spark_python_task":{"python_file":"dbfs:/a.py"},"max_retries":1,"format":"SINGLE_TASK"}}`,
		`{"run_name":"r","tasks":[{"task_key":"a","depends_on":[{"task_key":"b"}],"notebook_task":{"notebook_path":"/a"}},{"task_key":"b","job_cluster_key":"c","notebook_task":{"notebook_path":"/b"}}],"job_clusters":[{"job_cluster_key":"c","new_cluster":{"num_workers":0}}]}`,
		`{"name":"` + strings.Repeat("long name ", 15) + `","notebook_task":{"notebook_path":"/x"},"new_cluster":{"num_workers":2,"num_workers":3}}`,
		"{\n \"name\": \"x\",\n \"tasks\": [,]\n}",
	} {
		f.Add([]byte(s))
	}
	seeds, err := filepath.Glob(filepath.Join(fixtures.SeedJobs(f), "*.json"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no reference job files (*.json) in %s (%v)", fixtures.SeedJobs(f), err)
	}
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			checkError(t, data, err)
			return
		}
		written, err := json.Marshal(s.Settings)
		if err != nil {
			t.Fatalf("the accepted settings cannot be written as JSON: %v", err)
		}
		again, err := Parse(written)
		if err != nil {
			t.Fatalf("the accepted settings, written as JSON, are refused: %v\nfile: %s\nwritten: %s", err, data, written)
		}
		rewritten, _ := json.Marshal(again.Settings)
		if !bytes.Equal(written, rewritten) {
			t.Fatalf("parse → write → parse changed the settings:\nfile:   %s\nfirst:  %s\nsecond: %s", data, written, rewritten)
		}
		if len(again.Unknown)+len(again.Duplicates) > 0 || again.SingleTask {
			t.Fatalf("the written settings are not in normal form: unknown %v, repeated %v, single-task %v\nwritten: %s", again.Unknown, again.Duplicates, again.SingleTask, written)
		}

		checkSettings(t, s)

		create, err := s.CreateJob()
		if err != nil {
			t.Fatalf("an accepted spec does not convert to jobs/create: %v", err)
		}
		if b, _ := json.Marshal(create); !bytes.Equal(b, written) {
			t.Fatalf("the jobs/create request differs from the settings:\nsettings: %s\ncreate:   %s", written, b)
		}
		run, _, err := s.SubmitRun()
		if err != nil {
			t.Fatalf("an accepted spec does not convert to runs/submit: %v", err)
		}
		if run.RunName != s.Settings.Name || len(run.Tasks) != len(s.Settings.Tasks) {
			t.Fatalf("runs/submit: run_name %q (want %q), %d tasks (want %d)", run.RunName, s.Settings.Name, len(run.Tasks), len(s.Settings.Tasks))
		}
		for i, task := range s.Settings.Tasks {
			if task.JobClusterKey != "" && run.Tasks[i].NewCluster == nil {
				t.Fatalf("runs/submit task %q lost its cluster: a one-time run has no job clusters, so job cluster %q must become its new_cluster", task.TaskKey, task.JobClusterKey)
			}
		}
	})
}

// checkSettings checks what every accepted spec holds.
func checkSettings(t *testing.T, s *Spec) {
	t.Helper()
	st := s.Settings
	if len(st.Tasks) == 0 {
		t.Fatal("accepted a job without tasks")
	}
	clusters := map[string]bool{}
	for _, c := range st.JobClusters {
		clusters[c.JobClusterKey] = true
	}
	keys := map[string]bool{}
	for _, task := range st.Tasks {
		if task.TaskKey == "" || keys[task.TaskKey] {
			t.Fatalf("accepted an empty or repeated task_key %q", task.TaskKey)
		}
		keys[task.TaskKey] = true
		if s.SingleTask && !validTaskKey.MatchString(task.TaskKey) {
			t.Fatalf("the task key %q made from the job name %q is not one Databricks takes (%s)", task.TaskKey, st.Name, validTaskKey)
		}
		if task.JobClusterKey != "" && !clusters[task.JobClusterKey] {
			t.Fatalf("accepted task %q on the undefined job cluster %q", task.TaskKey, task.JobClusterKey)
		}
	}
	for _, task := range st.Tasks {
		for _, d := range task.DependsOn {
			if !keys[d.TaskKey] {
				t.Fatalf("accepted task %q depending on the undefined task %q", task.TaskKey, d.TaskKey)
			}
		}
	}
}

var place = regexp.MustCompile(`^not valid JSON at line (\d+), column (\d+): `)

// checkError checks what an error says: a JSON syntax error names a line
// of the file.
func checkError(t *testing.T, data []byte, err error) {
	t.Helper()
	msg := err.Error()
	if msg == "" {
		t.Fatal("an error without a message")
	}
	if m := place.FindStringSubmatch(msg); m != nil {
		lines := bytes.Count(data, []byte("\n")) + 1
		if line, serr := strconv.Atoi(m[1]); serr != nil || line < 1 || line > lines {
			t.Fatalf("%q names line %s of a file of %d lines", msg, m[1], lines)
		}
		return
	}
	if json.Valid(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))) {
		return // valid JSON refused for what it says: the message is the parser's own
	}
	if len(bytes.TrimSpace(data)) > 0 && msg != "the JSON ends too early (a missing '}' or ']'?)" {
		t.Fatalf("a file that is not JSON got %q, which says neither where nor that it ends too early", msg)
	}
}
