package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/cli"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/azurestandin"
	"github.com/brickferry/brickferry/tasks"
)

// definition is a test task declaring exactly the credential inputs of
// MLflowPromote's task.json (its "workspace" and "target" groups), so the
// tests exercise the declarations users see.
func definition(t *testing.T) agent.Definition {
	t.Helper()
	real, err := tasks.Definition("MLflowPromote")
	require.NoError(t, err)
	def := agent.Definition{Name: "Connect"}
	for _, in := range real.Inputs {
		if in.GroupName == "workspace" || in.GroupName == "target" {
			def.Inputs = append(def.Inputs, in)
		}
	}
	require.NotEmpty(t, def.Inputs)
	return def
}

// step is what the test task does after connecting.
type step func(ctx context.Context, t *testing.T, w *world, ws *auth.Workspace, log *agent.Log) error

// listJobs makes an authenticated call through an SDK service.
func listJobs(ctx context.Context, _ *testing.T, _ *world, ws *auth.Workspace, _ *agent.Log) error {
	_, err := jobs.NewJobs(ws.Client).ListAll(ws.Context(ctx), jobs.ListJobsRequest{Limit: 1})
	return ws.Explain(err)
}

// run runs the test task the way the agent runs a task: it reads the
// credential inputs of group, resolves the workspace and runs the steps.
func (w *world) run(t *testing.T, group string, r agenttest.Run, steps ...step) *agenttest.Result {
	t.Helper()
	def := definition(t)
	r.Task, r.Definition = "Connect", &def
	if r.Env == nil {
		r.Env = map[string]string{}
	}
	// The agent variables of the stand-ins, but not the proxy: in-process,
	// the resolver's dialer reaches them (TestProxy sets the proxy itself).
	for k, v := range w.az.Env() {
		if _, set := r.Env[k]; !set && !strings.HasPrefix(k, "AGENT_PROXY") && k != "SECRET_AGENT_PROXYPASSWORD" {
			r.Env[k] = v
		}
	}

	if len(steps) == 0 {
		steps = []step{listJobs}
	}
	task := func(ctx context.Context, env agent.Env, log *agent.Log) error {
		in := def.InputsFrom(env)
		opts := auth.ReadOptions(in, group)
		if err := in.Err(); err != nil {
			return err
		}
		res := &auth.Resolver{Env: env, Log: log, DialContext: w.az.DialContext, Now: w.clock.Now}
		ws, err := res.Resolve(ctx, opts)
		if err != nil {
			return err
		}
		for _, s := range steps {
			if err := s(ctx, t, w, ws, log); err != nil {
				return err
			}
		}
		log.SetOutput("host", ws.Host)
		log.SetOutput("principal", ws.Principal)
		return nil
	}
	return r.InProcess(t, cli.Registry{"Connect": cli.Task{Definition: def, Run: task}})
}

func armEndpoint(id, scheme string, params, data map[string]string) agent.Endpoint {
	if data == nil {
		data = map[string]string{}
	}
	data["environment"] = "AzureCloud"
	data["subscriptionId"] = "a1b2c3d4-0000-4000-8000-000000000001"
	return agent.Endpoint{ID: id, URL: "https://management.azure.com/", Scheme: scheme, Parameters: params, Data: data}
}

func wifEndpoint() agent.Endpoint {
	return armEndpoint(wifConnection, "WorkloadIdentityFederation", map[string]string{"tenantid": tenantID, "serviceprincipalid": wifClientID}, nil)
}

func secretEndpoint(client, secret string) agent.Endpoint {
	return armEndpoint("9b1c2d3e-0000-4000-8000-00000000000a", "ServicePrincipal", map[string]string{"tenantid": tenantID, "serviceprincipalid": client, "authenticationType": "spnKey", "serviceprincipalkey": secret}, nil)
}

