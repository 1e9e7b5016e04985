package auth_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/runwait"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/azurestandin"
)

// TestFederationRefused: a token whose subject the service principal's
// federation policy does not name is refused before any API call, and the
// error names the subject presented and the one the policy expects.
func TestFederationRefused(t *testing.T) {
	w := newWorld(t)
	w.dev.ResetRequests()
	// fedClientID's policy names this pipeline's subject; the step presents
	// the token of connection mlops-wif.
	res := w.run(t, "", agenttest.Run{
		Inputs:    map[string]string{"connectionMethod": "databricksFederation", "workspaceUrl": devHost, "federationClientId": fedClientID, "federationSubject": "serviceConnection", "azureSubscription": wifConnection},
		Endpoints: []agent.Endpoint{wifEndpoint()},
	})
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	require.Len(t, res.Errors, 1)
	msg := res.Errors[0]
	assert.Contains(t, msg, "400 invalid_request")
	assert.Contains(t, msg, `subject "sc://contoso/mlops/mlops-wif"`, "the subject presented")
	assert.Contains(t, msg, `issuer "`+w.az.OIDCIssuer()+`"`)
	assert.Contains(t, msg, `audience "api://AzureADTokenExchange"`)
	assert.Contains(t, msg, "Databricks service principal "+fedClientID)
	assert.Contains(t, msg, `If the policy expects subject "p://contoso/mlops/churn-mlops" instead`, "the subject the policy expects: this pipeline's")
	for _, r := range w.dev.Requests() {
		assert.Equal(t, "/oidc/v1/token", r.Path, "no API call after the refusal")
	}
}

// TestFederationInputs: the federation inputs are checked before any call.
func TestFederationInputs(t *testing.T) {
	w := newWorld(t)
	res := w.run(t, "", agenttest.Run{Inputs: map[string]string{"connectionMethod": "databricksFederation", "federationClientId": "my-sp", "federationSubject": "serviceConnection"}})
	require.Equal(t, agent.Failed, res.Result)
	joined := ""
	for _, e := range res.Errors {
		joined += e + "\n"
	}
	assert.Contains(t, joined, "workspaceUrl")
	assert.Contains(t, joined, `"my-sp" is not the application id of a Databricks service principal`)
	assert.Contains(t, joined, "azureSubscription")
	assert.Empty(t, w.az.Requests(), "no remote call")
	assert.Empty(t, w.dev.Requests(), "no remote call")
}

