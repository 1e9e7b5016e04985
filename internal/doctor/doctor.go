// Package doctor is `brickferry doctor`: it tells how the job's workspace
// connection resolves, without making any change and without printing a
// secret:
//
//   - the connection method and where each value comes from (input, service
//     connection, variable group, Key Vault); secrets are named, never shown;
//   - for workload identity, the issuer, subject and audience to put in the
//     Databricks federation policy or the Entra federated credential,
//     computed from the job's variables;
//   - whether a token is obtained and the workspace answers, and as whom;
//   - for a given Unity Catalog model and tables, the privileges each task
//     needs, read with the effective permissions API, and the GRANT
//     statements that are missing.
//
// It only reads: GET requests to the workspace, besides the token requests
// of the connection method itself.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/tasks"
)

// Name is the command's name.
const Name = "doctor"

// Inputs of the doctor besides the connection inputs.
const (
	inModel       = "model"
	inInputTable  = "inputTable"
	inOutputTable = "outputTable"
)

// Definition is the doctor's input declaration: the inputs of the
// BrickferryTools task, which runs the doctor when its input doctor is on
// (the connection inputs every task shares, and the Unity Catalog names to
// check), without that switch.
func Definition() (agent.Definition, error) {
	tools, err := tasks.Definition("BrickferryTools")
	if err != nil {
		return agent.Definition{}, err
	}
	def := agent.Definition{Name: Name, FriendlyName: "Brickferry doctor", Groups: tools.Groups,
		Description: "Tells how the workspace connection resolves and which Unity Catalog grants are missing, without changing anything."}
	for _, in := range tools.Inputs {
		if in.Name != "doctor" {
			def.Inputs = append(def.Inputs, in)
		}
	}
	return def, nil
}

// options are the doctor's inputs, read once.
type options struct {
	conn                           auth.Options
	model, inputTable, outputTable string
}

func readOptions(in *agent.Inputs) options {
	o := options{conn: auth.ReadOptions(in, "")}
	three := func(name string) string {
		v := strings.TrimSpace(in.String(name))
		if v != "" && len(strings.Split(v, ".")) != 3 {
			in.Fail(name, "%q is not a three-part Unity Catalog name: give catalog.schema.name", v)
		}
		return v
	}
	o.model, o.inputTable, o.outputTable = three(inModel), three(inInputTable), three(inOutputTable)
	return o
}

// Task is the doctor as a task function.
func Task(def agent.Definition) agent.TaskFunc {
	return func(ctx context.Context, env agent.Env, log *agent.Log) error {
		in := def.InputsFrom(env)
		o := readOptions(in)
		if err := in.Err(); err != nil {
			return err
		}
		return run(ctx, env, log, o)
	}
}

func run(ctx context.Context, env agent.Env, log *agent.Log, o options) error {
	sys := env.System()
	log.Section("Connection")
	for _, line := range describe(o.conn) {
		log.Info("%s", line)
	}
	r := &auth.Resolver{Env: env, Log: log}
	if lines, connectionID, ok := federation(sys, o.conn); ok {
		for _, line := range lines {
			log.Info("%s", line)
		}
		presented(ctx, r, connectionID, log)
	}

	log.Section("Sign-in")
	ws, err := r.Resolve(ctx, o.conn)
	if err != nil {
		return fmt.Errorf("no token, or the workspace refused it: %w", err)
	}
	var me struct {
		UserName string `json:"userName"`
	}
	if err := ws.Client.Do(ws.Context(ctx), http.MethodGet, "/api/2.0/preview/scim/v2/Me", nil, nil, nil, &me); err != nil {
		return fmt.Errorf("reading who the workspace takes the connection for: %w", ws.Explain(err))
	}
	log.Info("The workspace %s answers, and takes the connection for %s.", ws.Host, me.UserName)

	if o.model == "" && o.inputTable == "" && o.outputTable == "" {
		log.Info("No model or table was given: Unity Catalog privileges are not checked (inputs model, inputTable, outputTable).")
		return nil
	}
	log.Section("Unity Catalog privileges of " + me.UserName)
	missing, err := checkPrivileges(ctx, ws, me.UserName, o, log)
	if err != nil {
		return err
	}
	if len(missing) == 0 {
		log.Info("Nothing is missing.")
		return nil
	}
	log.Warning("%d grant(s) missing. An owner of the objects or a metastore admin can run:", len(missing))
	for _, g := range missing {
		log.Info("  %s", g)
	}
	return nil
}

