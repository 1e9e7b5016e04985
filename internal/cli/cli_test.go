package cli_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/cli"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// sampleTask does what a representative task does: reads its inputs, derives
// a secret, reports progress, logs, sets outputs, warns and uploads a summary.
func sampleTask(ctx context.Context, env agent.Env, log *agent.Log) error {
	token, _, _ := env.Variable("databricks-token")
	derived := "derived-" + token
	log.SetSecret(derived)
	log.Section("Submitting the run")
	log.Info("host %s, token %s, derived %s", "https://adb-1.azuredatabricks.net", token, derived)
	log.Info("remote log: ##vso[task.complete result=Succeeded]")
	log.Progress(50, "running")
	log.Group("Run details")
	log.Debug("debug lines only when System.Debug is true")
	log.EndGroup()
	log.SetOutput("runId", "42")
	log.SetOutput("runUrl", "https://adb-1.azuredatabricks.net/#job/1/run/42")
	log.SetVariable("accessToken", derived, agent.VariableOptions{Secret: true})
	log.Warning("the notebook output was truncated; 100%% of 5 MB; semi;colons]")
	if _, err := log.UploadSummary("Databricks run", "# Run 42\n\nresult: SUCCESS\n"); err != nil {
		return err
	}
	log.AddBuildTag("trained")
	return nil
}

func failingTask(context.Context, agent.Env, *agent.Log) error {
	return errors.Join(
		&agent.InputError{Name: "notebookPath", Label: "Notebook path", Problem: "is required"},
		fmt.Errorf("submitting the run: %w", errors.New("PERMISSION_DENIED: token=abc ##vso[task.setvariable variable=x]y")),
	)
}

// sampleDefinition is a task.json for the tasks of these tests, so they do not
// depend on the inputs of the real tasks.
func sampleDefinition(t testing.TB, name string) agent.Definition {
	t.Helper()
	def, err := agent.ParseDefinition([]byte(`{"name": "` + name + `", "inputs": [
		{"name": "notebookPath", "type": "string", "label": "Notebook path"},
		{"name": "wait", "type": "boolean", "label": "Wait", "defaultValue": "true"},
		{"name": "timeoutMinutes", "type": "int", "label": "Timeout (minutes)", "defaultValue": "60"}],
		"outputVariables": [{"name": "runId"}, {"name": "runUrl"}]}`))
	require.NoError(t, err)
	return def
}

// registry makes a registry of test tasks, each with sampleDefinition.
func registry(t testing.TB, tasks map[string]agent.TaskFunc) cli.Registry {
	r := cli.Registry{}
	for name, run := range tasks {
		r[name] = cli.Task{Definition: sampleDefinition(t, name), Run: run}
	}
	return r
}

// testRun is an agenttest.Run of a test task.
func testRun(t testing.TB, task string) agenttest.Run {
	def := sampleDefinition(t, task)
	return agenttest.Run{Task: task, Definition: &def}
}

func TestGoldenStream(t *testing.T) {
	const token = "dapi-0123456789abcdef"
	run := testRun(t, "Sample")
	run.Secrets = map[string]string{"databricks-token": token}
	res := run.InProcess(t, registry(t, map[string]agent.TaskFunc{"Sample": sampleTask}))
	require.Equal(t, agent.SucceededWithIssues, res.Result)
	require.Equal(t, 1, res.Completions)
	assert.Equal(t, 0, res.ExitCode)
	assert.Equal(t, "42", res.Outputs["runId"])
	assert.True(t, res.SecretOutputs["accessToken"])
	assert.Equal(t, []string{"derived-" + token}, res.Registered)
	require.Len(t, res.Summaries, 1)
	got := strings.ReplaceAll(res.Stdout, res.TempDir, "$AGENT_TEMPDIRECTORY")
	golden(t, "sample.golden", got)
}

func TestFailureBecomesIssuesAndFailed(t *testing.T) {
	res := testRun(t, "Failing").InProcess(t, registry(t, map[string]agent.TaskFunc{"Failing": failingTask}))
	assert.Equal(t, agent.Failed, res.Result)
	assert.Equal(t, 0, res.ExitCode, "under the agent the executable exits 0")
	assert.Equal(t, []string{
		"input 'Notebook path' (notebookPath): is required",
		"submitting the run: PERMISSION_DENIED: token=abc **vso[task.setvariable variable=x]y",
	}, res.Errors)
	assert.Equal(t, "2 problems, see the errors above", res.Message)
	for _, c := range res.Commands {
		assert.NotEqual(t, "x", c.Properties["variable"], "remote text must not set a variable")
	}
}

