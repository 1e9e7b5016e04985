// Package agenttest runs a Brickferry task the way the Azure Pipelines agent
// does, in-process or as the built executable, and reads its output back with
// the agent's rules. Every task's tests use it.
//
//	res := agenttest.Run{
//		Task:    "DatabricksTrain",
//		Inputs:  map[string]string{"notebookPath": "/Repos/x/train"},
//		Secrets: map[string]string{"databricks-token": token},
//	}.Exec(t, agenttest.Executable(t))
//	require.Equal(t, agent.Succeeded, res.Result)
//	assert.Equal(t, "42", res.Outputs["runId"])
//
// A run fails its test when any secret in play (secret variables, service
// connection parameters, the job token, values the task registered with
// task.setsecret) appears anywhere in stdout or stderr, apart from the
// task.setsecret and issecret setvariable commands that hand them to the
// agent.
package agenttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/cli"
	"github.com/brickferry/brickferry/tasks"
)

// raceReport begins what the race detector writes to stderr when an
// executable built with -race finds a data race.
const raceReport = "WARNING: DATA RACE"

// Run is one task run as the agent would start it.
type Run struct {
	Task       string
	Definition *agent.Definition // the task's task.json; the embedded one when nil
	Inputs     map[string]string // by input name; undeclared inputs take their task.json defaults
	Variables  map[string]string // public pipeline variables by pipeline name, e.g. "databricks-host"
	Secrets    map[string]string // secret pipeline variables by pipeline name
	Endpoints  []agent.Endpoint  // service connections referenced by connectedService inputs
	Env        map[string]string // raw environment entries added last (e.g. AGENT_PROXYURL)
	JobToken   string            // the job's access token (SystemVssConnection); generated when empty
	Debug      bool              // System.Debug
	HostType   string            // System.HostType; "build" when empty
}

// Result is what the run wrote, read back with the agent's rules.
type Result struct {
	Stdout, Stderr string
	ExitCode       int
	Commands       []agent.Command
	Outputs        map[string]string // every task.setvariable, by variable name
	SecretOutputs  map[string]bool   // variables set with issecret=true
	Registered     []string          // values registered with task.setsecret
	Errors         []string          // task.issue type=error messages
	Warnings       []string          // task.issue type=warning messages
	Summaries      map[string]string // uploaded summary file → content
	Progress       []int             // task.setprogress values
	Completions    int               // number of task.complete commands (must be 1)
	Result         agent.Result
	Message        string // task.complete message
	TempDir        string // Agent.TempDirectory of the run
}

// WithToken connects the run's task to the workspace at host with the token
// method (connectionMethod token, workspaceUrl, token), the token coming
// from the secret variable databricks-token as a pipeline maps it
// (token: $(databricks-token)). Inputs the run already sets are kept. Tests
// of a task's own behaviour use it; the variable group method reads its
// group through the Azure DevOps API in a pipeline run (package auth), which
// needs the Azure DevOps stand-in.
func (r Run) WithToken(host, token string) Run {
	in := map[string]string{"connectionMethod": "token", "workspaceUrl": host, "token": token}
	for k, v := range r.Inputs {
		in[k] = v
	}
	secrets := map[string]string{"databricks-token": token}
	for k, v := range r.Secrets {
		secrets[k] = v
	}
	r.Inputs, r.Secrets = in, secrets
	return r
}

// Environ returns the environment the agent would give the task, its
// agent folders in a temporary folder of the test.
func (r Run) Environ(t testing.TB) []string {
	t.Helper()
	env, err := r.EnvironIn(t.TempDir())
	if err != nil {
		t.Fatalf("agenttest: %v", err)
	}
	return env
}