func (w *world) certEndpoint() agent.Endpoint {
	return armEndpoint("9b1c2d3e-0000-4000-8000-00000000000b", "ServicePrincipal", map[string]string{"tenantid": tenantID, "serviceprincipalid": certClientID, "authenticationType": "spnCertificate", "servicePrincipalCertificate": string(w.certPEM)}, nil)
}

func miEndpoint() agent.Endpoint {
	return armEndpoint("9b1c2d3e-0000-4000-8000-00000000000c", "ManagedServiceIdentity", map[string]string{"tenantid": tenantID}, map[string]string{"msiclientId": miClientID})
}

func databricksEndpoint(scheme string, params map[string]string) agent.Endpoint {
	return agent.Endpoint{ID: "d0d0d0d0-0000-4000-8000-00000000000d", URL: "https://" + prodHost + "/", Scheme: scheme, Parameters: params}
}

// TestEachWayConnects: every way a user connects a workspace ends in an
// authenticated call through an SDK service, with nothing secret in the log.
func TestEachWayConnects(t *testing.T) {
	w := newWorld(t)
	w.addGroup(azurestandin.VariableGroup{Name: "databricks-kv", KeyVault: &azurestandin.GroupVault{Vault: "kv-mlops"},
		Variables: map[string]azurestandin.Variable{"databricks-host-prod": {}, "databricks-token-prod": {}}})
	w.addGroup(azurestandin.VariableGroup{Name: "databricks", Variables: map[string]azurestandin.Variable{
		"databricks-host-dev": {Value: "https://" + devHost}, "databricks-token-dev": {Value: devPAT, Secret: true},
	}})
	cases := []struct {
		name      string
		run       agenttest.Run
		host      string
		principal string
	}{
		{"azureRM workload identity federation", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "azureRM", "azureSubscription": wifConnection, "workspaceUrl": "https://" + devHost + "/?o=1111111111111111#job/1"},
			Endpoints: []agent.Endpoint{wifEndpoint()},
		}, devHost, "service principal "},
		{"azureRM service principal secret", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "azureRM", "azureSubscription": secretEndpoint(secretClientID, spSecret).ID, "workspaceUrl": devHost},
			Endpoints: []agent.Endpoint{secretEndpoint(secretClientID, spSecret)},
		}, devHost, "service principal "},
		{"azureRM service principal certificate", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "azureRM", "azureSubscription": w.certEndpoint().ID, "workspaceUrl": "https://" + devHost},
			Endpoints: []agent.Endpoint{w.certEndpoint()},
		}, devHost, "service principal "},
		{"azureRM managed identity", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "azureRM", "azureSubscription": miEndpoint().ID, "workspaceUrl": "https://" + devHost},
			Endpoints: []agent.Endpoint{miEndpoint()},
		}, devHost, "managed identity "},
		{"databricks connection PAT", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "databricks", "databricksConnection": databricksEndpoint("Token", nil).ID},
			Endpoints: []agent.Endpoint{databricksEndpoint("Token", map[string]string{"apitoken": prodPAT})},
		}, prodHost, "the Databricks service connection"},
		{"databricks connection OAuth M2M", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "databricks", "databricksConnection": databricksEndpoint("UsernamePassword", nil).ID},
			Endpoints: []agent.Endpoint{databricksEndpoint("UsernamePassword", map[string]string{"username": oauthClientID, "password": oauthSecret})},
		}, prodHost, "OAuth service principal "},
		{"databricks connection OAuth M2M with named parameters", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "databricks", "databricksConnection": databricksEndpoint("None", nil).ID},
			Endpoints: []agent.Endpoint{databricksEndpoint("None", map[string]string{"clientId": oauthClientID, "clientSecret": oauthSecret})},
		}, prodHost, "OAuth service principal "},
		{"variable group linked to the pipeline", agenttest.Run{
			Variables: map[string]string{"databricks-host-dev": "https://" + devHost + "/"},
			Secrets:   map[string]string{"databricks-token-dev": devPAT},
			Inputs:    map[string]string{"variableSuffix": "dev"}, // connectionMethod defaults to variableGroup
		}, devHost, "secret variable databricks-token-dev of group databricks"},
		{"Key Vault-linked group read through the REST API", agenttest.Run{
			Inputs:    map[string]string{"variableGroup": "databricks-kv", "variableSuffix": "prod", "azureSubscription": secretEndpoint(secretClientID, spSecret).ID},
			Endpoints: []agent.Endpoint{secretEndpoint(secretClientID, spSecret)},
		}, prodHost, "secret databricks-token-prod of key vault kv-mlops"},
		{"Key Vault PAT", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "keyVault", "keyVaultName": "kv-mlops", "azureSubscription": wifConnection},
			Endpoints: []agent.Endpoint{wifEndpoint()},
		}, prodHost, "secret databricks-token of key vault kv-mlops"},
		{"Key Vault OAuth M2M", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "keyVault", "keyVaultName": "kv-mlops", "keyVaultCredential": "oauth", "workspaceUrl": prodHost, "azureSubscription": wifConnection},
			Endpoints: []agent.Endpoint{wifEndpoint()},
		}, prodHost, "OAuth service principal "},
		{"token input", agenttest.Run{
			Inputs: map[string]string{"connectionMethod": "token", "workspaceUrl": "HTTPS://" + strings.ToUpper(devHost) + "//", "token": devPAT},
		}, devHost, "the token input"},
		{"Databricks federation with the pipeline's token", agenttest.Run{
			Inputs: map[string]string{"connectionMethod": "databricksFederation", "workspaceUrl": devHost, "federationClientId": fedClientID},
		}, devHost, "Databricks service principal " + fedClientID + " (federation with this pipeline's OIDC token)"},
		{"Databricks federation with a service connection's token", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "databricksFederation", "workspaceUrl": prodHost, "federationClientId": fedConnClient, "federationSubject": "serviceConnection", "azureSubscription": wifConnection},
			Endpoints: []agent.Endpoint{wifEndpoint()},
		}, prodHost, "Databricks service principal " + fedConnClient},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run.Debug = true // debug output must not leak either
			res := w.run(t, "", c.run)
			require.Equal(t, agent.Succeeded, res.Result, "errors: %v", res.Errors)
			assert.Equal(t, "https://"+c.host, res.Outputs["host"])
			assert.Contains(t, res.Outputs["principal"], c.principal)
			assert.Contains(t, res.Stdout, "##[debug]HTTP GET https://"+c.host+"/api/2.2/jobs/list: 200")
			assert.NotContains(t, res.Stdout, "Authorization")
		})
	}
	_, oidc := w.counts()
	assert.Positive(t, oidc, "workload identity federation asked the pipeline's OIDC endpoint")
}

