package auth

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/devops"
)

// The variable group method reads databricks-host[-suffix] and
// databricks-token[-suffix] of the group the inputs name (variableGroup,
// targetVariableGroup).
//
// In a pipeline run the group is always read by name through the Azure
// DevOps REST API, even when the job has variables of the same names. The
// job gets one value per variable name, whichever linked group or pipeline
// variable it came from: with two linked groups that both hold
// databricks-host and databricks-token, "the variables of the job" are those
// of one of them, and a task that trusted them would work on another
// workspace than the one its input names. So:
//
//   - the workspace URL is the group's own (a plain variable, which the API
//     returns);
//   - a token the API returns (a plain variable) is the group's own too;
//   - a secret token, whose value the API never returns, is taken from the
//     job only when the job's host variable is the group's host, i.e. when
//     the job's pair of variables comes from this group; otherwise the task
//     refuses and says what to change;
//   - a group linked to Azure Key Vault is read from the vault, with the
//     task's Azure Resource Manager connection.
//
// Outside a pipeline run (local mode: no collection URL or job token) no
// group can be read, and the variables given to the run are used; the log
// says so. The build service may read the library's groups by default: the
// project's build service has the Reader role on the library
// (https://learn.microsoft.com/azure/devops/pipelines/policies/library-permissions).

// groupCredentials are what the method found, with where each value came
// from, for the log.
type groupCredentials struct {
	host, token         string
	hostFrom, tokenFrom string
	why                 string // why the token is the group's, when it came from the job
}

func (r *Resolver) fromVariableGroup(ctx context.Context, opts Options, ws *Workspace, st *strategy, cache func(fetchFunc) *tokenCache) error {
	hostVar, tokenVar := opts.HostVariable(), opts.TokenVariable()
	var (
		c   groupCredentials
		err error
	)
	if collection, project, jobToken := r.devOps(); collection != "" && project != "" && jobToken != "" {
		c, err = r.readGroup(ctx, opts, collection, project, jobToken, hostVar, tokenVar)
	} else {
		c, err = r.runVariables(opts, hostVar, tokenVar)
	}
	if err != nil {
		return err
	}
	r.Log.SetSecret(c.token)
	h, err := NormalizeHost(c.host)
	if err != nil {
		return fmt.Errorf("%s is not a workspace URL: %w", c.hostFrom, err)
	}
	ws.Host = h
	ws.Principal = c.tokenFrom
	r.Log.Info("The %s is %s: %s (%s); the token is the %s%s.", opts.Name, h, hostVar, c.hostFrom, c.tokenFrom, c.why)
	st.main = cache(staticToken(strings.TrimSpace(c.token)))
	return nil
}

// devOps is where the job reads variable groups: the collection URL, the
// project and the job's access token (empty outside a pipeline run).
func (r *Resolver) devOps() (collection, project, jobToken string) {
	sys := r.Env.System()
	return cmp.Or(r.DevOpsURL, sys.CollectionURI), cmp.Or(sys.ProjectID, sys.Project), r.Env.JobToken()
}

// runVariables takes the host and token variables given to a run outside a
// pipeline (--var, --secret), where no group can be read.
func (r *Resolver) runVariables(opts Options, hostVar, tokenVar string) (groupCredentials, error) {
	host, _, hostOK := r.Env.Variable(hostVar)
	token, _, tokenOK := r.Env.Variable(tokenVar)
	if !hostOK || !tokenOK || strings.TrimSpace(host) == "" || strings.TrimSpace(token) == "" {
		return groupCredentials{}, outsidePipeline(opts.VariableGroup, hostVar, tokenVar, hostOK && strings.TrimSpace(host) != "", tokenOK && strings.TrimSpace(token) != "")
	}
	return groupCredentials{
		host: host, token: token,
		hostFrom:  fmt.Sprintf("variable %s given to this run: outside a pipeline run the group %s is not read", hostVar, opts.VariableGroup),
		tokenFrom: fmt.Sprintf("variable %s given to this run", tokenVar),
	}, nil
}

