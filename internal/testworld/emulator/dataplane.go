package emulator

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/serving"
)

// Route-optimized serving endpoints (CreateServingEndpoint.route_optimized).
//
// Such an endpoint is queried on its own host, not the workspace's:
// https://<unique-id>.<shard>.serving.azuredatabricks.net/<workspace-id>/serving-endpoints/<name>/invocations
// (Microsoft Learn, "Query route-optimized serving endpoints"), here the
// workspace's second listener (DataPlaneURL). GET answers that URL as
// endpoint_url ("This field is only populated if the endpoint is route
// optimized", same page) and in data_plane_info.query_info with the
// authorization_details a token for it must carry (databricks-sdk-go v0.81.0
// serving.DataPlaneInfo, ServingEndpointsDataPlaneAPI.Query).
//
// Only OAuth tokens are accepted ("Querying route-optimized endpoints only
// support using OAuth tokens. Personal access tokens are not supported.",
// same page). The token is obtained as databricks-sdk-go does
// (config/experimental/auth/dataplane, httpclient/oauth_token.go
// GetOAuthToken): POST /oidc/v1/token with grant_type
// urn:ietf:params:oauth:grant-type:jwt-bearer, the workspace OAuth token as
// assertion ("The token must be a JWT token") and the endpoint's
// authorization_details. The emulator accepts as assertion an OAuth token it
// issued (client credentials) or a Microsoft Entra ID token, and refuses a
// personal access token; the token it issues opens only that endpoint's
// data-plane URL. A route-optimized endpoint created after 2025-09-22 is not
// queried through the workspace URL ("Starting September 22, 2025, all newly
// created route-optimized endpoints must be queried exclusively through the
// route-optimized URL"). Route optimization is set at creation only
// (Databricks docs, "Configure route optimization on serving endpoints":
// "you can not update existing endpoints to be route optimized").
//
// Unverified: the status codes and messages of the refusals, the token
// lifetime (one hour), and the exchange accepting Entra ID tokens.

// workspaceURLCutoff is the day from which new route-optimized endpoints
// answer only on their route-optimized URL.
var workspaceURLCutoff = time.Date(2025, 9, 22, 0, 0, 0, 0, time.UTC)

// dataPlaneTokenTTL is the lifetime of a data-plane token.
const dataPlaneTokenTTL = time.Hour

type dataPlaneToken struct {
	endpointID string
	expires    time.Time
}

// dataPlaneServer is the host of route-optimized endpoints.
type dataPlaneServer struct {
	url string
	srv *http.Server
	mux *routeMux
}

// DataPlaneURL is the base URL of route-optimized endpoints (their own host).
func (ws *Workspace) DataPlaneURL() string { return ws.dataPlane.url }

// startDataPlane starts the data-plane listener with the workspace's TLS
// settings.
func (ws *Workspace) startDataPlane(tlsCfg *tls.Config) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("emulator: listen: %w", err)
	}
	dp := &dataPlaneServer{url: "http://" + ln.Addr().String(), mux: newRouteMux()}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
		dp.url = "https://" + ln.Addr().String()
	}
	dp.mux.route("POST /{workspace_id}/serving-endpoints/{name}/invocations", nil, ws.invokeDataPlane)
	dp.srv = &http.Server{Handler: http.HandlerFunc(ws.serveDataPlane), ReadHeaderTimeout: 10 * time.Second}
	ws.dataPlane = dp
	go func() { _ = dp.srv.Serve(ln) }()
	return nil
}

// routeOptimizedURL is an endpoint's invocation URL on the data plane.
func (ws *Workspace) routeOptimizedURL(name string) string {
	return fmt.Sprintf("%s/%d/serving-endpoints/%s/invocations", ws.dataPlane.url, ws.WorkspaceID, name)
}

// authorizationDetails is what a data-plane token for the endpoint must
// carry (RFC 9396 authorization details, the shape of Databricks's
// workspace_permission for serving endpoints).
type authorizationDetail struct {
	Type       string   `json:"type"`
	ObjectType string   `json:"object_type"`
	ObjectPath string   `json:"object_path"`
	Actions    []string `json:"actions"`
}

const queryAction = "query_inference_endpoint"

func authorizationDetails(e *endpoint) string {
	b, _ := json.Marshal([]authorizationDetail{{Type: "workspace_permission", ObjectType: "serving-endpoints", ObjectPath: "/serving-endpoints/" + e.id, Actions: []string{queryAction}}})
	return string(b)
}

// dataPlaneInfo is what GET answers of a route-optimized endpoint.
func (ws *Workspace) dataPlaneInfo(e *endpoint) *serving.ModelDataPlaneInfo {
	return &serving.ModelDataPlaneInfo{QueryInfo: &serving.DataPlaneInfo{EndpointUrl: ws.routeOptimizedURL(e.name), AuthorizationDetails: authorizationDetails(e)}}
}

