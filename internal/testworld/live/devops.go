package live

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/brickferry/brickferry/internal/devops"
	"github.com/brickferry/brickferry/internal/testworld/demo"
)

// DevOps is the Azure DevOps organization and project `make live-devops`
// checks. Only part of issue 24's live Azure DevOps suite is built: this
// check that the project holds what the sample pipelines read (their
// variable groups), through the Azure DevOps REST API
// (azure-devops-go-api's task agent client, as the tasks read them:
// package devops). Publishing, sharing and installing the extension and the
// launcher's download are Publish's and CheckDownload's (publish.go);
// creating and running the pipeline (pipelines and build clients) and
// reading its steps' results are not built here (docs/live.md).
type DevOps struct {
	CollectionURL string // https://dev.azure.com/<org>
	Project       string
	Token         string // an Entra ID access token for Azure DevOps
	HTTP          *http.Client
}

// Environment variables of make live-devops.
const (
	EnvDevOpsURL     = "BRICKFERRY_LIVE_DEVOPS_URL"     // https://dev.azure.com/<org>
	EnvDevOpsProject = "BRICKFERRY_LIVE_DEVOPS_PROJECT" // the project of the sample pipeline
	EnvDevOpsToken   = "BRICKFERRY_LIVE_DEVOPS_TOKEN"   // az account get-access-token --resource 499b84ac-1321-427f-aa17-267ca6975798
)

// DevOpsFromEnv reads DevOps from the environment getenv reads; it refuses
// without BRICKFERRY_LIVE=1 (ErrNotEnabled) and names each missing setting.
func DevOpsFromEnv(getenv func(string) string) (DevOps, error) {
	if getenv(EnvGate) != "1" {
		return DevOps{}, ErrNotEnabled
	}
	d := DevOps{CollectionURL: getenv(EnvDevOpsURL), Project: getenv(EnvDevOpsProject), Token: getenv(EnvDevOpsToken), HTTP: http.DefaultClient}
	var problems []string
	if !regexp.MustCompile(`^https://[^/\s]+(/[^/\s]+)?/?$`).MatchString(d.CollectionURL) {
		problems = append(problems, fmt.Sprintf("%s=%q: give the organization's URL, https://dev.azure.com/<org>", EnvDevOpsURL, d.CollectionURL))
	}
	if d.Project == "" {
		problems = append(problems, EnvDevOpsProject+" is not set: give the project of the sample pipeline")
	}
	if d.Token == "" {
		problems = append(problems, EnvDevOpsToken+" is not set: give an Entra ID token for Azure DevOps (az account get-access-token --resource 499b84ac-1321-427f-aa17-267ca6975798 --query accessToken -o tsv)")
	}
	if len(problems) > 0 {
		return DevOps{}, fmt.Errorf("the live Azure DevOps settings:\n  %s", strings.Join(problems, "\n  "))
	}
	return d, nil
}

// CheckProject lists what the project lacks for the sample pipelines
// (docs/setup.md): the group `databricks` with databricks-host-dev and
// databricks-token-dev (secret), and the group
// `databricks-prod` linked to a Key Vault with databricks-host and
// databricks-token. An empty list: nothing lacks.
func CheckProject(ctx context.Context, d DevOps) ([]string, error) {
	c := devops.New(d.CollectionURL, d.Token, d.HTTP)
	var problems []string
	want := []struct {
		group    string
		keyVault bool
		vars     map[string]bool // name → must be secret
	}{
		{"databricks", false, map[string]bool{"databricks-host-dev": false, "databricks-token-dev": true}},
		{"databricks-prod", true, map[string]bool{"databricks-host": true, "databricks-token": true}},
	}
	for _, w := range want {
		g, err := c.VariableGroup(ctx, d.Project, w.group)
		if err != nil {
			problems = append(problems, fmt.Sprintf("variable group %s: %v", w.group, err))
			continue
		}
		if g.KeyVaultLinked() != w.keyVault {
			problems = append(problems, fmt.Sprintf("variable group %s: linked to a Key Vault: %v, the sample expects %v", w.group, g.KeyVaultLinked(), w.keyVault))
		}
		for name, secret := range w.vars {
			v, ok := g.Lookup(name)
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("variable group %s: no variable %s", w.group, name))
			case secret && !v.Secret:
				problems = append(problems, fmt.Sprintf("variable group %s: %s is not secret", w.group, name))
			}
		}
	}
	return problems, nil
}

// sampleGroups names what CheckProject reads, for the plan.
var sampleGroups = []string{"databricks", "databricks-prod"}

// PrintDevOpsPlan writes what make live-devops reads (it creates nothing).
func PrintDevOpsPlan(w io.Writer, d DevOps) {
	fmt.Fprintf(w, "Azure DevOps %s, project %s: reads the variable groups %s (creates and deletes nothing)\n", d.CollectionURL, d.Project, strings.Join(sampleGroups, ", "))
	fmt.Fprintf(w, "The sample pipeline it checks for: %s\n", demo.UnityCatalog().File)
}
