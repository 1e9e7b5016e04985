package train_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/compute"
	"github.com/brickferry/brickferry/tasks"
)

type badInput struct {
	name   string
	inputs map[string]string
	env    map[string]string
	input  string // the input the error names
	want   string // and a part of what it says
}

// badInputs is the bad-input table: each case gives one error naming the input.
func badInputs(t *testing.T) []badInput {
	dir := t.TempDir()
	badJSON := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(badJSON, []byte("{\n  \"name\": \"x\",\n  \"tasks\": [,]\n}"), 0o644))
	noTasks := filepath.Join(dir, "empty.json")
	require.NoError(t, os.WriteFile(noTasks, []byte(`{"name": "x"}`), 0o644))

	ok := map[string]string{"notebookPath": nb, "workers": "1"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range ok {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	return []badInput{
		{"missing notebook path", with("notebookPath", ""), nil, "notebookPath", "required"},
		{"notebook path not a workspace path", with("notebookPath", "notebooks/train"), nil, "notebookPath", "must start with /"},
		{"repository path given absolute", with("codeSource", "buildRepository"), nil, "notebookPath", "relative to the repository root"},
		{"run type not in the list", with("runType", "script"), nil, "runType", `"script" is not one of`},
		{"compute not in the list", with("compute", "gpu"), nil, "compute", `"gpu" is not one of`},
		{"code source not in the list", with("codeSource", "s3"), nil, "codeSource", "is not one of"},
		{"unparsable job file", map[string]string{"runType": "jobFile", "jobFile": badJSON}, nil, "jobFile", "line 3"},
		{"job file without tasks", map[string]string{"runType": "jobFile", "jobFile": noTasks}, nil, "jobFile", "no tasks"},
		{"job file missing", map[string]string{"runType": "jobFile", "jobFile": filepath.Join(dir, "nope.json")}, nil, "jobFile", "cannot read"},
		{"no job file", map[string]string{"runType": "jobFile"}, nil, "jobFile", "required"},
		{"workers and autoscale", with("autoscale", "2-8"), nil, "autoscale", "cannot be combined with Workers"},
		{"workers not a number", with("workers", "two"), nil, "workers", `"two"`},
		{"autoscale upside down", with("workers", "", "autoscale", "8-2"), nil, "autoscale", "range of workers"},
		{"no cluster size", with("workers", ""), nil, "workers", "required"},
		{"single node with workers", with("workers", "3", "singleNode", "true"), nil, "singleNode", "no workers"},
		{"no node type nor pool", with("nodeType", ""), nil, "nodeType", "required"},
		{"existing cluster without id", with("compute", "existingCluster"), nil, "clusterId", "required"},
		{"timeout zero", with("timeoutMinutes", "0"), nil, "timeoutMinutes", `"0" is not a number of minutes`},
		{"timeout text", with("timeoutMinutes", "ten"), nil, "timeoutMinutes", `"ten"`},
		{"timeout empty", with("timeoutMinutes", ""), nil, "timeoutMinutes", "required"},
		{"parameter without =", with("parameters", "alpha=1\nbeta"), nil, "parameters", `line 2 "beta" is not name=value`},
		{"parameter repeated", with("parameters", "a=1\na=2"), nil, "parameters", "repeats"},
		{"spark conf without =", with("sparkConf", "spark.x"), nil, "sparkConf", "not name=value"},
		{"bad maven coordinates", with("libraries", "maven:com.a:b"), nil, "libraries", "group:artifact:version"},
		{"libraries on a serverless notebook", with("compute", "serverless", "libraries", "xgboost"), nil, "libraries", "%pip"},
		{"jar on serverless", map[string]string{"runType": "pythonFile", "pythonFile": "/Workspace/a.py", "compute": "serverless", "libraries": "jar:/a.jar"}, nil, "libraries", "only PyPI"},
		{"missing wheel entry point", map[string]string{"runType": "pythonWheel", "wheelPackage": "p", "workers": "1"}, nil, "wheelEntryPoint", "required"},
		{"missing job", map[string]string{"runType": "existingJob"}, nil, "job", "required"},
		{"job id zero", map[string]string{"runType": "existingJob", "job": "0"}, nil, "job", "not a job id"},
		{"boolean not a boolean", with("waitForCompletion", "maybe"), nil, "waitForCompletion", "not a boolean"},
		{"git folder path relative", with("codeSource", "gitFolder", "gitFolderPath", "Repos/x"), nil, "gitFolderPath", "not a workspace path"},
		{"git folder on a pull request", with("codeSource", "gitFolder", "gitFolderPath", "/Repos/x"), map[string]string{"BUILD_SOURCEBRANCH": "refs/pull/7/merge"}, "codeSource", "refs/pull/7/merge"},
		{"repository unknown", with("codeSource", "buildRepository", "notebookPath", "nb/train"), map[string]string{"BUILD_REPOSITORY_URI": ""}, "codeSource", "not known"},
	}
}

// Every bad input is reported, naming the input, before any request reaches
// the workspace: through the built executable, as the agent runs it, with a
// workspace it could connect to.
func TestBadInputs(t *testing.T) {
	w := newWorld(t)
	t.Run("table", func(t *testing.T) {
		for _, tc := range badInputs(t) {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				res := w.agentRun(tc.inputs, tc.env).Exec(t, w.exe)
				assert.Equal(t, 0, res.ExitCode)
				assert.Equal(t, 1, res.Completions)
				assert.Equal(t, agent.Failed, res.Result)
				require.Len(t, res.Errors, 1, res.Stdout)
				assert.Contains(t, res.Errors[0], "("+tc.input+")")
				assert.Contains(t, res.Errors[0], tc.want)
			})
		}
	})
	assert.Empty(t, w.ws.Requests(), "no request before the inputs are valid")
}

