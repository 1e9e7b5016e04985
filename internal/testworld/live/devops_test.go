package live_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/azurestandin"
	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/demo"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/live"
)

// TestLiveDevOps is `make live-devops`: the project the environment names
// holds what the sample pipelines read, and the sample pipeline, created or
// updated there and run, does each step as the sample does. Without
// BRICKFERRY_LIVE=1 it does nothing; TestLiveDevOpsOnStandIn and
// TestLiveDevOpsPipelineOnStandIn run the same code in make test.
func TestLiveDevOps(t *testing.T) {
	root, err := azurite.RepoRoot()
	require.NoError(t, err)
	d := fromEnv(t, func(getenv func(string) string) (live.DevOps, error) { return live.DevOpsFromEnv(getenv, root) })
	live.PrintDevOpsPlan(os.Stdout, d)
	checkLiveDevOps(t, d, os.Stdout)
}

// checkLiveDevOps is what make live-devops checks of d: the project's
// variable groups, then the sample pipeline's run, step by step.
func checkLiveDevOps(t *testing.T, d live.DevOps, out io.Writer) *live.PipelineReport {
	t.Helper()
	problems, err := live.CheckProject(context.Background(), d)
	require.NoError(t, err)
	assert.Empty(t, problems)
	rep, err := live.RunSamplePipeline(context.Background(), d, out)
	require.NoError(t, err)
	assert.Empty(t, rep.Problems, "the sample pipeline's run")
	return rep
}

// standInDevOps starts the Azure DevOps stand-in with opts and returns
// DevOps pointed at it.
func standInDevOps(t *testing.T, opts azurestandin.Options) live.DevOps {
	t.Helper()
	az := azurestandin.Start(t, opts)
	tr := &http.Transport{DialContext: az.DialContext, TLSClientConfig: &tls.Config{RootCAs: az.CA.Pool(), MinVersion: tls.VersionTLS12}}
	return live.DevOps{CollectionURL: az.CollectionURI, Project: az.Project, Token: az.JobToken, HTTP: &http.Client{Transport: tr}}
}

// TestLiveDevOpsOnStandIn: the project the demo's stand-ins hold (the
// sample's groups) passes; one whose `databricks` group lacks the dev host
// and holds the token in clear, and whose `databricks-prod` is a plain
// group, fails with each of those named.
func TestLiveDevOpsOnStandIn(t *testing.T) {
	ca, err := emulator.NewCA()
	require.NoError(t, err)
	dev := demo.Credentials{Host: "https://adb-1.1.azuredatabricks.net", Token: "dapi-dev-token"}
	prod := demo.Credentials{Host: "https://adb-2.2.azuredatabricks.net", Token: "dapi-prod-token"}
	opts := demo.StandIns(ca, t.TempDir(), dev, prod)
	problems, err := live.CheckProject(context.Background(), standInDevOps(t, opts))
	require.NoError(t, err)
	assert.Empty(t, problems)

	broken := demo.StandIns(ca, t.TempDir(), dev, prod)
	groups := broken.VariableGroups
	delete(groups[0].Variables, "databricks-host-dev")
	groups[0].Variables["databricks-token-dev"] = azurestandin.Variable{Value: "in-clear"}
	groups[1] = azurestandin.VariableGroup{Name: "databricks-prod", Variables: map[string]azurestandin.Variable{"databricks-host": {Value: prod.Host}}}
	problems, err = live.CheckProject(context.Background(), standInDevOps(t, broken))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{
		"variable group databricks: no variable databricks-host-dev",
		"variable group databricks: databricks-token-dev is not secret",
		"variable group databricks-prod: linked to a Key Vault: false, the sample expects true",
		"variable group databricks-prod: databricks-host is not secret",
		"variable group databricks-prod: no variable databricks-token",
	}, problems)
}