// describe says how the connection resolves, value by value, without a secret.
func describe(o auth.Options) []string {
	out := []string{fmt.Sprintf("Method: %s (input connectionMethod = %s).", o.Method.Label(), o.Method)}
	if o.Host != "" {
		out = append(out, fmt.Sprintf("Workspace URL: %s (input workspaceUrl, or the service connection's server URL).", o.Host))
	}
	if ep := o.ARM; ep != nil {
		out = append(out, fmt.Sprintf("Azure Resource Manager connection %s: scheme %s, tenant %s, service principal %s (from the service connection).",
			ep.ID, cmpOr(ep.Scheme, "ServicePrincipal"), ep.Param("tenantid"), cmpOr(ep.Param("serviceprincipalid"), ep.DataValue("msiclientId"))))
	}
	switch o.Method {
	case auth.MethodDatabricks:
		if ep := o.Databricks; ep != nil {
			if id := cmpOr(ep.Param("clientId"), ep.Param("username")); id != "" {
				out = append(out, fmt.Sprintf("Databricks connection %s: OAuth client %s; its secret is in the connection (not shown).", ep.ID, id))
			} else {
				out = append(out, fmt.Sprintf("Databricks connection %s: a personal access token, kept in the connection (not shown).", ep.ID))
			}
		}
	case auth.MethodVariableGroup:
		out = append(out, fmt.Sprintf("Variable group %s: %s (workspace URL) and %s (token, not shown).", o.VariableGroup, o.HostVariable(), o.TokenVariable()))
	case auth.MethodKeyVault:
		what := "secret " + o.KeyVaultTokenSecret + " (token, not shown)"
		if o.KeyVaultOAuth {
			what = "secrets " + o.KeyVaultClientIDSecret + " (OAuth client id) and " + o.KeyVaultClientSecretSecret + " (client secret, not shown)"
		}
		out = append(out, fmt.Sprintf("Key Vault %s: %s.", o.KeyVault, what))
	case auth.MethodToken:
		out = append(out, "Token: the token input (not shown).")
	case auth.MethodFederation:
		sp := o.FederationClientID
		if sp == "" {
			sp = "none: account-wide federation"
		}
		out = append(out, fmt.Sprintf("Databricks service principal: %s (input federationClientId); token presented: %s (input federationSubject).", sp, o.FederationSubject))
	}
	return out
}

// federation gives the claims a federation must trust, for the methods that
// use the pipeline's OIDC token, and the service connection whose token is
// presented ("" for the pipeline's own).
func federation(sys agent.System, o auth.Options) (lines []string, connectionID string, ok bool) {
	var c auth.FederationClaims
	var where string
	switch {
	case o.Method == auth.MethodFederation:
		c = auth.ExpectedClaims(sys, o.FederationSubject, "")
		who := "service principal " + o.FederationClientID
		if o.FederationClientID == "" {
			who = "the account (account federation policy)"
		}
		where = "the Databricks federation policy of " + who
		if o.FederationSubject == auth.SubjectServiceConnection && o.ARM != nil {
			connectionID = o.ARM.ID
		}
	case o.ARM != nil && strings.EqualFold(o.ARM.Scheme, "WorkloadIdentityFederation"):
		c = auth.ExpectedClaims(sys, auth.SubjectServiceConnection, "")
		where = "the federated credential of Entra app " + o.ARM.Param("serviceprincipalid") + " (Azure DevOps shows them on the connection's page)"
		connectionID = o.ARM.ID
	default:
		return nil, "", false
	}
	return []string{
		"Workload identity: put these in " + where + ":",
		"  issuer:   " + c.Issuer,
		"  subject:  " + c.Subject,
		"  audience: " + c.Audience,
	}, connectionID, true
}

