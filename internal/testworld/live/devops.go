package live

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/brickferry/brickferry/internal/devops"
	"github.com/brickferry/brickferry/internal/testworld/demo"
	"github.com/brickferry/brickferry/internal/testworld/pipeline"
)

// DevOps is the Azure DevOps organization and project `make live-devops`
// works in: it checks that the project holds what the sample pipelines read
// (their variable groups, CheckProject, through the task agent client as
// the tasks read them: package devops), then creates or updates a pipeline
// from the Unity Catalog sample, runs it and checks each step through the
// REST API (RunSamplePipeline, the build, pipelines and Git clients).
// Publishing, sharing and installing the extension and the launcher's
// download of BrickferryTools are Publish's and CheckDownload's (publish.go).
type DevOps struct {
	CollectionURL string // https://dev.azure.com/<org>
	Project       string
	Token         string // an Entra ID access token for Azure DevOps
	HTTP          *http.Client

	// Repository is the project's Azure Repos Git repository holding this
	// repository's tree; Branch the branch the run uses (refs/heads/main).
	Repository, Branch string
	// PipelineName and PipelineFolder name the pipeline it creates or
	// updates (folder `\brickferry-live`).
	PipelineName, PipelineFolder string
	// Connection is the Azure Resource Manager service connection the
	// sample's prod steps name (azureSubscription, targetAzureSubscription).
	Connection string
	// Root is the local copy of the repository: the sample's steps are read
	// from it.
	Root string
	// Timeout bounds the wait for the run; Poll is the wait between reads.
	Timeout, Poll time.Duration
}

// Environment variables of make live-devops.
const (
	EnvDevOpsURL        = "BRICKFERRY_LIVE_DEVOPS_URL"        // https://dev.azure.com/<org>
	EnvDevOpsProject    = "BRICKFERRY_LIVE_DEVOPS_PROJECT"    // the project of the sample pipeline
	EnvDevOpsToken      = "BRICKFERRY_LIVE_DEVOPS_TOKEN"      // az account get-access-token --resource 499b84ac-1321-427f-aa17-267ca6975798
	EnvDevOpsRepository = "BRICKFERRY_LIVE_DEVOPS_REPOSITORY" // the Azure Repos Git repository holding this repository
	EnvDevOpsBranch     = "BRICKFERRY_LIVE_DEVOPS_BRANCH"     // default refs/heads/main
	EnvDevOpsPipeline   = "BRICKFERRY_LIVE_DEVOPS_PIPELINE"   // default brickferry-live-uc
	EnvDevOpsConnection = "BRICKFERRY_LIVE_DEVOPS_CONNECTION" // default brickferry-prod, the sample's
	EnvDevOpsTimeout    = "BRICKFERRY_LIVE_DEVOPS_TIMEOUT_MINUTES"
)

// DevOpsFromEnv reads DevOps from the environment getenv reads, with root
// the local repository; it refuses without BRICKFERRY_LIVE=1 (ErrNotEnabled)
// and names each missing or wrong setting.
func DevOpsFromEnv(getenv func(string) string, root string) (DevOps, error) {
	if getenv(EnvGate) != "1" {
		return DevOps{}, ErrNotEnabled
	}
	d := DevOps{
		CollectionURL: getenv(EnvDevOpsURL), Project: getenv(EnvDevOpsProject), Token: getenv(EnvDevOpsToken), HTTP: http.DefaultClient,
		Repository: getenv(EnvDevOpsRepository), Branch: orString(getenv(EnvDevOpsBranch), "refs/heads/main"),
		PipelineName: orString(getenv(EnvDevOpsPipeline), "brickferry-live-uc"), PipelineFolder: `\brickferry-live`,
		Connection: orString(getenv(EnvDevOpsConnection), demo.ProdConnection), Root: root,
		Timeout: 60 * time.Minute, Poll: 10 * time.Second,
	}
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
	if d.Repository == "" {
		problems = append(problems, EnvDevOpsRepository+" is not set: give the project's Azure Repos Git repository that holds this repository (pushed), whose "+demo.UnityCatalog().File+" the pipeline runs")
	}
	if !strings.HasPrefix(d.Branch, "refs/heads/") {
		problems = append(problems, fmt.Sprintf("%s=%q: give a branch as refs/heads/<name>", EnvDevOpsBranch, d.Branch))
	}
	if v := getenv(EnvDevOpsTimeout); v != "" {
		m, err := strconv.Atoi(v)
		if err != nil || m < 1 {
			problems = append(problems, fmt.Sprintf("%s=%q: give whole minutes", EnvDevOpsTimeout, v))
		}
		d.Timeout = time.Duration(m) * time.Minute
	}
	if named, err := sampleConnections(filepath.Join(root, filepath.FromSlash(demo.UnityCatalog().File))); err != nil {
		problems = append(problems, err.Error())
	} else if !slices.Equal(named, []string{d.Connection}) {
		// A service connection is resolved when the YAML is compiled: its
		// name cannot come from a queue-time variable.
		problems = append(problems, fmt.Sprintf("%s=%q: the sample names the service connection(s) %s; create one of that name, or change the sample in your repository and name it here", EnvDevOpsConnection, d.Connection, strings.Join(named, ", ")))
	}
	if len(problems) > 0 {
		return DevOps{}, fmt.Errorf("the live Azure DevOps settings:\n  %s", strings.Join(problems, "\n  "))
	}
	return d, nil
}

// sampleConnections are the service connections the pipeline at path
// names (the steps' azureSubscription and targetAzureSubscription inputs).
func sampleConnections(path string) ([]string, error) {
	p, err := pipeline.Load(path)
	if err != nil {
		return nil, fmt.Errorf("the sample pipeline: %w", err)
	}
	var names []string
	for _, st := range p.Stages {
		for _, j := range st.Jobs {
			for _, s := range j.AllSteps() {
				for _, in := range []string{"azureSubscription", "targetAzureSubscription"} {
					if v := string(s.Inputs[in]); v != "" && !slices.Contains(names, v) {
						names = append(names, v)
					}
				}
			}
		}
	}
	slices.Sort(names)
	return names, nil
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

// PrintDevOpsPlan writes what make live-devops reads, creates and runs.
func PrintDevOpsPlan(w io.Writer, d DevOps) {
	fmt.Fprintf(w, "Azure DevOps %s, project %s:\n", d.CollectionURL, d.Project)
	fmt.Fprintf(w, "  reads the variable groups %s\n", strings.Join(sampleGroups, ", "))
	fmt.Fprintf(w, "  creates or updates the pipeline %s\\%s running %s of repository %s (it is kept afterwards; nothing is deleted)\n",
		strings.TrimPrefix(d.PipelineFolder, `\`), d.PipelineName, demo.UnityCatalog().File, d.Repository)
	fmt.Fprintf(w, "  runs it on %s with system.debug=true and waits up to %s: the run trains, registers, copies, scores and serves\n", d.Branch, d.Timeout)
	fmt.Fprintf(w, "  in the workspaces the groups and the service connection %s name (their cost: docs/live.md)\n", d.Connection)
}
