package doctor_test

import (
	"context"
	"crypto/rand"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/doctor"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/azurestandin"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

const (
	host = "adb-1111111111111111.11.azuredatabricks.net"
	sp   = "a5c0e1f2-1111-4a4a-9b9b-0c0c0c0c0c01"

	wifConnection = "8a6f0b3c-1d2e-4f5a-9b8c-7d6e5f4a3b2c"
	wifClient     = "11111111-1111-1111-1111-111111111111"
)

// pat is the workspace's token, made for each run in the shape of a real
// one (crypto/rand's Text: 26 random base32 characters), so that nothing in
// the repository looks like a credential.
var pat = "dapi" + rand.Text()

// world is a workspace at its public name behind the Azure stand-ins, with
// the Unity Catalog model main.ml.churn.
func world(t *testing.T) (*azurestandin.Azure, *emulator.Workspace) {
	t.Helper()
	clock := emulator.NewManualClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	az := azurestandin.Start(t, azurestandin.Options{Clock: clock, Connections: []azurestandin.Connection{
		{Name: "mlops-wif", ID: wifConnection, ClientID: wifClient, Scheme: azurestandin.SchemeWorkloadIdentity},
	}})
	ws := emulator.Start(t, emulator.Options{Token: pat, Clock: clock, OAuthTokenTTL: time.Hour, FederationPolicies: []emulator.FederationPolicy{{
		ServicePrincipal: sp, Issuer: az.OIDCIssuer(), Audiences: []string{azurestandin.OIDCAudience}, Subject: az.PipelineSubject(), Key: az.OIDCKey(),
	}}})
	az.AddHost(host, ws)
	_, err := catalog.NewRegisteredModels(ws.Client(t)).Create(context.Background(), catalog.CreateRegisteredModelRequest{CatalogName: "main", SchemaName: "ml", Name: "churn"})
	require.NoError(t, err)
	ws.ResetRequests()
	return az, ws
}

func runDoctor(t *testing.T, az *azurestandin.Azure, inputs map[string]string) *agenttest.Result {
	t.Helper()
	def, err := doctor.Definition()
	require.NoError(t, err)
	res := agenttest.Run{Task: doctor.Name, Definition: &def, Inputs: inputs, Env: az.Env(), JobToken: az.JobToken}.Exec(t, agenttest.Executable(t))
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Equal(t, 1, res.Completions, res.Stdout)
	return res
}

// TestMissingGrant: the doctor, through the executable, finds that the
// workspace's user may use the catalog and schema but lacks EXECUTE on the
// model and CREATE MODEL on the schema, prints the exact GRANT statements,
// and sends no write request to the workspace.
func TestMissingGrant(t *testing.T) {
	az, ws := world(t)
	ws.Grant(catalog.SecurableTypeCatalog, "main", ws.UserName, catalog.PrivilegeUseCatalog)
	ws.Grant(catalog.SecurableTypeSchema, "main.ml", ws.UserName, catalog.PrivilegeUseSchema)
	ws.Grant(catalog.SecurableTypeTable, "main.ml.customers", ws.UserName, catalog.PrivilegeSelect)
	ws.Grant(catalog.SecurableTypeFunction, "main.ml.churn", "someone-else", catalog.PrivilegeExecute)

	res := runDoctor(t, az, map[string]string{"connectionMethod": "token", "workspaceUrl": host, "token": pat,
		"model": "main.ml.churn", "inputTable": "main.ml.customers", "outputTable": "main.ml.churn_scores"})
	require.Equal(t, agent.SucceededWithIssues, res.Result, res.Stdout)
	out := res.Stdout
	assert.Contains(t, out, "Method: token input (input connectionMethod = token).")
	assert.Contains(t, out, "Token: the token input (not shown).")
	assert.Contains(t, out, "The workspace https://"+host+" answers, and takes the connection for "+ws.UserName+".")
	assert.Contains(t, out, "GRANT EXECUTE ON FUNCTION main.ml.churn TO `"+ws.UserName+"`;")
	assert.Contains(t, out, "GRANT CREATE MODEL ON SCHEMA main.ml TO `"+ws.UserName+"`;")
	assert.Contains(t, out, "GRANT CREATE TABLE ON SCHEMA main.ml TO `"+ws.UserName+"`;")
	assert.Equal(t, 3, strings.Count(out, "GRANT "), "only the missing grants, each once:\n%s", out)
	assert.Contains(t, out, "ModelServe: lacks EXECUTE on FUNCTION main.ml.churn.")
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "##vso[task.setsecret]") {
			assert.NotContains(t, line, pat, "the token appears only where it is registered as a secret")
		}
	}
	assert.Zero(t, ws.Writes(), "the doctor changes nothing: %v", ws.Requests())
	assert.NotEmpty(t, ws.RequestsTo("GET", "/api/2.1/unity-catalog/effective-permissions/FUNCTION/main.ml.churn"))

	// Granted, nothing is missing.
	ws.Grant(catalog.SecurableTypeFunction, "main.ml.churn", ws.UserName, catalog.PrivilegeExecute)
	ws.Grant(catalog.SecurableTypeCatalog, "main", ws.UserName, catalog.PrivilegeAllPrivileges)
	res = runDoctor(t, az, map[string]string{"connectionMethod": "token", "workspaceUrl": host, "token": pat, "model": "main.ml.churn"})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Contains(t, res.Stdout, "Nothing is missing.")
	assert.NotContains(t, res.Stdout, "GRANT ")
}