// presented says what the pipeline's OIDC endpoint actually presents.
func presented(ctx context.Context, r *auth.Resolver, connectionID string, log *agent.Log) {
	c, err := r.PresentedClaims(ctx, connectionID)
	if err != nil {
		log.Warning("The pipeline's OIDC token could not be read: %v", err)
		return
	}
	log.Info("This job's OIDC token has issuer %s, subject %s, audience %s.", c.Issuer, c.Subject, c.Audience)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// need is a privilege a task needs on a securable.
type need struct {
	task      string
	privilege catalog.Privilege
	securable catalog.SecurableType
	name      string
}

// needs are the privileges each task needs on the given names (Microsoft
// Learn, "Upgrade ML workflows to target models in Unity Catalog", Required
// privileges: USE CATALOG and USE SCHEMA on the model's catalog and schema,
// CREATE MODEL to create a model, EXECUTE to load or deploy it; only the
// model's owner creates versions and sets aliases. Tables: SELECT to read,
// CREATE TABLE on the schema to create one, "Unity Catalog privileges and
// securable objects").
func needs(o options) []need {
	var out []need
	parents := func(task, full string) {
		p := strings.Split(full, ".")
		out = append(out,
			need{task, catalog.PrivilegeUseCatalog, catalog.SecurableTypeCatalog, p[0]},
			need{task, catalog.PrivilegeUseSchema, catalog.SecurableTypeSchema, p[0] + "." + p[1]})
	}
	if m := o.model; m != "" {
		p := strings.Split(m, ".")
		parents("MLflowPromote", m)
		out = append(out, need{"MLflowPromote", catalog.PrivilegeCreateModel, catalog.SecurableTypeSchema, p[0] + "." + p[1]})
		for _, task := range []string{"BatchScore", "ModelServe"} {
			parents(task, m)
			out = append(out, need{task, catalog.PrivilegeExecute, catalog.SecurableTypeFunction, m})
		}
	}
	if t := o.inputTable; t != "" {
		parents("BatchScore", t)
		out = append(out, need{"BatchScore", catalog.PrivilegeSelect, catalog.SecurableTypeTable, t})
	}
	if t := o.outputTable; t != "" {
		p := strings.Split(t, ".")
		parents("BatchScore", t)
		out = append(out, need{"BatchScore", catalog.PrivilegeCreateTable, catalog.SecurableTypeSchema, p[0] + "." + p[1]})
	}
	return out
}

// grantSQL is the GRANT statement of a privilege (Databricks SQL GRANT: a
// privilege with spaces, the securable's keyword and name, the principal in
// back quotes; a registered model is a FUNCTION).
func grantSQL(privilege catalog.Privilege, securable catalog.SecurableType, name, principal string) string {
	return fmt.Sprintf("GRANT %s ON %s %s TO `%s`;", strings.ReplaceAll(string(privilege), "_", " "), securable, name, principal)
}

// checkPrivileges reads the effective permissions of principal on each
// securable once, reports per task and returns the missing GRANT statements
// (each once, in order).
func checkPrivileges(ctx context.Context, ws *auth.Workspace, principal string, o options, log *agent.Log) ([]string, error) {
	grants := catalog.NewGrants(ws.Client)
	have := map[string][]catalog.Privilege{}
	lookup := func(t catalog.SecurableType, name string) ([]catalog.Privilege, error) {
		key := string(t) + " " + name
		if p, ok := have[key]; ok {
			return p, nil
		}
		list, err := grants.GetEffective(ws.Context(ctx), catalog.GetEffectiveRequest{SecurableType: string(t), FullName: name, Principal: principal})
		if errors.Is(err, apierr.ErrNotFound) || errors.Is(err, apierr.ErrResourceDoesNotExist) {
			have[key] = nil
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the effective permissions on %s %s: %w", t, name, ws.Explain(err))
		}
		var privs []catalog.Privilege
		for _, a := range list.PrivilegeAssignments {
			if a.Principal != principal {
				continue
			}
			for _, p := range a.Privileges {
				privs = append(privs, p.Privilege)
			}
		}
		have[key] = privs
		return privs, nil
	}
	var missing []string
	byTask := map[string][]string{}
	var order []string
	for _, n := range needs(o) {
		privs, err := lookup(n.securable, n.name)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(order, n.task) {
			order = append(order, n.task)
		}
		if slices.Contains(privs, n.privilege) || slices.Contains(privs, catalog.PrivilegeAllPrivileges) {
			continue
		}
		g := grantSQL(n.privilege, n.securable, n.name, principal)
		byTask[n.task] = append(byTask[n.task], strings.ReplaceAll(string(n.privilege), "_", " ")+" on "+string(n.securable)+" "+n.name)
		if !slices.Contains(missing, g) {
			missing = append(missing, g)
		}
	}
	for _, task := range order {
		if len(byTask[task]) == 0 {
			log.Info("%s: has what it needs.", task)
		} else {
			log.Info("%s: lacks %s.", task, strings.Join(byTask[task], ", "))
		}
	}
	if o.model != "" {
		log.Info("MLflowPromote also needs to own %s to register versions and set aliases: ownership is not a grant; an owner or a metastore admin transfers it to %s (Catalog Explorer, model > Owner).", o.model, principal)
	}
	return missing, nil
}