// EnvironIn is Environ for a program that is not a test (the benchmarks):
// the agent's folders (temp, tools, sources) are made in tmp.
func (r Run) EnvironIn(tmp string) ([]string, error) {
	def, err := r.definition()
	if err != nil {
		return nil, err
	}
	env := map[string]string{
		"TF_BUILD":                                 "True",
		"AGENT_TEMPDIRECTORY":                      filepath.Join(tmp, "agent-temp"),
		"AGENT_TOOLSDIRECTORY":                     filepath.Join(tmp, "agent-tools"),
		"AGENT_OS":                                 agentOS(),
		"AGENT_OSARCHITECTURE":                     "X64",
		"BUILD_SOURCESDIRECTORY":                   filepath.Join(tmp, "s"),
		"SYSTEM_DEFAULTWORKINGDIRECTORY":           filepath.Join(tmp, "s"),
		"SYSTEM_TEAMFOUNDATIONCOLLECTIONURI":       "https://dev.azure.com/contoso/",
		"SYSTEM_TEAMPROJECT":                       "mlops",
		"SYSTEM_TEAMPROJECTID":                     "6c1a5f3e-3d4b-4a5e-9b8e-0a1b2c3d4e5f",
		"SYSTEM_HOSTTYPE":                          "build",
		"SYSTEM_PLANID":                            "2f0e3c43-5ad6-4f1f-9d6c-1d1f1e2f3a4b",
		"SYSTEM_JOBID":                             "5d1a3f2c-8f0e-5b5c-9f0a-6f1b2c3d4e5f",
		"SYSTEM_JOBATTEMPT":                        "1",
		"SYSTEM_STEPNAME":                          strings.ToLower(r.Task),
		"BUILD_BUILDID":                            "1234",
		"BUILD_BUILDNUMBER":                        "20261125.1",
		"BUILD_DEFINITIONNAME":                     "churn-mlops",
		"SYSTEM_DEFINITIONID":                      "12",
		"BUILD_SOURCEVERSION":                      "6e4f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f",
		"BUILD_SOURCEBRANCH":                       "refs/heads/main",
		"BUILD_REPOSITORY_URI":                     "https://dev.azure.com/contoso/mlops/_git/churn",
		"ENDPOINT_URL_SYSTEMVSSCONNECTION":         "https://dev.azure.com/contoso/",
		"ENDPOINT_AUTH_SCHEME_SYSTEMVSSCONNECTION": "OAuth",
		"HOME":        tmp,
		"USERPROFILE": tmp,
		"PATH":        os.Getenv("PATH"),
	}
	for _, dir := range []string{env["AGENT_TEMPDIRECTORY"], env["AGENT_TOOLSDIRECTORY"], env["BUILD_SOURCESDIRECTORY"]} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	if r.HostType != "" {
		env["SYSTEM_HOSTTYPE"] = r.HostType
	}
	if r.Debug {
		env["SYSTEM_DEBUG"] = "true"
	}
	jobToken := r.JobToken
	if jobToken == "" {
		jobToken = "job-token-" + strings.ToLower(r.Task) + "-5f0c1d"
	}
	env["ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN"] = jobToken
	// Every declared input arrives, defaults filled; filePath inputs left
	// empty arrive as the sources directory (Handler.cs).
	for _, in := range def.Inputs {
		v, given := r.Inputs[in.Name]
		if !given {
			v = in.DefaultValue
		}
		if in.Type == "filePath" && strings.TrimSpace(v) == "" {
			v = env["BUILD_SOURCESDIRECTORY"]
		}
		env["INPUT_"+agent.VariableKey(in.Name)] = strings.TrimSpace(v)
	}
	for name := range r.Inputs {
		if _, ok := def.Input(name); !ok {
			return nil, fmt.Errorf("task %s declares no input %q", r.Task, name)
		}
	}
	for k, v := range r.Variables {
		env[agent.VariableKey(k)] = v
	}
	for k, v := range r.Secrets {
		env["SECRET_"+agent.VariableKey(k)] = v
	}
	for _, ep := range r.Endpoints {
		for k, v := range ep.Environ() {
			env[k] = v
		}
	}
	for k, v := range r.Env {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out, nil
}

func agentOS() string {
	switch runtime.GOOS {
	case "windows":
		return "Windows_NT"
	case "darwin":
		return "Darwin"
	default:
		return "Linux"
	}
}

func (r Run) definition() (agent.Definition, error) {
	if r.Definition != nil {
		return *r.Definition, nil
	}
	return tasks.Definition(r.Task)
}

// secretsInPlay is every value that must not be printed.
func (r Run) secretsInPlay(environ []string) []string {
	return agent.NewEnv(environ).Secrets()
}

// InProcess runs the task through cli.Main in this process, as the agent
// would run the executable. It is fast and sees races (go test -race).
func (r Run) InProcess(t testing.TB, registry cli.Registry) *Result {
	t.Helper()
	return r.InProcessContext(context.Background(), t, registry)
}

// InProcessContext is InProcess with a context standing for the signals the
// agent would send.
func (r Run) InProcessContext(ctx context.Context, t testing.TB, registry cli.Registry) *Result {
	t.Helper()
	environ := r.Environ(t)
	var stdout, stderr bytes.Buffer
	code := cli.Main(ctx, cli.Process{Args: []string{r.Task}, Environ: environ, Stdout: &stdout, Stderr: &stderr}, registry)
	return r.parse(t, environ, stdout.String(), stderr.String(), code)
}

// Process is a task run of the built executable, started with Start.
type Process struct {
	Cmd            *exec.Cmd
	run            Run
	environ        []string
	stdout, stderr SyncBuffer
}

// Start starts exe with the agent's environment. args are the command line
// after the program name: the task name when none are given.
func (r Run) Start(t testing.TB, exe string, args ...string) *Process {
	t.Helper()
	if len(args) == 0 {
		args = []string{r.Task}
	}
	p := &Process{run: r, environ: r.Environ(t)}
	p.Cmd = exec.Command(exe, args...)
	p.Cmd.Env = p.environ
	p.Cmd.Stdout, p.Cmd.Stderr = &p.stdout, &p.stderr
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("agenttest: starting %s: %v", exe, err)
	}
	return p
}