// standInPipelineWorld starts the demo's world (emulated workspaces,
// Azurite, the Azure stand-ins) with the Azure DevOps stand-in holding the
// repository `churn` (the folder repo) and running its pipelines with the
// brickferry executable, and returns the live-devops settings read by
// DevOpsFromEnv from the stand-in's addresses, as a person would set them.
func standInPipelineWorld(t *testing.T, repo string) live.DevOps {
	t.Helper()
	root, err := azurite.RepoRoot()
	require.NoError(t, err)
	world, stop, err := demo.StartWorld(context.Background(), demo.Options{
		Sample: demo.UnityCatalog(), Exe: agenttest.Executable(t), OutDir: t.TempDir(), Out: io.Discard, Fast: true,
		ModelDir:     filepath.Join(root, "examples", "demo", "churn-model"),
		Repositories: map[string]string{"churn": repo},
	})
	t.Cleanup(stop)
	require.NoError(t, err)
	az := world.Azure
	env := map[string]string{
		live.EnvGate: "1", live.EnvDevOpsURL: strings.TrimRight(az.CollectionURI, "/"), live.EnvDevOpsProject: az.Project,
		live.EnvDevOpsToken: az.JobToken, live.EnvDevOpsRepository: "churn",
	}
	d, err := live.DevOpsFromEnv(func(k string) string { return env[k] }, root)
	require.NoError(t, err)
	tr := &http.Transport{DialContext: az.DialContext, TLSClientConfig: &tls.Config{RootCAs: az.CA.Pool(), MinVersion: tls.VersionTLS12}}
	d.HTTP = &http.Client{Transport: tr}
	d.Timeout, d.Poll = 2*time.Minute, 100*time.Millisecond
	return d
}

// TestLiveDevOpsPipelineOnStandIn runs make live-devops's code against the
// Azure DevOps stand-in and the emulated workspaces: the pipeline is
// created from the repository's sample, run by the stand-in's agent, and
// every step succeeded, set the outputs the pipeline reads and uploaded a
// summary. Saving it again keeps it (found by name and folder).
func TestLiveDevOpsPipelineOnStandIn(t *testing.T) {
	root, err := azurite.RepoRoot()
	require.NoError(t, err)
	d := standInPipelineWorld(t, root)
	var out strings.Builder
	rep := checkLiveDevOps(t, d, &out)
	t.Log(out.String())
	assert.Equal(t, "created", rep.Saved)
	assert.Equal(t, "succeeded", rep.Result)
	require.Len(t, rep.Steps, 10, "the sample's task steps")
	byName := map[string]live.StepReport{}
	for _, s := range rep.Steps {
		byName[s.Name] = s
	}
	assert.Equal(t, "true", byName["Compare with the @champion version"].Outputs["promote"])
	assert.NotEmpty(t, byName["Copy the version to prod.ml.churn as @champion"].Outputs["targetModelVersion"])
	assert.Len(t, byName["Serve the model online"].Summaries, 1)

	id, revision, saved, err := live.EnsureSamplePipeline(context.Background(), d)
	require.NoError(t, err)
	assert.Equal(t, []any{"kept", rep.DefinitionID, rep.Revision}, []any{saved, id, revision})
}