// TestTargetGroup: the copy target's inputs carry the "target" prefix and
// resolve a second workspace independently of the first.
func TestTargetGroup(t *testing.T) {
	w := newWorld(t)
	res := w.run(t, "target", agenttest.Run{Inputs: map[string]string{
		"targetConnectionMethod": "token", "targetWorkspaceUrl": prodHost, "targetToken": prodPAT,
	}})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v", res.Errors)
	assert.Equal(t, "https://"+prodHost, res.Outputs["host"])
}

// TestTokenRefresh: Entra and OAuth tokens are renewed when they expire, and
// each new token is registered as a secret.
func TestTokenRefresh(t *testing.T) {
	w := newWorld(t)
	expire := func(d time.Duration) step {
		return func(ctx context.Context, t *testing.T, w *world, ws *auth.Workspace, log *agent.Log) error {
			w.clock.Advance(d)
			return nil
		}
	}
	t.Run("Entra", func(t *testing.T) {
		before, _ := w.counts()
		res := w.run(t, "", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "azureRM", "azureSubscription": wifConnection, "workspaceUrl": devHost},
			Endpoints: []agent.Endpoint{wifEndpoint()},
		}, listJobs, listJobs, expire(5*time.Minute), listJobs, expire(5*time.Minute), listJobs)
		require.Equal(t, agent.Succeeded, res.Result, "errors: %v", res.Errors)
		after, _ := w.counts()
		assert.Equal(t, 3, after-before, "one token, then one per expiry")
		assert.GreaterOrEqual(t, len(res.Registered), 3+1, "three Entra tokens and the OIDC token(s) registered")
	})
	t.Run("OAuth M2M", func(t *testing.T) {
		res := w.run(t, "", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "databricks", "databricksConnection": databricksEndpoint("None", nil).ID},
			Endpoints: []agent.Endpoint{databricksEndpoint("None", map[string]string{"clientId": oauthClientID, "clientSecret": oauthSecret})},
		}, listJobs, expire(2*time.Hour), listJobs)
		require.Equal(t, agent.Succeeded, res.Result, "errors: %v", res.Errors)
		assert.Len(t, res.Registered, 2, "two workspace OAuth tokens")
	})
}