// TestThreeHourRun: a step that waits three hours (simulated) for a run
// keeps polling with every connection method, through at least two token
// refreshes for each method whose tokens expire: Entra (stand-in tokens live
// 4 minutes), workspace OAuth (1 hour) and Databricks federation (as long as
// the pipeline's 10-minute OIDC token). A method with a token that does not
// expire on our side (PAT) is included to show the wait itself.
func TestThreeHourRun(t *testing.T) {
	w := newWorld(t)
	w.addGroup(azurestandin.VariableGroup{Name: "databricks", Variables: map[string]azurestandin.Variable{
		"databricks-host-dev": {Value: "https://" + devHost}, "databricks-token-dev": {Value: devPAT, Secret: true},
	}})
	// tokens counts the requests that obtain a workspace token.
	type count func() int
	entraTokens := func() int { n, _ := w.counts(); return n }
	oauthTokens := func() int {
		return len(w.dev.RequestsTo(http.MethodPost, "/oidc/v1/token")) + len(w.prod.RequestsTo(http.MethodPost, "/oidc/v1/token"))
	}
	cases := []struct {
		name    string
		run     agenttest.Run
		tokens  count
		refresh bool
	}{
		{"azureRM workload identity federation", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "azureRM", "azureSubscription": wifConnection, "workspaceUrl": devHost},
			Endpoints: []agent.Endpoint{wifEndpoint()},
		}, entraTokens, true},
		{"azureRM service principal secret", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "azureRM", "azureSubscription": secretEndpoint(secretClientID, spSecret).ID, "workspaceUrl": devHost},
			Endpoints: []agent.Endpoint{secretEndpoint(secretClientID, spSecret)},
		}, entraTokens, true},
		{"azureRM service principal certificate", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "azureRM", "azureSubscription": w.certEndpoint().ID, "workspaceUrl": devHost},
			Endpoints: []agent.Endpoint{w.certEndpoint()},
		}, entraTokens, true},
		{"azureRM managed identity", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "azureRM", "azureSubscription": miEndpoint().ID, "workspaceUrl": devHost},
			Endpoints: []agent.Endpoint{miEndpoint()},
		}, nil, true},
		{"databricks connection OAuth M2M", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "databricks", "databricksConnection": databricksEndpoint("None", nil).ID},
			Endpoints: []agent.Endpoint{databricksEndpoint("None", map[string]string{"clientId": oauthClientID, "clientSecret": oauthSecret})},
		}, oauthTokens, true},
		{"Key Vault OAuth M2M", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "keyVault", "keyVaultName": "kv-mlops", "keyVaultCredential": "oauth", "workspaceUrl": prodHost, "azureSubscription": wifConnection},
			Endpoints: []agent.Endpoint{wifEndpoint()},
		}, oauthTokens, true},
		{"Databricks federation, pipeline token", agenttest.Run{
			Inputs: map[string]string{"connectionMethod": "databricksFederation", "workspaceUrl": devHost, "federationClientId": fedClientID},
		}, oauthTokens, true},
		{"Databricks federation, service connection token", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "databricksFederation", "workspaceUrl": prodHost, "federationClientId": fedConnClient, "federationSubject": "serviceConnection", "azureSubscription": wifConnection},
			Endpoints: []agent.Endpoint{wifEndpoint()},
		}, oauthTokens, true},
		{"databricks connection PAT", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "databricks", "databricksConnection": databricksEndpoint("Token", nil).ID},
			Endpoints: []agent.Endpoint{databricksEndpoint("Token", map[string]string{"apitoken": prodPAT})},
		}, nil, false},
		{"Key Vault PAT", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "keyVault", "keyVaultName": "kv-mlops", "azureSubscription": wifConnection},
			Endpoints: []agent.Endpoint{wifEndpoint()},
		}, nil, false},
		{"variable group", agenttest.Run{
			Variables: map[string]string{"databricks-host-dev": "https://" + devHost + "/"},
			Secrets:   map[string]string{"databricks-token-dev": devPAT},
			Inputs:    map[string]string{"variableSuffix": "dev"},
		}, nil, false},
		{"token input", agenttest.Run{
			Inputs: map[string]string{"connectionMethod": "token", "workspaceUrl": devHost, "token": devPAT},
		}, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := 0
			if c.tokens != nil {
				before = c.tokens()
			}
			var polls int
			var run *jobs.Run
			wait := func(ctx context.Context, t *testing.T, w *world, ws *auth.Workspace, log *agent.Log) error {
				api := jobs.NewJobs(ws.Client)
				sub, err := api.Submit(ws.Context(ctx), jobs.SubmitRun{RunName: "three hours", Tasks: []jobs.SubmitTask{{
					TaskKey: "train", NotebookTask: &jobs.NotebookTask{NotebookPath: "/Shared/train"},
					NewCluster: &compute.ClusterSpec{SparkVersion: "15.4.x-cpu-ml-scala2.12", NodeTypeId: "Standard_DS3_v2", NumWorkers: 1},
				}}})
				if err != nil {
					return ws.Explain(err)
				}
				waiter := runwait.Waiter{Runs: api, Clock: w.clock, Interval: func(time.Duration) time.Duration { return 5 * time.Minute },
					OnChange: func(runwait.Change) {}}
				counting := countingRuns{Runs: api, n: &polls}
				waiter.Runs = counting
				run, err = waiter.Wait(ws.Context(ctx), sub.RunId)
				return ws.Explain(err)
			}
			start := w.clock.Now()
			res := w.run(t, "", c.run, wait)
			require.Equal(t, agent.Succeeded, res.Result, "errors: %v", res.Errors)
			require.NotNil(t, run)
			assert.Equal(t, jobs.RunResultStateSuccess, run.State.ResultState)
			assert.GreaterOrEqual(t, w.clock.Now().Sub(start), 3*time.Hour, "three simulated hours passed")
			assert.GreaterOrEqual(t, polls, 3*12, "polled every 5 minutes for three hours")
			if c.tokens != nil {
				assert.GreaterOrEqual(t, c.tokens()-before, 3, "the first token and at least two refreshes")
				t.Logf("%v simulated, %d polls, %d token requests, %d secrets registered", w.clock.Now().Sub(start), polls, c.tokens()-before, len(res.Registered))
			}
			if c.refresh {
				assert.GreaterOrEqual(t, len(res.Registered), 3, "every new token registered as a secret")
			}
		})
	}
}

// countingRuns counts runs/get calls.
type countingRuns struct {
	runwait.Runs
	n *int
}

func (c countingRuns) GetRun(ctx context.Context, r jobs.GetRunRequest) (*jobs.Run, error) {
	*c.n++
	return c.Runs.GetRun(ctx, r)
}
