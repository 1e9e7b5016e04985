package live_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/azurestandin"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/live"
)

// TestLivePublish is make live-devops's publishing: the extension packaged
// under the test publisher, published privately to the real Marketplace,
// shared with and installed in the organization. Without BRICKFERRY_LIVE=1
// it does nothing; TestPublishAndDownloadOnStandIn runs the same code
// against the stand-ins in make test.
func TestLivePublish(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	require.NoError(t, err)
	p := fromEnv(t, func(getenv func(string) string) (live.Publish, error) {
		return live.PublishFromEnv(getenv, root, time.Now())
	})
	p.Log = os.Stdout
	live.PrintPublishPlan(os.Stdout, p)
	vsix, err := p.Run(context.Background(), t.TempDir())
	require.NoError(t, err)

	// The launcher's download path against the organization: a thin task
	// run with no BrickferryTools step and an empty tool cache. The
	// organization may take a moment to serve a newly installed version.
	d := fromEnv(t, func(getenv func(string) string) (live.DevOps, error) { return live.DevOpsFromEnv(getenv, root) })
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, err := live.CheckDownload(context.Background(), vsix, t.TempDir(), live.Download{CollectionURL: d.CollectionURL, Token: d.Token})
		if err == nil || time.Now().After(deadline) {
			require.NoError(t, err)
			t.Log(out)
			return
		}
		t.Logf("not yet: %v", err)
		time.Sleep(15 * time.Second)
	}
}

// TestPublishAndDownloadOnStandIn publishes the extension with the real
// tfx-cli to the Marketplace stand-in, shares and installs it, and then
// runs a thin task of it through its launcher (node index.js) with no
// BrickferryTools step in the job and an empty tool cache: the launcher
// downloads the BrickferryTools task from the organization, as the agent
// would, verifies the executable's sha256 and runs MLflowPromote against an
// emulated workspace. The Marketplace refuses a second upload of the same
// version; an update installs the new version's tasks, and a task whose
// pinned hash does not match the downloaded executable fails.
func TestPublishAndDownloadOnStandIn(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("SKIPPED: node is not on PATH; this test runs tfx-cli and the task launcher with Node.js, which make test does not install: install Node.js 20")
	}
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	require.NoError(t, err)
	tfx := filepath.Join(root, "build", "devtools", "node_modules", "tfx-cli")
	_, err = os.Stat(tfx)
	require.NoError(t, err, "tfx-cli is not installed: run make devtools (make test does)")

	// The executable under test, carried as the one platform of the package.
	key := runtime.GOOS + "-" + runtime.GOARCH
	bin := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(bin, key), 0o755))
	exe, err := os.ReadFile(agenttest.Executable(t))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(bin, key, "brickferry"), exe, 0o755))

	ca, err := emulator.NewCA()
	require.NoError(t, err)
	ws := emulator.Start(t, emulator.Options{CA: ca, RegistrationDelay: time.Millisecond})
	modelVersion := ws.RegisterModel(t, "churn")
	az := azurestandin.Start(t, azurestandin.Options{CA: ca})
	const publisher = "brickferry-test"
	az.AddPublisher(publisher)

	raw, err := os.ReadFile(filepath.Join(root, "VERSION"))
	require.NoError(t, err)
	parts := strings.Split(strings.TrimSpace(string(raw)), ".")
	v1, v2 := parts[0]+"."+parts[1]+".7", parts[0]+"."+parts[1]+".8"

	tr := &http.Transport{DialContext: az.DialContext, TLSClientConfig: &tls.Config{RootCAs: az.CA.Pool(), MinVersion: tls.VersionTLS12}}
	var log strings.Builder
	p := live.Publish{
		Root: root, Publisher: publisher, Version: v1, Organization: az.Organization,
		MarketplaceURL: live.MarketplaceURL, ExtMgmtURL: "https://" + azurestandin.ExtMgmtHost + "/" + az.Organization,
		Token: az.PersonalAccessToken(), Bin: bin, Platforms: []string{key}, Cache: t.TempDir(),
		// tfx-cli reaches the stand-ins through their proxy (typed-rest-client
		// honours HTTPS_PROXY) and trusts their CA through Node.
		Env:  []string{"HTTPS_PROXY=" + az.ProxyURL, "NO_PROXY=", "no_proxy=", "NODE_EXTRA_CA_CERTS=" + az.CAFile, "HOME=" + t.TempDir()},
		HTTP: &http.Client{Transport: tr}, Log: &log,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	vsix1, err := p.Run(ctx, t.TempDir())
	require.NoError(t, err, "%s", log.String())
	assert.NotContains(t, log.String(), p.Token)
	state, ok := az.Extension(publisher, "brickferry")
	require.True(t, ok)
	assert.Equal(t, azurestandin.ExtensionState{Versions: []string{v1}, SharedWith: []string{az.Organization}, Installed: true}, state)

	// The same version again: the Marketplace refuses it.
	err = p.PublishAndShare(ctx, vsix1)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Version number must increase")

	// An update: the organization now serves the new version's tasks.
	p.Version = v2
	vsix2, err := p.Run(ctx, t.TempDir())
	require.NoError(t, err, "%s", log.String())
	state, _ = az.Extension(publisher, "brickferry")
	assert.Equal(t, []string{v2, v1}, state.Versions)

	t.Run("download", func(t *testing.T) {
		taskDir, tools := extractTask(t, vsix2, "MLflowPromoteV1", nil)
		res := promote(t, az, ws, node, taskDir, modelVersion)
		require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
		assert.Equal(t, "Staging", res.Outputs["stage"])
		assert.Contains(t, res.Stdout, "Downloading the BrickferryTools task "+v2)
		assert.Contains(t, res.Stdout, "downloaded from the organization")
		assert.Equal(t, http.StatusOK, answered(az)["GET dev.azure.com/"+az.Organization+"/_apis/distributedtask/tasks/"+tools+"/"+v2])
	})
	t.Run("CheckDownload", func(t *testing.T) {
		// make live-devops's check, with the stand-in's addresses.
		out, err := live.CheckDownload(ctx, vsix2, t.TempDir(), live.Download{
			CollectionURL: az.CollectionURI, Token: az.JobToken,
			Env: []string{"AGENT_PROXYURL=" + az.ProxyURL, "AGENT_CAINFO=" + az.CAFile},
		})
		require.NoError(t, err, out)
		assert.NotContains(t, out, az.JobToken)
	})
	t.Run("pinned version gone", func(t *testing.T) {
		// A task of the first version pins BrickferryTools v1, which the
		// organization stopped serving at the update: the launcher lists
		// the task's versions and takes the newest of the same major,
		// whose executable has the pinned hash (the same build).
		taskDir, tools := extractTask(t, vsix1, "MLflowPromoteV1", nil)
		res := promote(t, az, ws, node, taskDir, modelVersion)
		require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
		assert.Contains(t, res.Stdout, "from BrickferryTools "+v2+" downloaded from the organization")
		got := answered(az)
		assert.Equal(t, http.StatusNotFound, got["GET dev.azure.com/"+az.Organization+"/_apis/distributedtask/tasks/"+tools+"/"+v1])
		assert.Equal(t, http.StatusOK, got["GET dev.azure.com/"+az.Organization+"/_apis/distributedtask/tasks/"+tools])
	})
	t.Run("wrong sha256", func(t *testing.T) {
		taskDir, _ := extractTask(t, vsix2, "MLflowPromoteV1", func(cfg map[string]any) {
			cfg["sha256"].(map[string]any)[key] = strings.Repeat("0", 64)
		})
		res := promote(t, az, ws, node, taskDir, modelVersion)
		require.Equal(t, agent.Failed, res.Result, "%s", res.Stdout)
		assert.Contains(t, res.Stdout, "carries a "+key+" executable with sha256")
		assert.Contains(t, strings.Join(res.Errors, "\n"), "is not available to this job")
	})
}