// Several bad inputs are all reported at once (in this process, so that go
// test -race sees the option reading).
func TestAllBadInputsAtOnce(t *testing.T) {
	w := newSimWorld(t)
	res := w.run(map[string]string{"notebookPath": "", "workers": "x", "timeoutMinutes": "-1", "parameters": "nope"})
	assert.Equal(t, agent.Failed, res.Result)
	assert.Len(t, res.Errors, 4)
	assert.Empty(t, w.ws.Requests())
}

// accessors are the agent.Inputs methods that read an input by name.
var accessors = []string{"String", "Bool", "Int", "Minutes", "Choice", "FilePath", "KeyValues", "Lines", "JSON", "Connection"}

// The task.json inputs are the ones the Go code reads, and the reverse.
func TestTaskJSONInputsMatchTheCode(t *testing.T) {
	def, err := tasks.Definition("DatabricksTrain")
	require.NoError(t, err)
	read := map[string]bool{}
	failed := map[string]bool{}
	fset := token.NewFileSet()
	for _, file := range parseNonTest(t, fset, ".") {
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			recv, ok := sel.X.(*ast.Ident)
			if !ok || recv.Name != "in" {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				if slices.Contains(accessors, sel.Sel.Name) {
					t.Errorf("%s: in.%s must name its input with a string literal", fset.Position(call.Pos()), sel.Sel.Name)
				}
				return true
			}
			name, _ := strconv.Unquote(lit.Value)
			switch {
			case slices.Contains(accessors, sel.Sel.Name):
				read[name] = true
			case sel.Sel.Name == "Fail":
				failed[name] = true
			}
			return true
		})
	}
	authNames := stringLiterals(t, filepath.Join("..", "auth"))
	declared := map[string]bool{}
	for _, in := range def.Inputs {
		if authNames[in.Name] && !read[in.Name] {
			continue // a workspace connection input, read by internal/auth
		}
		if slices.Contains(compute.InputNames, in.Name) {
			continue // read by compute.FromInputs (its test checks the declarations)
		}
		declared[in.Name] = true
		assert.True(t, read[in.Name], "task.json declares input %q, which the Go code never reads", in.Name)
	}
	for name := range read {
		assert.True(t, declared[name], "the Go code reads input %q, which task.json does not declare", name)
	}
	for name := range failed {
		assert.True(t, declared[name], "the Go code reports a problem with input %q, which task.json does not declare", name)
	}
	for _, o := range []string{"runId", "runUrl", "resultState", "notebookOutput", "mlflowRunId", "mlflowExperimentId", "modelUri"} {
		assert.True(t, def.IsOutput(o), "output %s", o)
	}
}

// stringLiterals collects the string literals of a package's non-test files
// (the input names the shared credentials resolver reads).
func stringLiterals(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, file := range parseNonTest(t, token.NewFileSet(), dir) {
		ast.Inspect(file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					out[s] = true
				}
			}
			return true
		})
	}
	return out
}

// parseNonTest parses the non-test Go files of the package in dir.
func parseNonTest(t *testing.T, fset *token.FileSet, dir string) []*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		files = append(files, file)
	}
	return files
}