// TestLiveDevOpsPipelineNamesAFailedStep: a repository whose sample trains
// a notebook the workspace does not hold fails at the training step; the
// check names it and the steps that did not run.
func TestLiveDevOpsPipelineNamesAFailedStep(t *testing.T) {
	root, err := azurite.RepoRoot()
	require.NoError(t, err)
	repo := t.TempDir()
	sample, err := os.ReadFile(filepath.Join(root, "examples", "azure-pipelines-uc.yml"))
	require.NoError(t, err)
	broken := strings.Replace(string(sample), "notebookPath: /Repos/brickferry/churn/examples/notebooks/train", "notebookPath: /Repos/brickferry/churn/examples/notebooks/missing", 1)
	require.NotEqual(t, string(sample), broken)
	require.NoError(t, os.MkdirAll(filepath.Join(repo, "examples"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(repo, "examples", "azure-pipelines-uc.yml"), []byte(broken), 0o644))

	d := standInPipelineWorld(t, repo)
	rep, err := live.RunSamplePipeline(context.Background(), d, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "failed", rep.Result)
	require.NotEmpty(t, rep.Problems)
	assert.Equal(t, fmt.Sprintf("run %d: result failed", rep.RunID), rep.Problems[0])
	assert.Regexp(t, `^step "Train the churn model" \(DatabricksTrain, Train/Train\): result failed: .*missing`, rep.Problems[1])
	assert.Contains(t, rep.Problems, `step "Register the model version in Unity Catalog" (MLflowPromote, Train/Train): did not run (no Task record in the timeline)`)
	assert.Contains(t, rep.Problems, `step "Serve the model online" (ModelServe, DeployProd/DeployProd): did not run (no Task record in the timeline)`)
}

// TestDevOpsFromEnv: make live-devops refuses without BRICKFERRY_LIVE=1,
// names every missing or wrong setting, and refuses a service connection
// other than the one the sample names.
func TestDevOpsFromEnv(t *testing.T) {
	root, err := azurite.RepoRoot()
	require.NoError(t, err)
	good := map[string]string{
		live.EnvGate: "1", live.EnvDevOpsURL: "https://dev.azure.com/contoso", live.EnvDevOpsProject: "mlops",
		live.EnvDevOpsToken: "t", live.EnvDevOpsRepository: "brickferry",
	}
	read := func(change map[string]string) (live.DevOps, error) {
		env := map[string]string{}
		for k, v := range good {
			env[k] = v
		}
		for k, v := range change {
			env[k] = v
		}
		return live.DevOpsFromEnv(func(k string) string { return env[k] }, root)
	}
	d, err := read(nil)
	require.NoError(t, err)
	assert.Equal(t, []any{"refs/heads/main", "brickferry-live-uc", `\brickferry-live`, "brickferry-prod", time.Hour},
		[]any{d.Branch, d.PipelineName, d.PipelineFolder, d.Connection, d.Timeout})

	_, err = read(map[string]string{live.EnvGate: ""})
	assert.ErrorIs(t, err, live.ErrNotEnabled)

	_, err = read(map[string]string{live.EnvDevOpsRepository: "", live.EnvDevOpsBranch: "main", live.EnvDevOpsTimeout: "soon", live.EnvDevOpsConnection: "other-arm"})
	require.Error(t, err)
	for _, want := range []string{
		live.EnvDevOpsRepository + " is not set",
		live.EnvDevOpsBranch + `="main": give a branch as refs/heads/<name>`,
		live.EnvDevOpsTimeout + `="soon": give whole minutes`,
		live.EnvDevOpsConnection + `="other-arm": the sample names the service connection(s) brickferry-prod`,
	} {
		assert.Contains(t, err.Error(), want)
	}
}

// TestEnsureSamplePipeline: the pipeline is created, kept when nothing
// changed, and updated (a new revision, the same id) when it should run
// another repository's sample.
func TestEnsureSamplePipeline(t *testing.T) {
	root, err := azurite.RepoRoot()
	require.NoError(t, err)
	ca, err := emulator.NewCA()
	require.NoError(t, err)
	d := standInDevOps(t, azurestandin.Options{CA: ca, Pipelines: azurestandin.PipelineOptions{Repositories: map[string]string{"churn": root, "fork": root}}})
	d.Repository, d.Branch, d.PipelineName, d.PipelineFolder = "churn", "refs/heads/main", "brickferry-live-uc", `\brickferry-live`
	type saved struct {
		ID, Revision int
		What         string
	}
	ensure := func() saved {
		id, revision, what, err := live.EnsureSamplePipeline(context.Background(), d)
		require.NoError(t, err)
		return saved{id, revision, what}
	}
	assert.Equal(t, saved{1, 1, "created"}, ensure())
	assert.Equal(t, saved{1, 1, "kept"}, ensure())
	d.Repository = "fork"
	assert.Equal(t, saved{1, 2, "updated"}, ensure())
	assert.Equal(t, saved{1, 2, "kept"}, ensure())
	d.PipelineFolder = `\elsewhere`
	assert.Equal(t, saved{2, 1, "created"}, ensure(), "found by name in its folder only")
}

// TestLiveDevOpsPipelineTimesOut: a run nothing picks up (the stand-in
// without an agent, as a pool without one) is reported when the wait ends.
func TestLiveDevOpsPipelineTimesOut(t *testing.T) {
	root, err := azurite.RepoRoot()
	require.NoError(t, err)
	ca, err := emulator.NewCA()
	require.NoError(t, err)
	d := standInDevOps(t, azurestandin.Options{CA: ca, Pipelines: azurestandin.PipelineOptions{Repositories: map[string]string{"churn": root}}})
	d.Repository, d.Branch, d.PipelineName, d.PipelineFolder, d.Root = "churn", "refs/heads/main", "brickferry-live-uc", `\brickferry-live`, root
	d.Timeout, d.Poll = 300*time.Millisecond, 50*time.Millisecond
	rep, err := live.RunSamplePipeline(context.Background(), d, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"run 1 did not finish within 300ms (state inProgress): it may wait for an agent, a permission to use a resource, or the approval of environment production"}, rep.Problems)
}