// TestManagementHeaders: off by default; on, the management token and the
// workspace resource id go with every request.
func TestManagementHeaders(t *testing.T) {
	w := newWorld(t)
	in := map[string]string{"connectionMethod": "azureRM", "azureSubscription": wifConnection, "workspaceUrl": devHost}
	res := w.run(t, "", agenttest.Run{Inputs: in, Endpoints: []agent.Endpoint{wifEndpoint()}})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v", res.Errors)
	assert.Empty(t, w.devReqs.last().Get("X-Databricks-Azure-SP-Management-Token"))

	rid := "/subscriptions/a1b2c3d4-0000-4000-8000-000000000001/resourceGroups/rg-mlops/providers/Microsoft.Databricks/workspaces/dbw-dev"
	in["useManagementToken"], in["workspaceResourceId"] = "true", rid
	res = w.run(t, "", agenttest.Run{Inputs: in, Endpoints: []agent.Endpoint{wifEndpoint()}})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v", res.Errors)
	h := w.devReqs.last()
	assert.Equal(t, rid, h.Get("X-Databricks-Azure-Workspace-Resource-Id"))
	assert.Contains(t, res.Registered, h.Get("X-Databricks-Azure-SP-Management-Token"))
}

// TestProxy: with the agent's proxy, every client tunnels through it with
// the proxy credentials, except URLs of the bypass list.
func TestProxy(t *testing.T) {
	w := newWorld(t)
	proxy := w.az.Env()
	env := map[string]string{
		"AGENT_PROXYURL":             proxy["AGENT_PROXYURL"],
		"AGENT_PROXYUSERNAME":        proxy["AGENT_PROXYUSERNAME"],
		"SECRET_AGENT_PROXYPASSWORD": proxy["SECRET_AGENT_PROXYPASSWORD"],
		"AGENT_PROXYBYPASSLIST":      `["login\\.microsoftonline\\.com"]`,
	}
	proxyAddr := strings.TrimPrefix(w.az.ProxyURL, "http://")
	res := w.run(t, "", agenttest.Run{
		Inputs:    map[string]string{"connectionMethod": "keyVault", "keyVaultName": "kv-mlops", "azureSubscription": wifConnection},
		Endpoints: []agent.Endpoint{wifEndpoint()}, Env: env, Debug: true,
	})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v", res.Errors)
	tunnelled := w.az.Tunnelled()
	assert.Contains(t, tunnelled, devopsHost+":443", "pipeline OIDC endpoint")
	assert.Contains(t, tunnelled, vaultHost+":443", "Key Vault")
	assert.Contains(t, tunnelled, prodHost+":443", "Databricks")
	assert.NotContains(t, tunnelled, entraHost+":443", "bypassed")
	assert.Contains(t, res.Stdout, "via proxy "+proxyAddr)

	t.Run("wrong proxy password", func(t *testing.T) {
		env["SECRET_AGENT_PROXYPASSWORD"] = "wrong-password"
		res := w.run(t, "", agenttest.Run{Inputs: map[string]string{"connectionMethod": "token", "workspaceUrl": devHost, "token": devPAT}, Env: env})
		require.Equal(t, agent.Failed, res.Result)
		assert.Contains(t, strings.Join(res.Errors, "\n"), "refused the proxy credentials")
	})
}