// readGroup reads the group through the Azure DevOps API and takes the host
// and token as the package comment says.
func (r *Resolver) readGroup(ctx context.Context, opts Options, collection, project, jobToken, hostVar, tokenVar string) (groupCredentials, error) {
	t, err := r.retrying()
	if err != nil {
		return groupCredentials{}, err
	}
	name := opts.VariableGroup
	r.Log.Debug("Reading variable group %q through the Azure DevOps API.", name)
	g, err := devops.New(collection, jobToken, &http.Client{Transport: t}).VariableGroup(ctx, project, name)
	if err != nil {
		return groupCredentials{}, err
	}
	jobHost, _, jobHostOK := r.Env.Variable(hostVar)
	if g.KeyVaultLinked() {
		return r.readLinkedVault(ctx, opts, g, hostVar, tokenVar, jobHost)
	}
	hv, hok := g.Lookup(hostVar)
	tv, tok := g.Lookup(tokenVar)
	switch {
	case !hok || !tok:
		return groupCredentials{}, fmt.Errorf("variable group %q has no variable %s or %s: add them, or set the suffix input to the one the group uses", g.Name, hostVar, tokenVar)
	case hv.Secret || hv.Value == "":
		return groupCredentials{}, fmt.Errorf("variable %s of group %q is secret or empty: the task reads the workspace URL from the group to know which workspace the group names, and Azure DevOps never returns secret values; make %s a plain variable", hostVar, g.Name, hostVar)
	}
	c := groupCredentials{host: hv.Value, hostFrom: fmt.Sprintf("from variable group %s, read through the Azure DevOps API", g.Name)}
	jobHasGroupHost := jobHostOK && sameHost(jobHost, hv.Value)
	if jobHostOK && !jobHasGroupHost {
		r.Log.Info("The job's variable %s (%s) is not the one of group %s: another variable group linked to the pipeline, or a pipeline variable, has the same name. It is not used.", hostVar, jobHost, g.Name)
	}
	if !tv.Secret && tv.Value != "" {
		c.token, c.tokenFrom = tv.Value, fmt.Sprintf("variable %s of group %s", tokenVar, g.Name)
		return c, nil
	}
	jobToken, _, jobTokenOK := r.Env.Variable(tokenVar)
	switch {
	case !jobTokenOK || jobToken == "":
		return groupCredentials{}, fmt.Errorf("variable group %q is not linked to this pipeline, and Azure DevOps never returns the value of its secret %s: link the group (YAML: variables: - group: %s; classic: Variables > Variable groups), or keep the token in Azure Key Vault and link the group to the vault", g.Name, tokenVar, g.Name)
	case !jobHasGroupHost:
		jobSide := "has no variable " + hostVar
		if jobHostOK {
			jobSide = fmt.Sprintf("has %s = %s", hostVar, jobHost)
		}
		return groupCredentials{}, fmt.Errorf("the job's secret variable %s cannot be tied to variable group %q: the group's %s is %s, but the job %s, so another variable group linked to the pipeline, or a pipeline variable, holds the same names and the job's token may be the one of another workspace. "+
			"Give each environment its own names (a suffix: variableSuffix prod reads databricks-host-prod and databricks-token-prod), or keep the token in Azure Key Vault (link the group to the vault and give azureSubscription, or use the keyVault method)",
			tokenVar, g.Name, hostVar, hv.Value, jobSide)
	}
	c.token = jobToken
	c.tokenFrom = fmt.Sprintf("secret variable %s of group %s", tokenVar, g.Name)
	c.why = fmt.Sprintf(", as the job received it (the group is linked to the pipeline: the job's %s is the group's)", hostVar)
	return c, nil
}

