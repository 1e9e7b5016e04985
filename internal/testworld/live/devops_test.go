package live_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/azurestandin"
	"github.com/brickferry/brickferry/internal/testworld/demo"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/live"
)

// TestLiveDevOps is `make live-devops`: the project the environment names
// holds what the sample pipelines read. Without BRICKFERRY_LIVE=1 it does
// nothing; TestLiveDevOpsOnStandIn runs the same check in make test.
func TestLiveDevOps(t *testing.T) {
	d := fromEnv(t, live.DevOpsFromEnv)
	live.PrintDevOpsPlan(os.Stdout, d)
	problems, err := live.CheckProject(context.Background(), d)
	require.NoError(t, err)
	assert.Empty(t, problems)
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
