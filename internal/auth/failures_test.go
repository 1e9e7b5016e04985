package auth_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/azurestandin"
)

// TestFailures: bad inputs and failing identities end in a clear error that
// names the workspace, the method and what to fix, with no secret in the
// output (agenttest fails the test on any leaked secret).
func TestFailures(t *testing.T) {
	w := newWorld(t)
	w.addGroup(azurestandin.VariableGroup{Name: "databricks", Variables: map[string]azurestandin.Variable{
		"databricks-host":  {Value: "https://" + devHost},
		"databricks-token": {Value: devPAT, Secret: true},
	}})
	w.addGroup(azurestandin.VariableGroup{Name: "databricks-kv", KeyVault: &azurestandin.GroupVault{Vault: "kv-mlops"},
		Variables: map[string]azurestandin.Variable{"databricks-host": {}, "databricks-token": {}}})
	w.addGroup(azurestandin.VariableGroup{Name: "forbidden", Restricted: true})
	sp := func(client, secret string) []agent.Endpoint { return []agent.Endpoint{secretEndpoint(client, secret)} }
	spID := secretEndpoint(secretClientID, spSecret).ID
	token := func(extra map[string]string) map[string]string {
		in := map[string]string{"connectionMethod": "token", "workspaceUrl": devHost, "token": devPAT}
		for k, v := range extra {
			in[k] = v
		}
		return in
	}
	kv := func(extra map[string]string) map[string]string {
		in := map[string]string{"connectionMethod": "keyVault", "keyVaultName": "kv-mlops", "azureSubscription": spID}
		for k, v := range extra {
			in[k] = v
		}
		return in
	}
	arm := map[string]string{"connectionMethod": "azureRM", "azureSubscription": spID, "workspaceUrl": devHost}
	cases := []struct {
		name string
		run  agenttest.Run
		want []string
	}{
		{"no workspace URL", agenttest.Run{Inputs: token(map[string]string{"workspaceUrl": ""})},
			[]string{"'Workspace URL' (workspaceUrl): is required", "e.g. https://adb-"}},
		{"http workspace URL", agenttest.Run{Inputs: token(map[string]string{"workspaceUrl": "http://" + devHost})},
			[]string{"workspaceUrl", "must use https"}},
		{"workspace URL macro not expanded", agenttest.Run{Inputs: token(map[string]string{"workspaceUrl": "$(databricks-host)"})},
			[]string{"'Workspace URL' (workspaceUrl): the macro $(databricks-host) was not expanded: no variable databricks-host is defined"}},
		{"not a host name", agenttest.Run{Inputs: token(map[string]string{"workspaceUrl": "https://my workspace"})},
			[]string{"workspaceUrl", "not a URL"}},
		{"token macro not expanded", agenttest.Run{Inputs: token(map[string]string{"token": "$(databricks-token)"})},
			[]string{"'Access token' (token): the macro $(databricks-token) was not expanded: no variable databricks-token is defined"}},
		{"token refused", agenttest.Run{Inputs: token(map[string]string{"token": "dapi-revoked-00000000000000000000"})},
			[]string{"workspace (token input)", "403", "was refused", "create a new token"}},
		{"host does not resolve", agenttest.Run{Inputs: token(map[string]string{"workspaceUrl": unknownHost})},
			[]string{"workspace (token input)", "does not resolve"}},
		{"no Azure Resource Manager connection", agenttest.Run{Inputs: map[string]string{"connectionMethod": "azureRM", "workspaceUrl": devHost}},
			[]string{"'Azure Resource Manager connection' (azureSubscription): is required"}},
		{"wrong client secret", agenttest.Run{Inputs: arm, Endpoints: sp(secretClientID, "not-the-secret-123")},
			[]string{"workspace (Azure Resource Manager connection)", "7000215", "client secret is wrong"}},
		{"expired client secret", agenttest.Run{Inputs: arm, Endpoints: sp(secretClientID, expiredSecret)},
			[]string{"client secret has expired"}},
		{"application not in tenant", agenttest.Run{Inputs: arm, Endpoints: sp("99999999-9999-4999-8999-999999999999", spSecret)},
			[]string{"700016", "no such application in the tenant"}},
		{"principal not a workspace user", agenttest.Run{Inputs: arm, Endpoints: sp(strangerID, spSecret)},
			[]string{"workspace (Azure Resource Manager connection)", "is not a user of this workspace", "Service principals"}},
		{"federated credential mismatch", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "azureRM", "azureSubscription": wifConnection, "workspaceUrl": devHost},
			Endpoints: []agent.Endpoint{armEndpoint(wifConnection, "WorkloadIdentityFederation", map[string]string{"tenantid": tenantID, "serviceprincipalid": secretClientID}, nil)}},
			[]string{"700213", "no federated credential matching this service connection"}},
		{"no OIDC endpoint", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "azureRM", "azureSubscription": wifConnection, "workspaceUrl": devHost},
			Endpoints: []agent.Endpoint{wifEndpoint()}, Env: map[string]string{"SYSTEM_OIDCREQUESTURI": ""}},
			[]string{"System.OidcRequestUri"}},
		{"publish profile connection", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "azureRM", "azureSubscription": "pp", "workspaceUrl": devHost},
			Endpoints: []agent.Endpoint{armEndpoint("pp", "PublishProfile", map[string]string{"tenantid": tenantID}, nil)}},
			[]string{"azureSubscription", "PublishProfile scheme, which cannot sign in"}},
		{"management token without resource id", agenttest.Run{Inputs: map[string]string{"connectionMethod": "azureRM", "azureSubscription": spID, "workspaceUrl": devHost, "useManagementToken": "true"}, Endpoints: sp(secretClientID, spSecret)},
			[]string{"workspaceResourceId", "is required when the service principal is not yet a workspace user"}},
		{"OAuth client secret wrong", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "databricks", "databricksConnection": databricksEndpoint("None", nil).ID},
			Endpoints: []agent.Endpoint{databricksEndpoint("None", map[string]string{"clientId": oauthClientID, "clientSecret": "wrong-oauth-secret"})}},
			[]string{"workspace (Databricks service connection)", "refused the client id or secret"}},
		{"Databricks connection without credentials", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "databricks", "databricksConnection": databricksEndpoint("Token", nil).ID},
			Endpoints: []agent.Endpoint{databricksEndpoint("Token", map[string]string{})}},
			[]string{"databricksConnection", "holds no personal access token"}},
		{"bad suffix", agenttest.Run{Inputs: map[string]string{"variableSuffix": "dev prod"}},
			[]string{"variableSuffix", "is not a suffix"}},
		{"group not found", agenttest.Run{Inputs: map[string]string{"variableGroup": "databricks-typo"}},
			[]string{"workspace (variable group)", "no variable group named \"databricks-typo\""}},
		{"group not linked", agenttest.Run{Inputs: map[string]string{}},
			[]string{"is not linked to this pipeline", "variables: - group: databricks"}},
		{"group may not be read", agenttest.Run{Inputs: map[string]string{"variableGroup": "forbidden"}},
			[]string{"Reader role"}},
		{"Key Vault-linked group without connection", agenttest.Run{Inputs: map[string]string{"variableGroup": "databricks-kv"}},
			[]string{"linked to key vault kv-mlops", "give an Azure Resource Manager connection"}},
		{"Key Vault access denied", agenttest.Run{Inputs: kv(nil), Endpoints: sp(strangerID, spSecret)},
			[]string{"workspace (Azure Key Vault)", "denied reading secret databricks-host", "Key Vault Secrets User"}},
		{"Key Vault secret missing", agenttest.Run{Inputs: kv(map[string]string{"keyVaultTokenSecret": "databricks-token-missing"}), Endpoints: sp(secretClientID, spSecret)},
			[]string{"has no secret named databricks-token-missing"}},
		{"Key Vault of another tenant", agenttest.Run{Inputs: kv(map[string]string{"keyVaultName": "kv-other", "workspaceUrl": devHost}), Endpoints: sp(secretClientID, spSecret)},
			[]string{"belongs to Microsoft Entra tenant " + otherTenantID}},
		{"not a vault name", agenttest.Run{Inputs: kv(map[string]string{"keyVaultName": "https://kv-mlops.vault.azure.net"}), Endpoints: sp(secretClientID, spSecret)},
			[]string{"keyVaultName", "is not a Key Vault name"}},
		{"managed identity not assigned", agenttest.Run{
			Inputs:    map[string]string{"connectionMethod": "azureRM", "azureSubscription": "mi", "workspaceUrl": devHost},
			Endpoints: []agent.Endpoint{armEndpoint("mi", "ManagedServiceIdentity", map[string]string{"tenantid": tenantID}, map[string]string{"msiclientId": "12121212-1212-4212-8212-121212121212"})}},
			[]string{"workspace (Azure Resource Manager connection)", "ManagedIdentityCredential"}},
		{"unknown method", agenttest.Run{Inputs: map[string]string{"connectionMethod": "password"}},
			[]string{"connectionMethod", "\"password\" is not one of"}},
	}
	require.GreaterOrEqual(t, len(cases), 20)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run.Debug = true
			res := w.run(t, "", c.run)
			require.Equal(t, agent.Failed, res.Result)
			msg := strings.Join(res.Errors, "\n")
			t.Log(msg)
			for _, want := range c.want {
				assert.Contains(t, msg, want)
			}
		})
	}
}
