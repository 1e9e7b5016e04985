package auth_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/azurestandin"
)

// The scenarios of issue 20 through the built executable, as the agent runs
// it: the Azure DevOps, Entra ID and Key Vault stand-ins behind the agent's
// proxy, the workspaces at their public names.

// exeRun is MLflowPromote as the agent starts it in a job that has the
// linked group `databricks` (the dev workspace's databricks-host and secret
// databricks-token).
func (w *world) exeRun(inputs map[string]string, endpoints ...agent.Endpoint) *agenttest.Result {
	w.t.Helper()
	res := agenttest.Run{
		Task: "MLflowPromote", Inputs: inputs, Endpoints: endpoints,
		Variables: map[string]string{"databricks-host": "https://" + devHost},
		Secrets:   map[string]string{"databricks-token": devPAT},
		Env:       w.az.Env(), JobToken: w.az.JobToken,
	}.Exec(w.t, agenttest.Executable(w.t))
	require.Equal(w.t, 0, res.ExitCode, res.Stderr)
	require.Equal(w.t, 1, res.Completions, res.Stdout)
	return res
}

// registerChurn registers version 1 of the workspace registry model churn
// in the prod workspace only.
func (w *world) registerChurn() {
	w.prod.RegisterModel(w.t, "churn")
	w.clock.Advance(time.Minute)
}

// TestNamedGroupWinsInTheExecutable: a step that names the group
// databricks-prod works on the prod workspace although the job's own
// databricks-host and databricks-token (same names, from the linked group)
// are the dev workspace's; when the group's token cannot be tied to it, the
// step refuses before any request to either workspace.
func TestNamedGroupWinsInTheExecutable(t *testing.T) {
	w := newWorld(t)
	w.registerChurn()
	w.addGroup(azurestandin.VariableGroup{Name: "databricks", Variables: map[string]azurestandin.Variable{
		"databricks-host": {Value: "https://" + devHost}, "databricks-token": {Value: devPAT, Secret: true},
	}})
	w.addGroup(azurestandin.VariableGroup{Name: "databricks-prod", KeyVault: &azurestandin.GroupVault{Vault: "kv-mlops"},
		Variables: map[string]azurestandin.Variable{"databricks-host": {}, "databricks-token": {}}})
	w.addGroup(azurestandin.VariableGroup{Name: "databricks-prod-secret", Variables: map[string]azurestandin.Variable{
		"databricks-host": {Value: "https://" + prodHost}, "databricks-token": {Value: prodPAT, Secret: true},
	}})
	sp := secretEndpoint(secretClientID, spSecret)
	transition := map[string]string{"command": "transition", "modelName": "churn", "modelVersion": "1", "stage": "Staging"}
	with := func(kv ...string) map[string]string {
		in := map[string]string{}
		for k, v := range transition {
			in[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			in[kv[i]] = kv[i+1]
		}
		return in
	}

	w.prod.ResetRequests()
	res := w.exeRun(with("variableGroup", "databricks-prod-secret"))
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], `cannot be tied to variable group "databricks-prod-secret": the group's databricks-host is https://`+prodHost+`, but the job has databricks-host = https://`+devHost)
	assert.Empty(t, w.dev.Requests(), "nothing reached the job's workspace")
	assert.Empty(t, w.prod.Requests(), "nothing reached the group's workspace with a token that is not the group's")

	res = w.exeRun(with("variableGroup", "databricks-prod", "azureSubscription", sp.ID), sp)
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Contains(t, res.Stdout, "The workspace is https://"+prodHost+": databricks-host (secret databricks-host of key vault kv-mlops, which group databricks-prod is linked to)")
	assert.Contains(t, res.Stdout, "The job's variable databricks-host (https://"+devHost+") is not the one of group databricks-prod")
	mv, err := ml.NewModelRegistry(w.prod.Client(t)).GetModelVersion(context.Background(), ml.GetModelVersionRequest{Name: "churn", Version: "1"})
	require.NoError(t, err)
	assert.Equal(t, "Staging", mv.ModelVersion.CurrentStage, "the prod workspace's version moved")
	assert.Empty(t, w.dev.Requests(), "nothing reached the job's workspace")
}