// Stdout is what the process has written to stdout so far.
func (p *Process) Stdout() string { return p.stdout.String() }

// Finish waits for the process and reads its output back.
func (p *Process) Finish(t testing.TB) *Result {
	t.Helper()
	err := p.Cmd.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("agenttest: running %s: %v", p.Cmd.Path, err)
	}
	return p.run.parse(t, p.environ, p.stdout.String(), p.stderr.String(), code)
}

// Exec runs the task with the built executable and waits for it.
func (r Run) Exec(t testing.TB, exe string) *Result {
	t.Helper()
	return r.Start(t, exe).Finish(t)
}

// SyncBuffer is a bytes.Buffer that may be written and read at the same
// time (a process's output while the test waits for a line).
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// parse reads the output with the agent's rules and checks for leaked secrets.
func (r Run) parse(t testing.TB, environ []string, stdout, stderr string, code int) *Result {
	t.Helper()
	if i := strings.Index(stderr, raceReport); i >= 0 {
		// The executable was built with -race (make test-go): a race is a
		// failure whether or not the test looks at the exit code (66).
		t.Errorf("agenttest: %s reported a data race:\n%s", r.Task, stderr[i:min(len(stderr), i+8000)])
	}
	env := agent.NewEnv(environ)
	res := &Result{
		Stdout: stdout, Stderr: stderr, ExitCode: code,
		Outputs: map[string]string{}, SecretOutputs: map[string]bool{}, Summaries: map[string]string{},
		TempDir: env["AGENT_TEMPDIRECTORY"],
	}
	var visible []string // lines a person would see in the log
	for _, stream := range []string{stdout, stderr} {
		for _, line := range splitLines(stream) {
			cmd, ok := agent.ParseCommand(line)
			if !ok {
				visible = append(visible, line)
				continue
			}
			res.Commands = append(res.Commands, cmd)
			switch cmd.Area + "." + cmd.Event {
			case "task.setsecret":
				res.Registered = append(res.Registered, cmd.Message)
				continue
			case "task.setvariable":
				// The agent consumes the command and shows nothing of it;
				// it passes the value on as set (masking is for display
				// only) and masks it wherever a later step prints it.
				res.Outputs[cmd.Properties["variable"]] = cmd.Message
				if cmd.Properties["issecret"] == "true" {
					res.SecretOutputs[cmd.Properties["variable"]] = true
				}
				continue
			case "task.issue", "task.logissue":
				if cmd.Properties["type"] == "error" {
					res.Errors = append(res.Errors, cmd.Message)
				} else {
					res.Warnings = append(res.Warnings, cmd.Message)
				}
			case "task.setprogress":
				res.Progress = append(res.Progress, atoi(cmd.Properties["value"]))
			case "task.uploadsummary":
				data, err := os.ReadFile(cmd.Message)
				if err != nil {
					t.Errorf("agenttest: summary %s: %v", cmd.Message, err)
				}
				res.Summaries[cmd.Message] = string(data)
				// No masker reads an uploaded summary: it must hold no secret.
				visible = append(visible, splitLines(string(data))...)
			case "task.complete":
				res.Completions++
				res.Result = agent.Result(cmd.Properties["result"])
				res.Message = cmd.Message
			}
			visible = append(visible, line)
		}
	}
	secrets := append(r.secretsInPlay(environ), res.Registered...)
	for _, s := range secrets {
		if len(s) < 3 {
			continue
		}
		for _, line := range visible {
			if strings.Contains(line, s) {
				t.Errorf("agenttest: a secret (%d characters, starting %q) appears in the output: %q", len(s), s[:2], strings.ReplaceAll(line, s, "<SECRET>"))
			}
		}
		for path, content := range res.Summaries {
			if strings.Contains(content, s) {
				t.Errorf("agenttest: a secret appears in summary %s", path)
			}
		}
	}
	return res
}

func splitLines(s string) []string {
	// The agent reads with ReadLine: "\n", "\r\n" and a bare "\r" end a line.
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

var (
	buildOnce sync.Once
	builtExe  string
	buildErr  error
)

// Executable returns the brickferry executable to run: $BRICKFERRY_EXE when set
// (the Makefile points it at dist/bin), otherwise one built once per test
// binary with `go build ./cmd/brickferry`.
func Executable(t testing.TB) string {
	t.Helper()
	if exe := os.Getenv("BRICKFERRY_EXE"); exe != "" {
		return exe
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "brickferry-exe-")
		if err != nil {
			buildErr = err
			return
		}
		builtExe = filepath.Join(dir, "brickferry")
		if runtime.GOOS == "windows" {
			builtExe += ".exe"
		}
		cmd := exec.Command("go", "build", "-o", builtExe, "github.com/brickferry/brickferry/cmd/brickferry")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("agenttest: building brickferry: %v", buildErr)
	}
	return builtExe
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }
