package serve_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

const (
	oauthClientID     = "7f0b6c7e-5f6e-4a7c-9d3e-0c1b2a3d4e5f"
	oauthClientSecret = "dose-route-optimized-client-secret"
	connectionID      = "d0d0d0d0-0000-4000-8000-00000000000d"
)

// oauthRun is a ModelServe run connected with a Databricks service
// connection holding an OAuth service principal (machine-to-machine).
func (w *world) oauthRun(inputs map[string]string) *agenttest.Result {
	w.t.Helper()
	in := map[string]string{
		"endpointName": endpoint, "modelName": "churn", "modelVersion": "1", "smokeTestPayload": smallBody,
		"connectionMethod": "databricks", "databricksConnection": connectionID,
	}
	maps.Copy(in, inputs)
	res := agenttest.Run{Task: "ModelServe", Inputs: in, Env: map[string]string{"AGENT_CAINFO": w.caFile},
		Endpoints: []agent.Endpoint{{ID: connectionID, URL: w.ws.URL(), Scheme: "None", Parameters: map[string]string{"clientId": oauthClientID, "clientSecret": oauthClientSecret}}},
	}.Exec(w.t, agenttest.Executable(w.t))
	require.Equal(w.t, 0, res.ExitCode, res.Stderr)
	require.Equal(w.t, 1, res.Completions, res.Stdout)
	return res
}

func oauthWorld(t *testing.T) *world {
	return newWorld(t, emulator.Options{OAuthClients: map[string]string{oauthClientID: oauthClientSecret}, OAuthTokenTTL: time.Hour})
}

// TestRouteOptimizedSmokeTestOnItsOwnURL: a route-optimized endpoint is
// created with route_optimized, smoke-tested on its own URL with a token
// exchanged for it, and endpointUrl is that URL.
func TestRouteOptimizedSmokeTestOnItsOwnURL(t *testing.T) {
	t.Parallel()
	w := oauthWorld(t)
	res := w.oauthRun(map[string]string{"routeOptimized": "true"})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)

	creates := w.ws.RequestsTo(http.MethodPost, "/api/2.0/serving-endpoints")
	require.Len(t, creates, 1)
	assert.True(t, creates[0].Body.(*serving.CreateServingEndpoint).RouteOptimized)
	ownURL := fmt.Sprintf("%s/%d/serving-endpoints/%s/invocations", w.ws.DataPlaneURL(), w.ws.WorkspaceID, endpoint)
	assert.Equal(t, ownURL, res.Outputs["endpointUrl"])
	assert.Equal(t, ownURL, w.endpoint().EndpointUrl)

	var exchanges, onDataPlane, onWorkspace int
	for _, r := range w.ws.Requests() {
		switch {
		case r.Method == http.MethodPost && r.Path == "/oidc/v1/token":
			if q, err := url.ParseQuery(string(r.Raw)); err == nil && q.Get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer" {
				exchanges++
				assert.Equal(t, http.StatusOK, r.Status)
			}
		case r.DataPlane:
			onDataPlane++
			assert.Equal(t, http.StatusOK, r.Status)
		case r.Path == "/serving-endpoints/"+endpoint+"/invocations":
			onWorkspace++
		}
	}
	assert.Equal(t, 1, exchanges, "one token exchange for the endpoint")
	assert.Equal(t, 1, onDataPlane, "the smoke test on the route-optimized URL")
	assert.Zero(t, onWorkspace, "never on the workspace URL")
	assert.Contains(t, res.Stdout, "Querying "+ownURL+" with the request body given")
	assert.Contains(t, onlySummary(t, res.Summaries), "Invocations URL: `"+ownURL+"`")

	// What the emulator enforces, seen from a client: the workspace URL
	// refuses this endpoint, and the route-optimized URL refuses a PAT.
	ctx := context.Background()
	err := w.c.Do(ctx, http.MethodPost, "/serving-endpoints/"+endpoint+"/invocations", nil, nil, []byte(smallBody), nil)
	var apiErr *apierr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ownURL, strings.NewReader(smallBody))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+w.ws.Token)
	resp, err := (&http.Client{Transport: w.c.Config.HTTPTransport}).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a personal access token on the route-optimized URL")
}

// TestRouteOptimizedRefusesAPersonalAccessToken: a route-optimized endpoint
// cannot be smoke-tested with a personal access token: the step says so
// before anything is written, for a new endpoint and for one that exists.
func TestRouteOptimizedRefusesAPersonalAccessToken(t *testing.T) {
	t.Parallel()
	w := oauthWorld(t)
	writes := func() []emulator.Request {
		return slices.DeleteFunc(w.ws.Requests(), func(r emulator.Request) bool { return !r.IsWrite() })
	}

	res := w.run(map[string]string{"routeOptimized": "true"})
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "endpoint "+endpoint+" is route-optimized, so it is queried on its own URL with an OAuth token only, and this connection (the token input) gives a personal access token")
	assert.Contains(t, res.Errors[0], "nothing was changed")
	assert.Empty(t, writes(), "no write with a connection that cannot query the endpoint")

	// An endpoint made route-optimized by an OAuth run is refused the same
	// way to a PAT run that does not ask for route optimization.
	res = w.oauthRun(map[string]string{"routeOptimized": "true"})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	w.ws.ResetRequests()
	res = w.run(map[string]string{"modelVersion": "2"})
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Contains(t, res.Errors[0], "is route-optimized, so it is queried on its own URL with an OAuth token only")
	assert.Empty(t, writes())
	assert.Equal(t, fmt.Sprintf("%s/%d/serving-endpoints/%s/invocations", w.ws.DataPlaneURL(), w.ws.WorkspaceID, endpoint), res.Outputs["endpointUrl"])
}