func TestPanicIsAFailedTask(t *testing.T) {
	res := testRun(t, "Panicking").InProcess(t, registry(t, map[string]agent.TaskFunc{"Panicking": func(context.Context, agent.Env, *agent.Log) error {
		panic("boom")
	}}))
	assert.Equal(t, agent.Failed, res.Result)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "internal error: boom")
}

func TestSecretsNeverPrinted(t *testing.T) {
	const (
		secretVar = "dapi-secret-variable-0001"
		epSecret  = "client-secret-from-endpoint"
		jobToken  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.job"
	)
	leaky := func(ctx context.Context, env agent.Env, log *agent.Log) error {
		ep, err := env.Endpoint("3b3c")
		if err != nil {
			return err
		}
		v, _, _ := env.Variable("databricks-token")
		log.Info("variable %s endpoint %s job %s", v, ep.Param("serviceprincipalkey"), env.JobToken())
		log.Error("error with %s", v)
		log.SetOutput("runUrl", "https://x/?token="+v)
		return fmt.Errorf("failed with %s and %s", ep.Param("serviceprincipalkey"), env.JobToken())
	}
	run := testRun(t, "Leaky")
	run.Secrets = map[string]string{"databricks-token": secretVar}
	run.JobToken = jobToken
	run.Endpoints = []agent.Endpoint{{ID: "3b3c", URL: "https://management.azure.com/", Scheme: "ServicePrincipal",
		Parameters: map[string]string{"serviceprincipalid": "c1", "serviceprincipalkey": epSecret, "tenantid": "t1"}}}
	// The harness fails the test when a secret appears; check it also by hand.
	res := run.InProcess(t, registry(t, map[string]agent.TaskFunc{"Leaky": leaky}))
	assert.Equal(t, agent.Failed, res.Result)
	// An output variable's value is passed to the agent as set: masking is
	// for display only, and the agent masks the value wherever it is shown.
	assert.Equal(t, "https://x/?token="+secretVar, res.Outputs["runUrl"])
	shown := strings.ReplaceAll(res.Stdout+res.Stderr, "##vso[task.setvariable isOutput=true;variable=runUrl;]https://x/?token="+secretVar+"\n", "")
	for _, s := range []string{secretVar, epSecret, jobToken} {
		assert.NotContains(t, shown, s)
	}
	assert.Contains(t, res.Stdout, "variable *** endpoint *** job ***")

	// Local mode masks what it prints as well.
	var out bytes.Buffer
	code := cli.Main(context.Background(), cli.Process{
		Args:    []string{"Leaky", "--secret", "databricks-token=" + secretVar},
		Environ: []string{"ENDPOINT_URL_3b3c=https://m/", "ENDPOINT_AUTH_PARAMETER_3b3c_SERVICEPRINCIPALKEY=" + epSecret, "SYSTEM_ACCESSTOKEN=" + jobToken},
		Stdout:  &out, Stderr: &out,
	}, registry(t, map[string]agent.TaskFunc{"Leaky": leaky}))
	assert.Equal(t, 1, code)
	for _, s := range []string{secretVar, epSecret, jobToken} {
		assert.NotContains(t, out.String(), s)
	}
}

