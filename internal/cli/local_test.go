package cli_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/cli"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/tasks"
)

// capturing is a registry of the real task definitions whose tasks only
// record the environment they were given.
func capturing(t *testing.T, got *agent.Env) cli.Registry {
	t.Helper()
	r := cli.Registry{}
	for name, task := range cli.Tasks() {
		r[name] = cli.Task{Definition: task.Definition, Example: task.Example, Run: func(_ context.Context, env agent.Env, _ *agent.Log) error {
			*got = env
			return nil
		}}
	}
	return r
}

// isolated is an environment without Databricks settings: an empty home
// folder, so no ~/.databrickscfg of the machine is read.
func isolated(t *testing.T, extra ...string) []string {
	t.Helper()
	return append([]string{"HOME=" + t.TempDir(), "USERPROFILE=" + t.TempDir()}, extra...)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestInputsFileForms(t *testing.T) {
	const want = "register|churn|runs:/abc/model|0.005"
	for _, c := range []struct{ name, file string }{
		{"a step", "- task: MLflowPromote@1\n  name: register\n  inputs:\n    command: register\n    modelName: churn\n    modelUri: runs:/abc/model\n    minImprovement: 0.005\n"},
		{"steps with other tasks and scripts", "steps:\n"}, // replaced below
		{"a step as a mapping, qualified task name", "task: brickferry.brickferry.MLflowPromote@1\ninputs:\n  command: register\n  modelName: churn\n  modelUri: runs:/abc/model\n  minImprovement: 0.005\n"},
		{"an inputs block", "inputs:\n  command: register\n  modelName: churn\n  modelUri: runs:/abc/model\n  minImprovement: '0.005'\n"},
		{"a mapping of inputs", "command: register\nmodelName: churn\nmodelUri: runs:/abc/model\nminImprovement: 0.005\n"},
		{"JSON", `{"command": "register", "modelName": "churn", "modelUri": "runs:/abc/model", "minImprovement": 0.005}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := c.file
			if c.name == "steps with other tasks and scripts" {
				file = "- script: echo hi\n- task: DatabricksTrain@1\n  inputs:\n    notebookPath: /x\n- task: MLflowPromote@1\n  inputs:\n    command: register\n    modelName: churn\n    modelUri: runs:/abc/model\n    minImprovement: 0.005\n"
			}
			var got agent.Env
			code, _, stderr := run(t, capturing(t, &got), cli.Process{
				Args:    []string{"MLflowPromote", "--inputs-file", writeFile(t, "step.yml", file), "--var", "databricks-host=https://adb-1.2.azuredatabricks.net"},
				Environ: isolated(t),
			})
			require.Equal(t, 0, code, stderr)
			assert.Equal(t, want, strings.Join([]string{got["INPUT_COMMAND"], got["INPUT_MODELNAME"], got["INPUT_MODELURI"], got["INPUT_MINIMPROVEMENT"]}, "|"))
		})
	}
}

func TestInputsFileMistakes(t *testing.T) {
	for _, c := range []struct{ name, file, want string }{
		{"another task", "- task: ModelServe@1\n  inputs:\n    endpointName: x\n", "has no step of task MLflowPromote@1 (its steps: ModelServe@1)"},
		{"another major version", "- task: MLflowPromote@2\n  inputs:\n    command: register\n", "the step runs MLflowPromote@2; this executable runs MLflowPromote@1"},
		{"two steps of the task", "- task: MLflowPromote@1\n  name: register\n  inputs: {command: register}\n- task: MLflowPromote@1\n  inputs: {command: gate}\n", "has 2 steps of task MLflowPromote@1 (register (line 1), line 4): keep only the one to run"},
		{"a list as a value", "inputs:\n  modelName: [a, b]\n", `input "modelName" must be a string, number or boolean`},
		{"a misspelled input", "inputs:\n  modelNmae: churn\n", `task MLflowPromote has no input "modelNmae"; did you mean modelName?`},
		{"not YAML", "inputs: [\n", "is not YAML"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got agent.Env
			code, _, stderr := run(t, capturing(t, &got), cli.Process{
				Args:    []string{"MLflowPromote", "--inputs-file", writeFile(t, "step.yml", c.file)},
				Environ: isolated(t),
			})
			assert.Equal(t, 2, code)
			assert.Contains(t, stderr, c.want)
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %s", stderr)
		})
	}
}

// TestTaskExamplesRunLocally feeds every task's example step (the one its
// help prints) to local mode: every input name exists.
func TestTaskExamplesRunLocally(t *testing.T) {
	for name, task := range cli.Tasks() {
		var got agent.Env
		code, _, stderr := run(t, capturing(t, &got), cli.Process{
			Args:    []string{name, "--inputs-file", writeFile(t, "step.yml", task.Example), "--var", "databricks-host=https://adb-1.2.azuredatabricks.net"},
			Environ: isolated(t),
		})
		require.Equal(t, 0, code, "%s: %s", name, stderr)
		assert.NotEmpty(t, got, name)
	}
}

func TestVarMacros(t *testing.T) {
	var got agent.Env
	code, _, stderr := run(t, capturing(t, &got), cli.Process{
		Args: []string{"MLflowPromote", "--inputs-file", writeFile(t, "step.yml", tasks.Example("MLflowPromote", 1)),
			"--var", "Train.ModelUri=runs:/abc/model", "--var", "databricks-host=https://adb-1.2.azuredatabricks.net",
			"--input", "description=build $(build.buildNumber) by $(who) for $(dollar)", "--var", "Build.BuildNumber=20261203.4",
			"--secret", "who=s3cret-person", "--var", "dollar=$(who)"},
		Environ: isolated(t),
	})
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "runs:/abc/model", got["INPUT_MODELURI"], "the example's $(train.modelUri), matched as the agent matches names")
	assert.Equal(t, "build 20261203.4 by s3cret-person for $(who)", got["INPUT_DESCRIPTION"], "secrets are expanded too; a value is not expanded again")

	code, _, stderr = run(t, capturing(t, &got), cli.Process{
		Args:    []string{"MLflowPromote", "--input", "modelUri=$(train.modelUri)", "--var", "databricks-host=https://adb-1.2.azuredatabricks.net"},
		Environ: isolated(t),
	})
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "$(train.modelUri)", got["INPUT_MODELURI"], "an undefined variable's macro stays, as under the agent, for the task to report")
}

func TestSecretWithoutValue(t *testing.T) {
	var got agent.Env
	args := []string{"MLflowPromote", "--var", "databricks-host=https://adb-1.2.azuredatabricks.net", "--secret", "databricks-token"}

	code, _, stderr := run(t, capturing(t, &got), cli.Process{Args: args, Environ: isolated(t, "DATABRICKS_TOKEN=dapi-from-env")})
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "dapi-from-env", got["SECRET_DATABRICKS-TOKEN"], "read from the environment, '-' as '_'")

	var prompts []string
	ask := func(prompt string) (string, error) {
		prompts = append(prompts, prompt)
		return "dapi-typed\n", nil
	}
	code, out, stderr := run(t, capturing(t, &got), cli.Process{Args: args, Environ: isolated(t), ReadSecret: ask})
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "dapi-typed", got["SECRET_DATABRICKS-TOKEN"])
	assert.Equal(t, []string{"databricks-token (secret, not shown): "}, prompts)
	assert.NotContains(t, out+stderr, "dapi-typed")

	code, _, stderr = run(t, capturing(t, &got), cli.Process{Args: args, Environ: isolated(t)})
	assert.Equal(t, 2, code)
	assert.Equal(t, "brickferry MLflowPromote: --secret databricks-token: no value: set the environment variable DATABRICKS_TOKEN, write --secret databricks-token=<value>, or run in a terminal to be asked for it\n", stderr)

	failing := func(string) (string, error) { return "", errors.New("not a terminal") }
	code, _, stderr = run(t, capturing(t, &got), cli.Process{Args: args, Environ: isolated(t), ReadSecret: failing})
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--secret databricks-token: reading it from the terminal: not a terminal")
}

func TestUnifiedAuth(t *testing.T) {
	cfg := writeFile(t, "databrickscfg", `[DEFAULT]
host = https://adb-1.1.azuredatabricks.net
token = dapi-default

[dev]
host = https://adb-2.2.azuredatabricks.net
token = dapi-dev

[prod-oauth]
host = https://adb-3.3.azuredatabricks.net
client_id = prod-sp
client_secret = prod-sp-secret

[cli]
host = https://adb-4.4.azuredatabricks.net
auth_type = databricks-cli
`)
	home := filepath.Dir(cfg)
	require.NoError(t, os.Rename(cfg, filepath.Join(home, ".databrickscfg")))
	endpoint := func(env agent.Env, group string) agent.Endpoint {
		method, conn := "INPUT_CONNECTIONMETHOD", "INPUT_DATABRICKSCONNECTION"
		if group == "target" {
			method, conn = "INPUT_TARGETCONNECTIONMETHOD", "INPUT_TARGETDATABRICKSCONNECTION"
		}
		require.Equal(t, "databricks", env[method])
		ep, err := env.Endpoint(env[conn])
		require.NoError(t, err)
		return ep
	}
	var got agent.Env
	promote := func(environ []string, args ...string) (int, string, string) {
		return run(t, capturing(t, &got), cli.Process{Args: append([]string{"MLflowPromote", "--input", "command=copy"}, args...), Environ: environ})
	}

	t.Run("environment variables", func(t *testing.T) {
		code, out, stderr := promote([]string{"HOME=" + home, "DATABRICKS_HOST=https://adb-9.9.azuredatabricks.net", "DATABRICKS_TOKEN=dapi-env"})
		require.Equal(t, 0, code, stderr)
		ep := endpoint(got, "")
		assert.Equal(t, "https://adb-9.9.azuredatabricks.net", ep.URL)
		assert.Equal(t, "dapi-env", ep.Param("apitoken"))
		assert.Contains(t, out, "Local mode: the workspace https://adb-9.9.azuredatabricks.net comes from environment variable DATABRICKS_HOST, its personal access token from environment variable DATABRICKS_TOKEN")
		assert.NotContains(t, out, "dapi-env")
		assert.Empty(t, got["INPUT_TARGETCONNECTIONMETHOD"], "the environment never names the copy target")
	})
	t.Run("DEFAULT profile of ~/.databrickscfg", func(t *testing.T) {
		code, out, stderr := promote([]string{"HOME=" + home})
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, "https://adb-1.1.azuredatabricks.net", endpoint(got, "").URL)
		assert.Contains(t, out, "come from profile DEFAULT of "+filepath.Join(home, ".databrickscfg"))
	})
	t.Run("DATABRICKS_CONFIG_PROFILE, and a target profile with an OAuth client", func(t *testing.T) {
		code, out, stderr := promote([]string{"HOME=" + home, "DATABRICKS_CONFIG_PROFILE=dev"}, "--target-profile", "prod-oauth")
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, "dapi-dev", endpoint(got, "").Param("apitoken"))
		target := endpoint(got, "target")
		assert.Equal(t, "https://adb-3.3.azuredatabricks.net", target.URL)
		assert.Equal(t, "UsernamePassword", target.Scheme, "as the connection type's OAuth scheme")
		assert.Equal(t, "prod-sp", target.Param("username"))
		assert.Equal(t, "prod-sp-secret", target.Param("password"))
		assert.Contains(t, out, "Local mode: the target workspace https://adb-3.3.azuredatabricks.net and its OAuth client id and secret come from profile prod-oauth")
	})
	t.Run("a host without a token, asked for on the terminal", func(t *testing.T) {
		var prompts []string
		ask := func(prompt string) (string, error) { prompts = append(prompts, prompt); return "dapi-typed\n", nil }
		code, out, stderr := run(t, capturing(t, &got), cli.Process{
			Args:    []string{"MLflowPromote", "--input", "command=copy"},
			Environ: []string{"HOME=" + home, "DATABRICKS_HOST=https://adb-9.9.azuredatabricks.net"}, ReadSecret: ask,
		})
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, []string{"Personal access token for https://adb-9.9.azuredatabricks.net (not shown): "}, prompts)
		assert.Equal(t, "dapi-typed", endpoint(got, "").Param("apitoken"))
		assert.Contains(t, out, "comes from environment variable DATABRICKS_HOST, its personal access token from the terminal")
		assert.NotContains(t, out, "dapi-typed")
	})
	t.Run("--profile wins over DATABRICKS_CONFIG_PROFILE", func(t *testing.T) {
		code, _, stderr := promote([]string{"HOME=" + home, "DATABRICKS_CONFIG_PROFILE=dev"}, "--profile", "DEFAULT")
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, "dapi-default", endpoint(got, "").Param("apitoken"))
	})
	t.Run("the inputs or variables say how to connect", func(t *testing.T) {
		for _, args := range [][]string{
			{"--input", "connectionMethod=token", "--input", "workspaceUrl=https://adb-5.5.azuredatabricks.net"},
			{"--var", "databricks-host=https://adb-5.5.azuredatabricks.net"},
			{"--input", "variableSuffix=dev", "--secret", "databricks-token-dev=dapi-x"},
		} {
			code, _, stderr := promote([]string{"HOME=" + home, "DATABRICKS_HOST=https://adb-9.9.azuredatabricks.net", "DATABRICKS_TOKEN=dapi-env"}, args...)
			require.Equal(t, 0, code, stderr)
			assert.NotEqual(t, "databricks", got["INPUT_CONNECTIONMETHOD"], args)
		}
	})
	for _, c := range []struct {
		name    string
		environ []string
		args    []string
		want    string
	}{
		{"a host without a token", []string{"HOME=" + home, "DATABRICKS_HOST=https://adb-9.9.azuredatabricks.net"}, nil,
			"brickferry MLflowPromote: missing token: the workspace https://adb-9.9.azuredatabricks.net (from environment variable DATABRICKS_HOST) has no token: set DATABRICKS_TOKEN (token in a profile), or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET for an OAuth client, or run in a terminal to be asked for the token\n"},
		{"a profile for the Databricks CLI's own login", []string{"HOME=" + home}, []string{"--profile", "cli"},
			"brickferry MLflowPromote: the workspace https://adb-4.4.azuredatabricks.net (from profile cli of " + filepath.Join(home, ".databrickscfg") + ") is set up for databricks-cli authentication, which brickferry does not take from these settings: give a personal access token (DATABRICKS_TOKEN, or token in the profile) or an OAuth client (DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET)\n"},
		{"an unknown profile", []string{"HOME=" + home}, []string{"--profile", "staging"},
			"brickferry MLflowPromote: the Databricks settings: resolve: " + filepath.Join(home, ".databrickscfg") + " has no staging profile configured. Config: profile=staging, config_file=" + filepath.Join(home, ".databrickscfg") + "\n"},
		{"--profile and connectionMethod", []string{"HOME=" + home}, []string{"--profile", "dev", "--input", "connectionMethod=token"},
			"brickferry MLflowPromote: --profile and the input connectionMethod both say how to connect to the workspace: keep one\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := promote(c.environ, c.args...)
			assert.Equal(t, 2, code)
			assert.Equal(t, c.want, stderr)
		})
	}
}

// TestUnifiedAuthIgnoredUnderTheAgent runs the real executable as the agent
// does, with DATABRICKS_HOST, DATABRICKS_TOKEN and a ~/.databrickscfg that
// all name a reachable workspace, and the pipeline's variables naming
// another: the task must talk to the pipeline's workspace only.
func TestUnifiedAuthIgnoredUnderTheAgent(t *testing.T) {
	ambient, caFile := emulator.StartHTTPS(t, emulator.Options{Name: "ambient"})
	pipeline, _ := emulator.StartHTTPS(t, emulator.Options{Name: "pipeline"})
	home := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(home, ".databrickscfg"), []byte("[DEFAULT]\nhost = "+ambient.URL()+"\ntoken = "+ambient.Token+"\n"), 0o600))
	env := map[string]string{
		"AGENT_CAINFO": caFile, "HOME": home,
		"DATABRICKS_HOST": ambient.URL(), "DATABRICKS_TOKEN": ambient.Token, "DATABRICKS_CONFIG_PROFILE": "DEFAULT",
	}
	inputs := map[string]string{"command": "register", "modelName": "churn", "modelUri": "runs:/0123456789abcdef0123456789abcdef/model"}
	exe := agenttest.Executable(t)

	res := agenttest.Run{Task: "MLflowPromote", Inputs: inputs, Env: env}.WithToken(pipeline.URL(), pipeline.Token).Exec(t, exe)
	assert.NotEmpty(t, pipeline.Requests(), "the pipeline's workspace was not called: %v", res.Errors)

	// Without the variables, where local mode would take the settings, the
	// task reads the group from Azure DevOps (here a server that has none).
	devops := httptest.NewServer(http.NotFoundHandler())
	defer devops.Close()
	env["SYSTEM_TEAMFOUNDATIONCOLLECTIONURI"] = devops.URL + "/contoso/"
	res = agenttest.Run{Task: "MLflowPromote", Inputs: inputs, Env: env}.Exec(t, exe)
	assert.Equal(t, agent.Failed, res.Result)

	assert.Empty(t, ambient.Requests(), "the workspace of the Databricks settings was called")
	assert.NotContains(t, res.Stdout, ambient.URL())
}

func TestLocalTempFolderRemoved(t *testing.T) {
	var dir string
	var during error
	r := cli.Registry{"Sample": {Definition: sampleDefinition(t, "Sample"), Run: func(_ context.Context, env agent.Env, log *agent.Log) error {
		dir = env.System().TempDir
		_, during = os.Stat(dir)
		_, err := log.UploadSummary("Run", "# Run 42\n\nresult: SUCCESS\n")
		return err
	}}}
	code, out, stderr := run(t, r, cli.Process{Args: []string{"Sample", "--input", "wait=false"}, Environ: isolated(t)})
	require.Equal(t, 0, code, stderr)
	require.NotEmpty(t, dir)
	require.NoError(t, during, "the folder exists while the task runs")
	_, err := os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "local mode removes its temporary folder at exit: %v", err)
	assert.Equal(t, "== Summary: Run\n# Run 42\n\nresult: SUCCESS\nresult: Succeeded\n", out, "the summary is shown, since its file is gone")

	kept := t.TempDir()
	code, _, stderr = run(t, r, cli.Process{Args: []string{"Sample", "--raw"}, Environ: isolated(t, "AGENT_TEMPDIRECTORY="+kept)})
	require.Equal(t, 0, code, stderr)
	_, err = os.Stat(kept)
	assert.NoError(t, err, "a folder the user named is left alone")
}

func TestOneLinePerProblem(t *testing.T) {
	single := func(context.Context, agent.Env, *agent.Log) error {
		return &agent.InputError{Name: "notebookPath", Label: "Notebook path", Problem: "is required"}
	}
	r := cli.Registry{"Sample": {Definition: sampleDefinition(t, "Sample"), Run: single}}
	code, out, _ := run(t, r, cli.Process{Args: []string{"Sample", "--input", "wait=true"}, Environ: isolated(t)})
	assert.Equal(t, 1, code)
	assert.Equal(t, "error: input 'Notebook path' (notebookPath): is required\nresult: Failed\n", out)

	r = cli.Registry{"Sample": {Definition: sampleDefinition(t, "Sample"), Run: failingTask}}
	code, out, _ = run(t, r, cli.Process{Args: []string{"Sample", "--input", "wait=true"}, Environ: isolated(t)})
	assert.Equal(t, 1, code)
	assert.Equal(t, 2, strings.Count(out, "error: "), out)
	assert.True(t, strings.HasSuffix(out, "\nresult: Failed\n"), out)
}

// TestMissingTokenIsAMissingToken runs the real task in local mode with the
// workspace URL given and the token forgotten.
func TestMissingTokenIsAMissingToken(t *testing.T) {
	args := []string{"MLflowPromote", "--input", "command=register", "--input", "modelName=churn", "--input", "modelUri=runs:/0123456789abcdef0123456789abcdef/model"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--var", "databricks-host=https://adb-1.2.azuredatabricks.net"},
			`missing token: the pipeline has no variable databricks-token, and outside a pipeline run the variable group "databricks" cannot be read: pass it with --secret databricks-token (its value is read from the environment variable DATABRICKS_TOKEN, or asked for)`},
		{[]string{"--input", "variableSuffix=prod", "--secret", "databricks-token-prod=dapi-x"},
			`missing workspace URL: the pipeline has no variable databricks-host-prod, and outside a pipeline run the variable group "databricks" cannot be read: pass it with --var databricks-host-prod=<workspace URL>`},
	} {
		code, out, stderr := run(t, cli.Tasks(), cli.Process{Args: append(append([]string{}, args...), c.args...), Environ: isolated(t)})
		assert.Equal(t, 1, code, stderr)
		assert.Equal(t, 1, strings.Count(out, "error: "), out)
		assert.Contains(t, out, c.want+"\nresult: Failed\n")
	}
}
