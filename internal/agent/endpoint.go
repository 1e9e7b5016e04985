package agent

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Endpoint is a service connection as the agent passes it to a task that
// references it through a connectedService input.
type Endpoint struct {
	ID         string
	URL        string
	Scheme     string            // e.g. "WorkloadIdentityFederation", "ServicePrincipal", "Token"
	Parameters map[string]string // authorization parameters (secrets among them), keys as given
	Data       map[string]string // non-secret data, e.g. subscriptionId, environment
}

// Param returns an authorization parameter, matching the key case-insensitively.
func (ep Endpoint) Param(key string) string { return lookupFold(ep.Parameters, key) }

// DataValue returns a data entry, matching the key case-insensitively.
func (ep Endpoint) DataValue(key string) string { return lookupFold(ep.Data, key) }

func lookupFold(m map[string]string, key string) string {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

type endpointAuth struct {
	Scheme     string            `json:"scheme"`
	Parameters map[string]string `json:"parameters"`
}

func parseEndpointAuth(raw string) (endpointAuth, error) {
	var a endpointAuth
	err := json.Unmarshal([]byte(raw), &a)
	return a, err
}

// SystemConnection is the id of the job's own connection to Azure DevOps,
// whose access token is the job token.
const SystemConnection = "SYSTEMVSSCONNECTION"

// Endpoint reads a service connection by id (the GUID held by a
// connectedService input). The agent sets ENDPOINT_URL_<id>,
// ENDPOINT_AUTH_<id> (JSON {scheme, parameters}), ENDPOINT_AUTH_SCHEME_<id>,
// ENDPOINT_AUTH_PARAMETER_<id>_<KEY>, ENDPOINT_DATA_<id> and
// ENDPOINT_DATA_<id>_<KEY>; the id keeps its hyphens.
func (e Env) Endpoint(id string) (Endpoint, error) {
	url, ok := e["ENDPOINT_URL_"+id]
	if !ok {
		return Endpoint{}, fmt.Errorf("service connection %s is not available to this task: the agent passed no ENDPOINT_URL_%s", id, id)
	}
	ep := Endpoint{ID: id, URL: url, Parameters: map[string]string{}, Data: map[string]string{}}
	if raw := e["ENDPOINT_AUTH_"+id]; raw != "" {
		auth, err := parseEndpointAuth(raw)
		if err != nil {
			return Endpoint{}, fmt.Errorf("service connection %s: the authorization the agent passed is not JSON", id)
		}
		ep.Scheme = auth.Scheme
		for k, v := range auth.Parameters {
			ep.Parameters[k] = v
		}
	}
	if s := e["ENDPOINT_AUTH_SCHEME_"+id]; s != "" {
		ep.Scheme = s
	}
	paramPrefix := "ENDPOINT_AUTH_PARAMETER_" + id + "_"
	dataPrefix := "ENDPOINT_DATA_" + id + "_"
	for k, v := range e {
		switch {
		case strings.HasPrefix(k, paramPrefix):
			key := k[len(paramPrefix):]
			if lookupFold(ep.Parameters, key) == "" {
				ep.Parameters[key] = v
			}
		case strings.HasPrefix(k, dataPrefix):
			ep.Data[k[len(dataPrefix):]] = v
		}
	}
	if raw := e["ENDPOINT_DATA_"+id]; raw != "" {
		var data map[string]string
		if json.Unmarshal([]byte(raw), &data) == nil {
			for k, v := range data {
				ep.Data[k] = v
			}
		}
	}
	return ep, nil
}

// JobToken is the job's OAuth token for Azure DevOps (the access token of the
// SystemVssConnection), or System.AccessToken when the pipeline maps it.
func (e Env) JobToken() string {
	if t := e["ENDPOINT_AUTH_PARAMETER_"+SystemConnection+"_ACCESSTOKEN"]; t != "" {
		return t
	}
	return e["SYSTEM_ACCESSTOKEN"]
}

// Environ is how the agent passes the service connection to a task: the
// environment entries that Env.Endpoint reads back.
func (ep Endpoint) Environ() map[string]string {
	env := map[string]string{"ENDPOINT_URL_" + ep.ID: ep.URL, "ENDPOINT_AUTH_SCHEME_" + ep.ID: ep.Scheme}
	params := ep.Parameters
	if params == nil {
		params = map[string]string{}
	}
	auth, _ := json.Marshal(endpointAuth{Scheme: ep.Scheme, Parameters: params})
	env["ENDPOINT_AUTH_"+ep.ID] = string(auth)
	for k, v := range ep.Parameters {
		env["ENDPOINT_AUTH_PARAMETER_"+ep.ID+"_"+strings.ToUpper(k)] = v
	}
	for k, v := range ep.Data {
		env["ENDPOINT_DATA_"+ep.ID+"_"+strings.ToUpper(k)] = v
	}
	return env
}