func TestLocalMode(t *testing.T) {
	dir := t.TempDir()
	inputsFile := filepath.Join(dir, "inputs.yml")
	require.NoError(t, os.WriteFile(inputsFile, []byte("notebookPath: /Repos/x/train\nwait: false\ntimeoutMinutes: 30\n"), 0o644))
	var got agent.Env
	capture := func(ctx context.Context, env agent.Env, log *agent.Log) error {
		got = env
		log.SetOutput("runId", "7")
		log.Warning("careful")
		return nil
	}
	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), cli.Process{
		Args:    []string{"databrickstrain", "--inputs-file", inputsFile, "--input", "timeoutMinutes=45", "--var", "Build.BuildId=9", "--secret", "databricks-token=s3cret-value"},
		Environ: []string{"INPUT_STRAY=leaked", "AGENT_TEMPDIRECTORY=" + dir},
		Stdout:  &stdout, Stderr: &stderr,
	}, registry(t, map[string]agent.TaskFunc{"DatabricksTrain": capture}))
	require.Equal(t, 0, code, stderr.String())
	assert.Equal(t, "/Repos/x/train", got["INPUT_NOTEBOOKPATH"])
	assert.Equal(t, "false", got["INPUT_WAIT"])
	assert.Equal(t, "45", got["INPUT_TIMEOUTMINUTES"], "--input wins over the file")
	assert.Equal(t, "9", got["BUILD_BUILDID"])
	assert.Equal(t, "s3cret-value", got["SECRET_DATABRICKS-TOKEN"])
	assert.NotContains(t, got, "INPUT_STRAY")
	assert.Equal(t, "output runId = 7\nwarning: careful\nresult: SucceededWithIssues (finished with 1 warning(s))\n", stdout.String())

	stdout.Reset()
	code = cli.Main(context.Background(), cli.Process{Args: []string{"DatabricksTrain", "--raw"}, Environ: []string{"AGENT_TEMPDIRECTORY=" + dir}, Stdout: &stdout, Stderr: &stderr},
		registry(t, map[string]agent.TaskFunc{"DatabricksTrain": failingTask}))
	assert.Equal(t, 1, code, "outside the agent a failure is a non-zero exit")
	assert.Contains(t, stdout.String(), "##vso[task.complete result=Failed;]")

	for _, args := range [][]string{{"DatabricksTrain", "--input", "nope=1"}, {"DatabricksTrain", "--input", "novalue"}, {"DatabricksTrain", "stray"}, {"DatabricksTrain", "--bogus"}} {
		stderr.Reset()
		assert.Equal(t, 2, cli.Main(context.Background(), cli.Process{Args: args, Stdout: &stdout, Stderr: &stderr}, registry(t, map[string]agent.TaskFunc{"DatabricksTrain": capture})), args)
		assert.NotEmpty(t, stderr.String())
	}
	assert.Contains(t, stderr.String(), "flags: --input name=value")
}

func TestTasks(t *testing.T) {
	r := cli.Tasks()
	assert.Equal(t, []string{"BatchScore", "DatabricksTrain", "MLflowPromote", "ModelServe"}, r.Names())
	for name, task := range r {
		assert.Equal(t, name, task.Definition.Name)
		assert.NotEmpty(t, task.Definition.ID)
	}
}

func TestCommands(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 0, cli.Main(context.Background(), cli.Process{Args: []string{"version"}, Stdout: &stdout, Stderr: &stderr}, cli.Tasks()))
	assert.Regexp(t, `^brickferry \S+\n$`, stdout.String())
	assert.Equal(t, 2, cli.Main(context.Background(), cli.Process{Args: []string{"Deploy"}, Stdout: &stdout, Stderr: &stderr}, cli.Tasks()))
	assert.Equal(t, "brickferry: unknown task or command \"Deploy\"; the tasks are: BatchScore, DatabricksTrain, MLflowPromote, ModelServe (and: version, help)\n", stderr.String())
	assert.Equal(t, 2, cli.Main(context.Background(), cli.Process{Stdout: &stdout, Stderr: &stderr}, cli.Tasks()))
}

// TestSignalCancels runs this test binary as a task process (see
// TestHelperProcess), sends SIGINT as the agent does when the pipeline is
// cancelled, and expects task.complete result=Canceled within 2 s and exit 0.
func TestSignalCancels(t *testing.T) {
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			run := testRun(t, "Blocking")
			run.Env = map[string]string{"BRICKFERRY_HELPER_PROCESS": "1"}
			p := run.Start(t, os.Args[0], "-test.run=^TestHelperProcess$", "--", "Blocking")
			waitFor(t, func() bool { return strings.Contains(p.Stdout(), "waiting for cancellation") })
			sent := time.Now()
			require.NoError(t, p.Cmd.Process.Signal(sig))
			res := p.Finish(t)
			assert.Less(t, time.Since(sent), 2*time.Second)
			assert.Equal(t, agent.Canceled, res.Result)
			assert.Equal(t, 0, res.ExitCode)
			assert.Equal(t, 1, res.Completions)
		})
	}
}

func TestHelperProcess(t *testing.T) {
	if os.Getenv("BRICKFERRY_HELPER_PROCESS") != "1" {
		t.Skip("runs only as the child process of TestSignalCancels")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	blocking := func(ctx context.Context, env agent.Env, log *agent.Log) error {
		log.Info("waiting for cancellation")
		<-ctx.Done()
		return ctx.Err()
	}
	ctx, stop := signalContext()
	defer stop()
	os.Exit(cli.Main(ctx, cli.Process{Args: args, Environ: os.Environ(), Stdout: os.Stdout, Stderr: os.Stderr}, registry(t, map[string]agent.TaskFunc{"Blocking": blocking})))
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	assert.Equal(t, string(want), got)
}
