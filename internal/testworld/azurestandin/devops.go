package azurestandin

import (
	"crypto/rsa"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Azure DevOps: what azure-devops-go-api v7 asks before any call (OPTIONS
// {org}/_apis location data, GET {org}/_apis/ResourceAreas), the library's
// variable groups (taskagent GetVariableGroups), and the pipeline's OIDC
// token endpoint (System.OidcRequestUri), all with the job's access token.

// Location and resource area ids of azure-devops-go-api v7
// (location/client.go, taskagent/client.go).
const (
	locResourceAreas  = "e81700f7-3be2-46de-8624-2eb35882fcaa"
	locVariableGroups = "f5b09dd5-9d54-45a1-8b5a-1c8287d634cc"
	areaTaskAgent     = "a85b8835-c1a1-4aac-ae97-1c3d0ba72dbd"
)

// OIDCIssuer is the issuer of the organization's pipeline OIDC tokens,
// https://vstoken.dev.azure.com/{organization id}.
func (a *Azure) OIDCIssuer() string { return "https://vstoken.dev.azure.com/" + a.orgID }

// OrganizationID is the organization's id (System.CollectionId).
func (a *Azure) OrganizationID() string { return a.orgID }

// OIDCKey is the public key of the organization's pipeline OIDC tokens, for
// a relying party that trusts them (a Databricks federation policy).
func (a *Azure) OIDCKey() *rsa.PublicKey { return &a.oidcKey.PublicKey }

// PipelineSubject is the subject of the pipeline's own OIDC tokens.
func (a *Azure) PipelineSubject() string {
	return "p://" + a.Organization + "/" + a.Project + "/" + a.Pipeline
}

func devopsError(w http.ResponseWriter, status int, typeKey, message string) {
	writeJSON(w, status, map[string]any{"$id": "1", "message": message, "typeKey": typeKey, "errorCode": 0, "eventId": 3000})
}

func (a *Azure) devops(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+a.JobToken {
		devopsError(w, http.StatusUnauthorized, "UnauthorizedRequestException", "TF400813: The user is not authorized to access this resource.")
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) == 0 || !strings.EqualFold(parts[0], a.Organization) {
		devopsError(w, http.StatusNotFound, "OrganizationNotFoundException", "The organization '"+parts[0]+"' was not found.")
		return
	}
	rest := parts[1:]
	switch {
	case r.Method == http.MethodOptions && len(rest) == 1 && rest[0] == "_apis":
		locations := []any{
			location(locResourceAreas, "Location", "ResourceAreas", "_apis/{resource}/{areaId}"),
			location(locVariableGroups, "distributedtask", "variablegroups", "{project}/_apis/{area}/{resource}/{groupId}"),
		}
		locations = append(locations, pipelineLocations()...)
		writeJSON(w, http.StatusOK, map[string]any{"count": len(locations), "value": locations})
	case r.Method == http.MethodGet && len(rest) == 2 && rest[0] == "_apis" && strings.EqualFold(rest[1], "ResourceAreas"):
		areas := []any{map[string]any{"id": areaTaskAgent, "name": "distributedtask", "locationUrl": a.CollectionURI}}
		areas = append(areas, a.pipelineAreas()...)
		writeJSON(w, http.StatusOK, map[string]any{"count": len(areas), "value": areas})
	case r.Method == http.MethodGet && len(rest) >= 4 && len(rest) <= 5 && rest[0] == "_apis" && rest[1] == "distributedtask" && rest[2] == "tasks":
		a.taskContent(w, r, rest[3:]) // gallery.go
	case len(rest) >= 2 && !a.isProject(rest[0]):
		devopsError(w, http.StatusNotFound, "ProjectDoesNotExistWithNameException", "TF200016: The following project does not exist: "+rest[0]+".")
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/oidctoken"):
		a.oidcToken(w, r)
	case r.Method == http.MethodGet && len(rest) == 4 && rest[1] == "_apis" && rest[2] == "distributedtask" && rest[3] == "variablegroups":
		a.variableGroups(w, r)
	case len(rest) >= 3 && rest[1] == "_apis" && (rest[2] == "build" || rest[2] == "pipelines" || rest[2] == "git"):
		a.servePipelines(w, r, rest[2:])
	default:
		devopsError(w, http.StatusNotFound, "NotFoundException", "not found: "+r.Method+" "+r.URL.Path)
	}
}

// location is an entry of the location data (OPTIONS {org}/_apis), as
// azure-devops-go-api's location client reads it (ApiResourceLocation).
func location(id, area, resource, route string) map[string]any {
	return map[string]any{"id": id, "area": area, "resourceName": resource, "routeTemplate": route,
		"resourceVersion": 2, "minVersion": "1.0", "maxVersion": "7.2", "releasedVersion": "0.0"}
}

func (a *Azure) isProject(nameOrID string) bool {
	return strings.EqualFold(nameOrID, a.Project) || strings.EqualFold(nameOrID, a.ProjectID)
}

// oidcToken issues the pipeline's ID token, as azidentity's
// AzurePipelinesCredential asks for it: POST
// {System.OidcRequestUri}?api-version=7.1&serviceConnectionId={id}. With a
// service connection the subject is the connection's
// (sc://{org}/{project}/{connection}); without serviceConnectionId, which
// the API takes as optional (Oidctoken - Create, REST API 7.1), the token is
// the pipeline's own, subject p://{org}/{project}/{pipeline}: what
// databricks-sdk-go's azure-devops-oidc presents (databricks-sdk-go issue
// 1391). The audience is always api://AzureADTokenExchange.
func (a *Azure) oidcToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !strings.HasPrefix(q.Get("api-version"), "7.") {
		devopsError(w, http.StatusBadRequest, "InvalidRequestException", "api-version 7.1 or later is required.")
		return
	}
	sub := a.PipelineSubject()
	if id := q.Get("serviceConnectionId"); id != "" {
		c := a.connection(id)
		if c == nil {
			devopsError(w, http.StatusBadRequest, "ServiceEndpointNotFoundException", "Service connection "+id+" was not found or the pipeline is not authorized to use it.")
			return
		}
		sub = a.ConnectionSubject(c.Name)
	}
	now := a.clock.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": a.OIDCIssuer(), "sub": sub, "aud": OIDCAudience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}).SignedString(a.oidcKey)
	if err != nil {
		devopsError(w, http.StatusInternalServerError, "Exception", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"oidcToken": a.mint(tok)})
}

// variableGroups answers GET {org}/{project}/_apis/distributedtask/variablegroups?groupName=,
// with the REST shape of taskagent.VariableGroup; secret values are null.
func (a *Azure) variableGroups(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("groupName")
	a.mu.Lock()
	defer a.mu.Unlock()
	list := []any{}
	for i, g := range a.groups {
		if name != "" && !strings.EqualFold(g.Name, name) {
			continue
		}
		if g.Restricted {
			devopsError(w, http.StatusForbidden, "AccessDeniedException", "Access denied. The pipeline's identity does not have the Reader role on variable group "+g.Name+".")
			return
		}
		list = append(list, a.groupJSON(i+1, g))
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(list), "value": list})
}

func (a *Azure) groupJSON(id int, g *VariableGroup) map[string]any {
	vars := map[string]any{}
	out := map[string]any{"id": id, "name": g.Name, "type": "Vsts", "isShared": false, "variables": vars}
	for _, k := range slices.Sorted(maps.Keys(g.Variables)) {
		v := g.Variables[k]
		secret := v.Secret || g.KeyVault != nil // a linked group's variables are the vault's secrets
		var value any = v.Value
		if secret {
			value = nil
		}
		vars[k] = map[string]any{"value": value, "isSecret": secret}
	}
	if kv := g.KeyVault; kv != nil {
		out["type"] = "AzureKeyVault"
		endpoint := "00000000-0000-0000-0000-000000000000"
		if c := a.connection(kv.Connection); c != nil {
			endpoint = c.ID
		}
		out["providerData"] = map[string]any{"serviceEndpointId": endpoint, "vault": kv.Vault, "lastRefreshedOn": "2026-01-01T00:00:00Z"}
		for _, k := range slices.Sorted(maps.Keys(kv.Secrets)) {
			vars[k] = map[string]any{"value": nil, "isSecret": true, "enabled": true, "contentType": ""}
		}
	}
	return out
}
