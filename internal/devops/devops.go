// Package devops reads Azure DevOps variable groups through the REST API
// (azure-devops-go-api v7, taskagent) with the job's access token.
//
// The library's Connection builds its HTTP clients itself (a bare
// http.Client, or one that drops the proxy when TlsConfig is set), so this
// package does what Connection.GetClientByResourceAreaId does with a client it
// is given: ask {collection}/_apis/ResourceAreas where the task agent area
// lives, then call it. Every request still starts with the library's
// OPTIONS {url}/_apis location lookup.
package devops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/microsoft/azure-devops-go-api/azuredevops/v7"
	"github.com/microsoft/azure-devops-go-api/azuredevops/v7/taskagent"
)

// Client reads variable groups of one collection (organization).
type Client struct {
	conn *azuredevops.Connection
	http *http.Client
	base string
}

// New returns a client for the collection at collectionURL
// (https://dev.azure.com/org/) that authenticates with the job token.
func New(collectionURL, jobToken string, hc *http.Client) *Client {
	base := strings.TrimRight(collectionURL, "/")
	return &Client{
		conn: &azuredevops.Connection{
			AuthorizationString:     "Bearer " + jobToken,
			BaseUrl:                 base,
			SuppressFedAuthRedirect: true,
			UserAgent:               "brickferry",
		},
		http: hc,
		base: base,
	}
}

// Variable is one variable of a group. Secret values are never returned by
// the API: Value is empty and Secret true.
type Variable struct {
	Value  string
	Secret bool
}

// VariableGroup is a library variable group.
type VariableGroup struct {
	ID        int
	Name      string
	Type      string // "Vsts", or "AzureKeyVault" for a group linked to a vault
	Variables map[string]Variable
	// For a group linked to Azure Key Vault: the vault's name and the service
	// connection the group uses to read it.
	Vault             string
	ServiceEndpointID string
}

// KeyVaultLinked reports whether the group's variables are Key Vault secrets.
func (g *VariableGroup) KeyVaultLinked() bool { return strings.EqualFold(g.Type, "AzureKeyVault") }

// Lookup finds a variable by name, ignoring case as the pipeline does.
func (g *VariableGroup) Lookup(name string) (Variable, bool) {
	if v, ok := g.Variables[name]; ok {
		return v, true
	}
	for k, v := range g.Variables {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return Variable{}, false
}

// Error is a refusal by Azure DevOps.
type Error struct {
	Group, Project string
	Status         int
	Err            error
}

func (e *Error) Error() string {
	switch e.Status {
	case http.StatusUnauthorized:
		return fmt.Sprintf("Azure DevOps did not accept the job's access token when reading variable group %q: the job token may have expired, or the pipeline's job authorization scope does not include project %s", e.Group, e.Project)
	case http.StatusForbidden:
		return fmt.Sprintf("the pipeline's identity may not read variable group %q, which the task reads to know which workspace the group names (linking the group to the pipeline is not enough): in Pipelines > Library > %s > Security, give the project's build service the Reader role, as the library gives it by default", e.Group, e.Group)
	case http.StatusNotFound:
		return fmt.Sprintf("no variable group named %q in project %s: check the name (Pipelines > Library)", e.Group, e.Project)
	}
	return fmt.Sprintf("reading variable group %q of project %s from Azure DevOps: %v", e.Group, e.Project, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// VariableGroup reads the group with the given name from a project (name or id).
func (c *Client) VariableGroup(ctx context.Context, project, name string) (*VariableGroup, error) {
	fail := func(status int, err error) error {
		return &Error{Group: name, Project: project, Status: status, Err: err}
	}
	ta, err := c.taskAgent(ctx)
	if err != nil {
		return nil, fail(status(err), err)
	}
	groups, err := ta.GetVariableGroups(ctx, taskagent.GetVariableGroupsArgs{Project: &project, GroupName: &name})
	if err != nil {
		return nil, fail(status(err), err)
	}
	for _, g := range *groups {
		if g.Name != nil && strings.EqualFold(*g.Name, name) {
			return convert(g)
		}
	}
	return nil, fail(http.StatusNotFound, errors.New("not found"))
}

func status(err error) int {
	var we azuredevops.WrappedError
	if errors.As(err, &we) && we.StatusCode != nil {
		return *we.StatusCode
	}
	var wp *azuredevops.WrappedError
	if errors.As(err, &wp) && wp.StatusCode != nil {
		return *wp.StatusCode
	}
	return 0
}

// taskAgent returns a client of the distributed task area.
func (c *Client) taskAgent(ctx context.Context) (taskagent.Client, error) {
	areas, err := c.Areas(ctx, taskagent.ResourceAreaId)
	if err != nil {
		return nil, err
	}
	return &taskagent.ClientImpl{Client: areas[0]}, nil
}

// Root is a client of the collection URL itself (where, for one, the
// pipelines area is served).
func (c *Client) Root() azuredevops.Client {
	return *azuredevops.NewClientWithOptions(c.conn, c.base, azuredevops.WithHTTPClient(c.http))
}

// Areas asks the collection once where its resource areas are served
// ({collection}/_apis/ResourceAreas, as Connection.GetClientByResourceAreaId
// does, but with our HTTP client) and returns a client for each of ids, in
// their order. An area the answer does not list, or an empty list (Azure
// DevOps Server), is served on the collection URL.
func (c *Client) Areas(ctx context.Context, ids ...uuid.UUID) ([]azuredevops.Client, error) {
	root := c.Root()
	areas, err := root.GetResourceAreas(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]azuredevops.Client, len(ids))
	for i, id := range ids {
		url := c.base
		for _, a := range *areas {
			if a.Id != nil && *a.Id == id && a.LocationUrl != nil && *a.LocationUrl != "" {
				url = strings.TrimRight(*a.LocationUrl, "/")
			}
		}
		out[i] = *azuredevops.NewClientWithOptions(c.conn, url, azuredevops.WithHTTPClient(c.http))
	}
	return out, nil
}

func convert(g taskagent.VariableGroup) (*VariableGroup, error) {
	out := &VariableGroup{Variables: map[string]Variable{}}
	if g.Id != nil {
		out.ID = *g.Id
	}
	if g.Name != nil {
		out.Name = *g.Name
	}
	if g.Type != nil {
		out.Type = *g.Type
	}
	if g.Variables != nil {
		// The values are typed interface{} by the library; they are
		// VariableValue or AzureKeyVaultVariableValue objects.
		raw, err := json.Marshal(*g.Variables)
		if err != nil {
			return nil, err
		}
		var vars map[string]taskagent.AzureKeyVaultVariableValue
		if err := json.Unmarshal(raw, &vars); err != nil {
			return nil, fmt.Errorf("variable group %q: unexpected variables: %w", out.Name, err)
		}
		for k, v := range vars {
			out.Variables[k] = Variable{Value: deref(v.Value), Secret: v.IsSecret != nil && *v.IsSecret}
		}
	}
	if out.KeyVaultLinked() && g.ProviderData != nil {
		raw, err := json.Marshal(g.ProviderData)
		if err != nil {
			return nil, err
		}
		var pd taskagent.AzureKeyVaultVariableGroupProviderData
		if err := json.Unmarshal(raw, &pd); err != nil {
			return nil, fmt.Errorf("variable group %q: unexpected Key Vault data: %w", out.Name, err)
		}
		out.Vault = deref(pd.Vault)
		if pd.ServiceEndpointId != nil {
			out.ServiceEndpointID = pd.ServiceEndpointId.String()
		}
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