// exchangeToken answers the jwt-bearer grant of /oidc/v1/token: a
// workspace OAuth token (the assertion) for a token scoped to one
// route-optimized endpoint.
func (ws *Workspace) exchangeToken(w http.ResponseWriter, r *http.Request) {
	assertion := r.PostForm.Get("assertion")
	ws.mu.Lock()
	issued, isOAuth := ws.oauth.tokens[assertion]
	ws.mu.Unlock()
	switch {
	case assertion == "":
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "assertion is required"})
		return
	case subtle.ConstantTimeCompare([]byte(assertion), []byte(ws.Token)) == 1 || (!isOAuth && strings.Count(assertion, ".") != 2):
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_grant", "The assertion must be an OAuth token (a JWT); personal access tokens cannot be exchanged."})
		return
	case isOAuth && !ws.clock.Now().Before(issued.expires):
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_grant", "The assertion has expired."})
		return
	case !isOAuth:
		if _, aerr := ws.verifyEntra(assertion); aerr != nil {
			writeJSON(w, http.StatusBadRequest, oauthError{"invalid_grant", aerr.Message})
			return
		}
	}
	var details []authorizationDetail
	if err := json.Unmarshal([]byte(r.PostForm.Get("authorization_details")), &details); err != nil || len(details) == 0 {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "authorization_details must be a JSON list of authorization details"})
		return
	}
	d := details[0]
	id, _ := strings.CutPrefix(d.ObjectPath, "/serving-endpoints/")
	var target *endpoint
	ws.do(func() {
		for _, e := range ws.serving.endpoints {
			if e.id == id && e.routeOptimized {
				target = e
			}
		}
	})
	if d.Type != "workspace_permission" || d.ObjectType != "serving-endpoints" || target == nil || !slices.Contains(d.Actions, queryAction) {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "authorization_details do not name a route-optimized serving endpoint and the action " + queryAction})
		return
	}
	token := "dpt" + randomHex(20)
	ws.mu.Lock()
	ws.oauth.dataPlane[token] = dataPlaneToken{endpointID: id, expires: ws.clock.Now().Add(dataPlaneTokenTTL)}
	ws.mu.Unlock()
	writeJSON(w, http.StatusOK, oauthTokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: int64(dataPlaneTokenTTL.Seconds())})
}

type dataPlaneKey struct{}

// serveDataPlane records a request to the data-plane host and routes it.
func (ws *Workspace) serveDataPlane(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 256<<20))
	if err != nil {
		writeError(w, invalidParam("reading request body: %v", err))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	rec := &Request{Time: ws.clock.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Raw: raw, DataPlane: true}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		rec.Status = sw.status
		ws.recMu.Lock()
		ws.records = append(ws.records, *rec)
		ws.recMu.Unlock()
	}()
	ctx := context.WithValue(context.WithValue(r.Context(), recordKey{}, rec), dataPlaneKey{}, true)
	r = r.WithContext(ctx)
	if _, pattern := ws.dataPlane.mux.Handler(r); pattern == "" {
		writeError(sw, errorf(http.StatusNotFound, "ENDPOINT_NOT_FOUND", "No API found for '%s %s'", r.Method, r.URL.Path))
		return
	}
	ws.dataPlane.mux.ServeHTTP(sw, r)
}

// invokeDataPlane is an invocation on the data-plane host: only a token
// issued for this endpoint is accepted.
func (ws *Workspace) invokeDataPlane(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("workspace_id") != fmt.Sprint(ws.WorkspaceID) {
		writeError(w, notFound("Workspace %s is not served here.", r.PathValue("workspace_id")))
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		writeError(w, errorf(http.StatusUnauthorized, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API."))
		return
	}
	var aerr *apiError
	ws.do(func() {
		e, ok := ws.serving.endpoints[r.PathValue("name")]
		t, known := ws.oauth.dataPlane[token]
		switch {
		case !ok || !e.routeOptimized:
			aerr = notFound("Endpoint with name '%s' does not exist.", r.PathValue("name"))
		case !known:
			aerr = errorf(http.StatusUnauthorized, "UNAUTHENTICATED", "Route-optimized endpoints accept only OAuth tokens obtained for the endpoint; personal access tokens and workspace tokens are not supported.")
		case t.endpointID != e.id:
			aerr = permissionDenied("The token was not issued for endpoint %s.", e.name)
		case !ws.clock.Now().Before(t.expires):
			aerr = permissionDenied("Invalid access token. The token has expired.")
		}
	})
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	ws.invoke(w, r)
}

func onDataPlane(r *http.Request) bool {
	v, _ := r.Context().Value(dataPlaneKey{}).(bool)
	return v
}