// promote runs MLflowPromote's launcher as the agent runs a Node task,
// with the job's connection to the stand-in organization and its proxy.
func promote(t *testing.T, az *azurestandin.Azure, ws *emulator.Workspace, node, taskDir, version string) *agenttest.Result {
	t.Helper()
	return agenttest.Run{
		Task:     "MLflowPromote",
		Inputs:   map[string]string{"command": "transition", "modelName": "churn", "modelVersion": version, "stage": "Staging"},
		Env:      az.Env(), // the collection URL, the job token, AGENT_PROXYURL and AGENT_CAINFO (one CA for all)
		JobToken: az.JobToken,
	}.WithToken(ws.URL(), ws.Token).Start(t, node, filepath.Join(taskDir, "index.js")).Finish(t)
}

// extractTask writes a task folder of the .vsix where the agent extracts a
// job's tasks (<tasks>/<Name>_<id>/<version>/), edit changing its
// launcher.json first, and returns the folder and the BrickferryTools id
// it pins.
func extractTask(t *testing.T, vsix, folder string, edit func(map[string]any)) (string, string) {
	t.Helper()
	dir, err := live.ExtractTask(vsix, folder, filepath.Join(t.TempDir(), "_tasks"))
	require.NoError(t, err)
	cfgFile := filepath.Join(dir, "launcher.json")
	raw, err := os.ReadFile(cfgFile)
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(raw, &cfg))
	if edit != nil {
		edit(cfg)
		raw, err = json.Marshal(cfg)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(cfgFile, raw, 0o644))
	}
	return dir, cfg["tools"].(map[string]any)["id"].(string)
}

// answered is the stand-ins' last answer to each "METHOD host/path".
func answered(az *azurestandin.Azure) map[string]int {
	out := map[string]int{}
	for _, r := range az.Requests() {
		out[r.Method+" "+r.Host+r.Path] = r.Status
	}
	return out
}

// TestPublishFromEnv: refused without the gate, every missing setting
// named, and a version that grows with time under VERSION's major.minor.
func TestPublishFromEnv(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	require.NoError(t, err)
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	now := time.Unix(1_800_000_000, 0)

	_, err = live.PublishFromEnv(env(nil), root, now)
	require.ErrorIs(t, err, live.ErrNotEnabled)

	_, err = live.PublishFromEnv(env(map[string]string{"BRICKFERRY_LIVE": "1", live.EnvDevOpsURL: "https://contoso.visualstudio.com"}), root, now)
	require.Error(t, err)
	for _, want := range []string{live.EnvDevOpsURL, live.EnvDevOpsPublisher, live.EnvDevOpsPAT} {
		assert.Contains(t, err.Error(), want)
	}

	p, err := live.PublishFromEnv(env(map[string]string{"BRICKFERRY_LIVE": "1", live.EnvDevOpsURL: "https://dev.azure.com/contoso/",
		live.EnvDevOpsPublisher: "contoso-test", live.EnvDevOpsPAT: "pat"}), root, now)
	require.NoError(t, err)
	raw, err := os.ReadFile(filepath.Join(root, "VERSION"))
	require.NoError(t, err)
	parts := strings.Split(strings.TrimSpace(string(raw)), ".")
	assert.Equal(t, parts[0]+"."+parts[1]+".1800000000", p.Version)
	assert.Equal(t, "contoso", p.Organization)
	assert.Equal(t, "https://extmgmt.dev.azure.com/contoso", p.ExtMgmtURL)
	assert.Equal(t, live.MarketplaceURL, p.MarketplaceURL)
}