// TestCertificates: a server certificate of the agent's CA is trusted only
// through Agent.CAInfo, or when the agent skips validation.
func TestCertificates(t *testing.T) {
	w := newWorld(t)
	in := map[string]string{"connectionMethod": "token", "workspaceUrl": devHost, "token": devPAT}
	res := w.run(t, "", agenttest.Run{Inputs: in, Env: map[string]string{"AGENT_CAINFO": ""}})
	require.Equal(t, agent.Failed, res.Result)
	assert.Contains(t, strings.Join(res.Errors, "\n"), "Agent.CAInfo")

	res = w.run(t, "", agenttest.Run{Inputs: in, Env: map[string]string{"AGENT_CAINFO": "", "AGENT_SKIPCERTVALIDATION": "true"}})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v", res.Errors)
	assert.Contains(t, res.Stdout, "skip TLS certificate validation")
}

func TestNormalizeHost(t *testing.T) {
	good := map[string]string{
		"https://adb-1.7.azuredatabricks.net":                  "https://adb-1.7.azuredatabricks.net",
		"https://adb-1.7.azuredatabricks.net/":                 "https://adb-1.7.azuredatabricks.net",
		"  https://ADB-1.7.AzureDatabricks.net///  ":           "https://adb-1.7.azuredatabricks.net",
		"adb-1.7.azuredatabricks.net":                          "https://adb-1.7.azuredatabricks.net",
		"https://adb-1.7.azuredatabricks.net/?o=1#job/2/run/3": "https://adb-1.7.azuredatabricks.net",
		"https://adb-1.7.azuredatabricks.net:443/api/2.0":      "https://adb-1.7.azuredatabricks.net",
		"https://127.0.0.1:8443":                               "https://127.0.0.1:8443",
	}
	for in, want := range good {
		got, err := auth.NormalizeHost(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "http://adb-1.7.azuredatabricks.net", "https://", "https://user:pw@adb-1.azuredatabricks.net",
		"https://adb_1.azuredatabricks.net", "https://localhost-only", "$(databricks-host)", "ftp://x.y", "https://adb-1.net:99999"} {
		_, err := auth.NormalizeHost(in)
		assert.Error(t, err, in)
	}
}

// TestTaskInputs: the four tasks declare the credential inputs, and
// ReadOptions reads each of them (reading an undeclared input panics).
func TestTaskInputs(t *testing.T) {
	for _, task := range []string{"DatabricksTrain", "MLflowPromote", "BatchScore", "ModelServe"} {
		def, err := tasks.Definition(task)
		require.NoError(t, err)
		groups := []string{""}
		if task == "MLflowPromote" {
			groups = append(groups, "target")
		}
		for _, g := range groups {
			want := map[string]bool{}
			for _, in := range def.Inputs {
				if in.GroupName == map[string]string{"": "workspace", "target": "target"}[g] {
					want[in.Name] = true
				}
			}
			assert.Len(t, want, 17, "%s group %q", task, g)
			for _, m := range []string{"azureRM", "databricks", "databricksFederation", "variableGroup", "keyVault", "token"} {
				in := def.InputsFrom(agent.Env{"INPUT_" + agent.VariableKey(auth.InputName(g, "connectionMethod")): m})
				assert.NotPanics(t, func() { auth.ReadOptions(in, g) }, "%s %s", task, m)
			}
		}
	}
}
