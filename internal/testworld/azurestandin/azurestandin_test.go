package azurestandin_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/azurestandin"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

func TestMain(m *testing.M) { testworld.Main(m) }

// TestExecutableReadsKeyVaultLinkedGroup runs the built executable as the
// agent would behind an authenticating proxy: MLflowPromote's workspace
// credentials come from a Key Vault-linked variable group that is not
// linked to the job, so the task reads the group by name through the Azure
// DevOps REST API, signs in to Entra with its Azure Resource Manager
// connection (service principal secret) and reads the vault; the workspace
// is an https emulator on 127.0.0.1, reached through the same proxy. The
// connection is a service principal with a secret, or uses workload identity
// federation (the pipeline's OIDC token, from Azure DevOps through the proxy).
func TestExecutableReadsKeyVaultLinkedGroup(t *testing.T) {
	for _, scheme := range []string{azurestandin.SchemeServicePrincipal, azurestandin.SchemeWorkloadIdentity} {
		t.Run(scheme, func(t *testing.T) { promoteWithLinkedGroup(t, scheme) })
	}
}

func promoteWithLinkedGroup(t *testing.T, scheme string) {
	exe := agenttest.Executable(t)
	ca, err := emulator.NewCA()
	require.NoError(t, err)
	ws := emulator.Start(t, emulator.Options{CA: ca, RegistrationDelay: time.Millisecond})
	registerChurn(t, ws)

	const connection, clientID = "mlops-arm", "7d3c9a51-2b4e-4f0a-8c6d-1e2f3a4b5c6d"
	az := azurestandin.Start(t, azurestandin.Options{
		CA:        ca,
		ProxyUser: "build-agent", ProxyPassword: "pr0xy-Pa55word!",
		Connections: []azurestandin.Connection{{Name: connection, ClientID: clientID, Scheme: scheme}},
		Vaults:      []azurestandin.Vault{{Name: "kv-mlops", Readers: []string{clientID}}},
		VariableGroups: []azurestandin.VariableGroup{{
			Name: "databricks-kv",
			KeyVault: &azurestandin.GroupVault{Vault: "kv-mlops", Connection: connection,
				Secrets: map[string]string{"databricks-host": ws.URL(), "databricks-token": ws.Token}},
		}},
	})
	arm := az.ServiceConnection(connection)
	require.Equal(t, scheme, arm.Scheme)

	res := agenttest.Run{
		Task: "MLflowPromote",
		Inputs: map[string]string{
			"connectionMethod": "variableGroup", "variableGroup": "databricks-kv", "azureSubscription": arm.ID,
			"command": "transition", "modelName": "churn", "modelVersion": "1", "stage": "Staging",
		},
		Endpoints: []agent.Endpoint{arm},
		Env:       az.Env(),
		JobToken:  az.JobToken,
		Debug:     true, // debug lines must not leak either
	}.Exec(t, exe)

	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	assert.Equal(t, 0, res.ExitCode)
	assert.Equal(t, "Staging", res.Outputs["stage"])
	assert.Contains(t, res.Stdout, "secret databricks-token of key vault kv-mlops (group databricks-kv)")
	mv, err := ml.NewModelRegistry(ws.Client(t)).GetModelVersion(ctx(t), ml.GetModelVersionRequest{Name: "churn", Version: "1"})
	require.NoError(t, err)
	assert.Equal(t, "Staging", mv.ModelVersion.CurrentStage)

	// Every client went through the proxy: Azure DevOps, Entra, Key Vault
	// and the workspace, which is not an Azure name and went straight through.
	tunnelled := az.Tunnelled()
	for _, target := range []string{"dev.azure.com:443", "login.microsoftonline.com:443", "kv-mlops.vault.azure.net:443", ws.Host} {
		assert.Contains(t, tunnelled, target)
	}
	assert.Contains(t, res.Stdout, "via proxy "+strings.TrimPrefix(az.ProxyURL, "http://"))
	answered := map[string]int{}
	for _, r := range az.Requests() {
		answered[r.Method+" "+r.Host+r.Path] = r.Status
	}
	assert.Equal(t, http.StatusOK, answered["GET dev.azure.com/contoso/"+az.ProjectID+"/_apis/distributedtask/variablegroups"], "%v", answered)
	assert.Equal(t, http.StatusOK, answered["POST login.microsoftonline.com/"+az.TenantID+"/oauth2/v2.0/token"], "%v", answered)
	if scheme == azurestandin.SchemeWorkloadIdentity {
		assert.Equal(t, http.StatusOK, answered["POST dev.azure.com"+strings.TrimPrefix(az.OIDCRequestURI, "https://dev.azure.com")], "%v", answered)
	}
	assert.Equal(t, http.StatusOK, answered["GET kv-mlops.vault.azure.net/secrets/databricks-token/"], "%v", answered) // azsecrets asks for version ""

	// No secret in the output: agenttest checks the ones the agent passed
	// (job token, client secret, proxy password) and the ones the task
	// registered; check every secret the stand-ins hold as well (the vault's
	// token among them), outside the task.setsecret commands that hand them
	// to the agent.
	secrets := az.Secrets()
	require.Contains(t, secrets, ws.Token)
	require.Contains(t, secrets, az.JobToken)
	if scheme == azurestandin.SchemeServicePrincipal {
		require.Contains(t, secrets, arm.Param("serviceprincipalkey"))
	}
	require.Contains(t, secrets, "pr0xy-Pa55word!")
	for _, line := range strings.Split(res.Stdout+"\n"+res.Stderr, "\n") {
		if strings.HasPrefix(line, "##vso[task.setsecret]") {
			continue
		}
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("a secret (%d characters) appears in the output: %q", len(s), strings.ReplaceAll(line, s, "<SECRET>"))
			}
		}
	}
}