// TestCopyToItselfIsRefusedInTheExecutable: a copy whose target resolves
// to the source workspace is refused before anything is read or written,
// whether the target has the source's URL or another name of the same
// workspace (same workspace id).
func TestCopyToItselfIsRefusedInTheExecutable(t *testing.T) {
	w := newWorld(t)
	w.addGroup(azurestandin.VariableGroup{Name: "databricks", Variables: map[string]azurestandin.Variable{
		"databricks-host": {Value: "https://" + devHost}, "databricks-token": {Value: devPAT, Secret: true},
	}})
	alias := "adb-1111111111111111.11.privatelink.azuredatabricks.net" // the dev workspace behind Private Link
	w.az.AddHost(alias, w.dev)
	copyTo := func(targetHost string) *agenttest.Result {
		return w.exeRun(map[string]string{"command": "copy", "modelName": "churn", "modelVersion": "1",
			"targetConnectionMethod": "token", "targetWorkspaceUrl": "https://" + targetHost, "targetToken": devPAT})
	}
	for _, tc := range []struct{ target, why string }{
		{devHost, "are the same workspace (https://" + devHost + ")"},
		{alias, "are the same workspace (workspace id " + strconv.FormatInt(w.dev.WorkspaceID, 10) + ", at https://" + devHost + " and at https://" + alias + ")"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			w.dev.ResetRequests()
			res := copyTo(tc.target)
			require.Equal(t, agent.Failed, res.Result, res.Stdout)
			require.Len(t, res.Errors, 1)
			assert.Contains(t, res.Errors[0], "the workspace and the target workspace "+tc.why)
			assert.Contains(t, res.Errors[0], "the workspace's credentials are secret variable databricks-token of group databricks")
			assert.Zero(t, w.dev.Writes(), "nothing written")
			for _, r := range w.dev.Requests() {
				assert.Contains(t, []string{"/api/2.2/jobs/list", "/api/2.0/preview/scim/v2/Me"}, r.Path, "only the connection checks and the workspace ids were read")
			}
		})
	}
}

// TestFederationInTheExecutable: Databricks workload identity federation
// through the built executable: this pipeline's OIDC token, exchanged at the
// workspace, moves a model version; a token whose subject the service
// principal's policy does not name fails the step with a message that names
// the subject presented and the one the policy expects, before any API call.
func TestFederationInTheExecutable(t *testing.T) {
	w := newWorld(t)
	w.registerChurn()
	in := map[string]string{"command": "transition", "modelName": "churn", "modelVersion": "1", "stage": "Staging",
		"connectionMethod": "databricksFederation", "workspaceUrl": "https://" + prodHost, "federationClientId": fedClientID}

	w.prod.ResetRequests()
	res := w.exeRun(in)
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Contains(t, res.Stdout, "as Databricks service principal "+fedClientID+" (federation with this pipeline's OIDC token)")
	mv, err := ml.NewModelRegistry(w.prod.Client(t)).GetModelVersion(context.Background(), ml.GetModelVersionRequest{Name: "churn", Version: "1"})
	require.NoError(t, err)
	assert.Equal(t, "Staging", mv.ModelVersion.CurrentStage)
	for _, r := range w.prod.RequestsTo(http.MethodPost, "/oidc/v1/token") {
		assert.Equal(t, "urn:ietf:params:oauth:grant-type:token-exchange", r.Query.Get("grant_type")+formValue(r.Raw, "grant_type"))
	}
	// The pipeline's OIDC tokens and the Databricks tokens are registered as
	// secrets before use, and appear nowhere else.
	for _, s := range w.az.Minted() {
		assert.Contains(t, res.Registered, s)
	}
	assert.Len(t, res.Registered, 2, "one OIDC token, one Databricks token")
	for _, line := range strings.Split(res.Stdout, "\n") {
		if !strings.HasPrefix(line, "##vso[task.setsecret]") {
			for _, s := range res.Registered {
				assert.NotContains(t, line, s)
			}
		}
	}

	in["federationSubject"], in["azureSubscription"] = "serviceConnection", wifConnection
	w.prod.ResetRequests()
	res = w.exeRun(in, wifEndpoint())
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], `The token presented has subject "sc://contoso/mlops/mlops-wif"`)
	assert.Contains(t, res.Errors[0], `If the policy expects subject "p://contoso/mlops/churn-mlops" instead`)
	for _, r := range w.prod.Requests() {
		assert.Equal(t, "/oidc/v1/token", r.Path, "nothing but the refused exchange")
	}
}

// formValue reads one field of a form-encoded body.
func formValue(raw []byte, key string) string {
	v, _ := url.ParseQuery(string(raw))
	return v.Get(key)
}