// readLinkedVault reads the host and token of a group linked to Key Vault
// from the vault, with the task's Azure Resource Manager connection: Azure
// DevOps returns no value of such a group, so the job's variables of the
// same names cannot be tied to it.
func (r *Resolver) readLinkedVault(ctx context.Context, opts Options, g *devops.VariableGroup, hostVar, tokenVar, jobHost string) (groupCredentials, error) {
	if opts.ARM == nil {
		return groupCredentials{}, fmt.Errorf("variable group %q is linked to key vault %s: Azure DevOps never returns its values, and the job's variables of the same names may come from another group or a pipeline variable, so the task reads the vault itself: give an Azure Resource Manager connection allowed to read the vault's secrets (input %s, role Key Vault Secrets User), or use the keyVault method", g.Name, g.Vault, InputName(opts.Group, inAzureSubscription))
	}
	for _, name := range []string{hostVar, tokenVar} {
		if _, ok := g.Lookup(name); !ok {
			return groupCredentials{}, fmt.Errorf("variable group %q (linked to key vault %s) does not include the secret %s: add it to the group's selected secrets", g.Name, g.Vault, name)
		}
	}
	id, err := r.armCredential(opts.ARM)
	if err != nil {
		return groupCredentials{}, err
	}
	kv, err := r.vault(g.Vault, id)
	if err != nil {
		return groupCredentials{}, err
	}
	var c groupCredentials
	for _, v := range []struct {
		name   string
		dst    *string
		secret bool
	}{{hostVar, &c.host, false}, {tokenVar, &c.token, true}} {
		val, err := kv.Secret(ctx, v.name)
		if err != nil {
			return groupCredentials{}, explainEntra(err, id.describe())
		}
		if v.secret { // the workspace URL is not a credential (see fromKeyVault)
			r.Log.SetSecret(val)
		}
		*v.dst = strings.TrimSpace(val)
	}
	if jobHost != "" && !sameHost(jobHost, c.host) {
		r.Log.Info("The job's variable %s (%s) is not the one of group %s: another variable group linked to the pipeline, or a pipeline variable, has the same name. It is not used.", hostVar, jobHost, g.Name)
	}
	c.hostFrom = fmt.Sprintf("secret %s of key vault %s, which group %s is linked to", hostVar, g.Vault, g.Name)
	c.tokenFrom = fmt.Sprintf("secret %s of key vault %s (group %s)", tokenVar, g.Vault, g.Name)
	return c, nil
}

// sameHost compares two workspace URLs as NormalizeHost writes them.
func sameHost(a, b string) bool {
	na, errA := NormalizeHost(a)
	nb, errB := NormalizeHost(b)
	if errA != nil || errB != nil {
		return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
	}
	return na == nb
}

// outsidePipeline says which of the group's variables a run outside a
// pipeline is missing (the group itself cannot be read there: no Azure
// DevOps collection or job token), and how local mode takes them.
func outsidePipeline(group, hostVar, tokenVar string, hasHost, hasToken bool) error {
	const why = "and outside a pipeline run the variable group %q cannot be read"
	switch {
	case hasHost && !hasToken:
		return fmt.Errorf("missing token: the pipeline has no variable %s, "+why+": pass it with --secret %s (its value is read from the environment variable %s, or asked for)",
			tokenVar, group, tokenVar, strings.ReplaceAll(agent.VariableKey(tokenVar), "-", "_"))
	case hasToken && !hasHost:
		return fmt.Errorf("missing workspace URL: the pipeline has no variable %s, "+why+": pass it with --var %s=<workspace URL>", hostVar, group, hostVar)
	}
	return fmt.Errorf("the pipeline has no variables %s and %s, "+why+": pass them (--var %s=<workspace URL> --secret %s), or set DATABRICKS_HOST and DATABRICKS_TOKEN (or a profile of ~/.databrickscfg), or use another connection method",
		hostVar, tokenVar, group, hostVar, tokenVar)
}