// TestFederationClaims: for Databricks workload identity federation the
// doctor prints the issuer, subject and audience of the policy, computed from
// the job's variables, and they are what the pipeline's OIDC endpoint
// presents: the doctor then signs in with them.
func TestFederationClaims(t *testing.T) {
	az, ws := world(t)
	res := runDoctor(t, az, map[string]string{"connectionMethod": "databricksFederation", "workspaceUrl": host, "federationClientId": sp})
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Contains(t, res.Stdout, "Workload identity: put these in the Databricks federation policy of service principal "+sp+":")
	assert.Contains(t, res.Stdout, "  issuer:   https://vstoken.dev.azure.com/"+az.OrganizationID())
	assert.Contains(t, res.Stdout, "  subject:  "+az.PipelineSubject())
	assert.Contains(t, res.Stdout, "  audience: api://AzureADTokenExchange")
	assert.Contains(t, res.Stdout, "This job's OIDC token has issuer "+az.OIDCIssuer()+", subject "+az.PipelineSubject()+", audience api://AzureADTokenExchange.")
	assert.Contains(t, res.Stdout, "The workspace https://"+host+" answers")
	assert.Zero(t, ws.Writes()-len(ws.RequestsTo("POST", "/oidc/v1/token")), "nothing but the token exchange")
}

// TestAsScriptStep: the doctor in a script step after BrickferryTools
// (`brickferry doctor --input ...`, local mode under the agent), with the
// job's access token mapped as SYSTEM_ACCESSTOKEN, as a script step must:
// the job's variables and the pipeline's OIDC endpoint are in its
// environment, so federation is checked end to end.
func TestAsScriptStep(t *testing.T) {
	az, ws := world(t)
	env := []string{"TF_BUILD=True", "SYSTEM_ACCESSTOKEN=" + az.JobToken, "HOME=" + t.TempDir()}
	for k, v := range az.Env() {
		if !strings.HasPrefix(k, "ENDPOINT_") {
			env = append(env, k+"="+v)
		}
	}
	cmd := exec.Command(agenttest.Executable(t), "doctor", "--input", "connectionMethod=databricksFederation",
		"--input", "workspaceUrl=https://"+host, "--input", "federationClientId="+sp, "--input", "model=main.ml.churn")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "  subject:  "+az.PipelineSubject())
	assert.Contains(t, string(out), "and takes the connection for "+sp+".")
	assert.Contains(t, string(out), "GRANT EXECUTE ON FUNCTION main.ml.churn TO `"+sp+"`;")
	assert.NotContains(t, string(out), az.JobToken)
	assert.Zero(t, ws.Writes()-len(ws.RequestsTo("POST", "/oidc/v1/token")), "nothing but the token exchange")
}

// TestFederationMismatchDiagnosed: the step presents the token of
// connection mlops-wif while the policy names the pipeline's subject; the
// doctor shows the subject the token really has next to the one the policy
// must name, and the refusal, and nothing is written.
func TestFederationMismatchDiagnosed(t *testing.T) {
	az, ws := world(t)
	wif := agent.Endpoint{ID: wifConnection, URL: "https://management.azure.com/", Scheme: "WorkloadIdentityFederation",
		Parameters: map[string]string{"tenantid": az.TenantID, "serviceprincipalid": wifClient}, Data: map[string]string{"environment": "AzureCloud"}}
	def, err := doctor.Definition()
	require.NoError(t, err)
	res := agenttest.Run{Task: doctor.Name, Definition: &def, Env: az.Env(), JobToken: az.JobToken, Endpoints: []agent.Endpoint{wif},
		Inputs: map[string]string{"connectionMethod": "databricksFederation", "workspaceUrl": host, "federationClientId": sp,
			"federationSubject": "serviceConnection", "azureSubscription": wifConnection}}.Exec(t, agenttest.Executable(t))
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Contains(t, res.Stdout, "  subject:  sc://contoso/mlops/<service connection name>")
	assert.Contains(t, res.Stdout, "This job's OIDC token has issuer "+az.OIDCIssuer()+", subject sc://contoso/mlops/mlops-wif,")
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], `If the policy expects subject "`+az.PipelineSubject()+`" instead`)
	assert.Zero(t, ws.Writes()-len(ws.RequestsTo("POST", "/oidc/v1/token")), "nothing but the refused exchange")
}