// TestRouting: the stand-ins answer at their public names; other names in
// Azure's domains do not resolve, whichever way they are reached; the proxy
// wants its credentials.
func TestRouting(t *testing.T) {
	ca, err := emulator.NewCA()
	require.NoError(t, err)
	az := azurestandin.Start(t, azurestandin.Options{CA: ca, ProxyUser: "u", ProxyPassword: "p",
		Vaults: []azurestandin.Vault{{Name: "kv-mlops"}},
		Hosts:  map[string]http.Handler{"adb-1.1.azuredatabricks.net": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("workspace")) })},
	})
	direct := ca.Transport()
	direct.Proxy, direct.DialContext = nil, az.DialContext
	viaProxy := ca.Transport()
	viaProxy.Proxy = http.ProxyURL(mustParse(t, strings.Replace(az.ProxyURL, "http://", "http://u:p@", 1)))
	wrongPassword := ca.Transport()
	wrongPassword.Proxy = http.ProxyURL(mustParse(t, strings.Replace(az.ProxyURL, "http://", "http://u:x@", 1)))

	cases := []struct {
		url    string
		status int // 0: no answer
	}{
		{"https://login.microsoftonline.com/" + az.TenantID + "/v2.0/.well-known/openid-configuration", http.StatusOK},
		{"https://login.microsoftonline.com/not-a-tenant/v2.0/.well-known/openid-configuration", http.StatusBadRequest},
		{"https://dev.azure.com/contoso/_apis/ResourceAreas", http.StatusUnauthorized}, // no job token
		{"https://kv-mlops.vault.azure.net/secrets/x?api-version=7.5", http.StatusUnauthorized},
		{"https://adb-1.1.azuredatabricks.net/api/2.2/jobs/list", http.StatusOK},
		{"https://kv-elsewhere.vault.azure.net/secrets/x", 0},
		{"https://management.azure.com/subscriptions", 0},
	}
	for _, c := range cases {
		for name, rt := range map[string]http.RoundTripper{"direct": direct, "proxy": viaProxy} {
			t.Run(name+" "+c.url, func(t *testing.T) {
				req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, c.url, nil)
				require.NoError(t, err)
				resp, err := rt.RoundTrip(req)
				if c.status == 0 {
					require.Error(t, err)
					return
				}
				require.NoError(t, err)
				_ = resp.Body.Close()
				assert.Equal(t, c.status, resp.StatusCode)
			})
		}
	}
	req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, cases[0].url, nil)
	require.NoError(t, err)
	resp, err := wrongPassword.RoundTrip(req)
	if err == nil {
		_ = resp.Body.Close()
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Proxy Authentication Required")
}

// registerChurn gives ws a workspace registry model "churn" with a READY
// version 1, made from files uploaded to DBFS.
func registerChurn(t *testing.T, ws *emulator.Workspace) {
	t.Helper()
	c := ws.Client(t)
	put := map[string]any{"path": "/models/churn/MLmodel", "overwrite": true,
		"contents": base64.StdEncoding.EncodeToString([]byte("flavors:\n  python_function: {}\n"))}
	require.NoError(t, c.Do(ctx(t), http.MethodPost, "/api/2.0/dbfs/put", nil, nil, put, nil))
	reg := ml.NewModelRegistry(c)
	_, err := reg.CreateModel(ctx(t), ml.CreateModelRequest{Name: "churn"})
	require.NoError(t, err)
	_, err = reg.CreateModelVersion(ctx(t), ml.CreateModelVersionRequest{Name: "churn", Source: "dbfs:/models/churn"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		mv, err := reg.GetModelVersion(ctx(t), ml.GetModelVersionRequest{Name: "churn", Version: "1"})
		require.NoError(t, err)
		return mv.ModelVersion.Status == ml.ModelVersionStatusReady
	}, 10*time.Second, 10*time.Millisecond)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}

// TestNotInTheExecutable: the stand-ins (and the emulator they build on) are
// for tests and the demo; the task executable must not link them.
func TestNotInTheExecutable(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/brickferry/brickferry/cmd/brickferry").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, pkg := range strings.Fields(string(out)) {
		assert.NotContains(t, []string{"github.com/brickferry/brickferry/internal/testworld/azurestandin", "github.com/brickferry/brickferry/internal/testworld/emulator"}, pkg)
	}
}
