package emulator

import (
	"crypto/rsa"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/credentials/u2m"
	"github.com/golang-jwt/jwt/v5"
)

// AzureDatabricksResourceID is the application id of the Azure Databricks
// resource in Microsoft Entra ID; tokens for it carry it as their audience
// (https://learn.microsoft.com/azure/databricks/dev-tools/auth/user-aad-token,
// scope 2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default).
const AzureDatabricksResourceID = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"

// EntraOptions make a workspace accept Microsoft Entra ID access tokens that
// a test identity provider signs.
type EntraOptions struct {
	// Key verifies the RS256 signature.
	Key *rsa.PublicKey
	// TenantID is the directory; the token's issuer must be
	// https://sts.windows.net/{tenant}/ (v1 tokens) or
	// https://login.microsoftonline.com/{tenant}/v2.0 (v2 tokens).
	TenantID string
	// Users are the principals (the token's oid, or appid/azp for a service
	// principal) that are users of the workspace. Empty means every principal
	// of the tenant is. Others get 403, as Azure Databricks answers for a
	// service principal that was never added to the workspace.
	Users []string
}

type oauthState struct {
	tokens    map[string]oauthToken     // access token → issued token
	dataPlane map[string]dataPlaneToken // data-plane token → endpoint (dataplane.go)
}

type oauthToken struct {
	clientID string
	expires  time.Time
}

func newOAuthState() oauthState {
	return oauthState{tokens: map[string]oauthToken{}, dataPlane: map[string]dataPlaneToken{}}
}

// authenticate checks the Authorization header the way Azure Databricks does:
// no credentials → 401, credentials that are not valid here → 403.
func (ws *Workspace) authenticate(r *http.Request) (string, *apiError) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return "", errorf(http.StatusUnauthorized, "UNAUTHENTICATED",
			"Credential was not sent or was of an unsupported type for this API.")
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(ws.Token)) == 1 {
		return ws.UserName, nil
	}
	ws.mu.Lock()
	issued, ok := ws.oauth.tokens[token]
	ws.mu.Unlock()
	if ok {
		if !ws.clock.Now().Before(issued.expires) {
			return "", permissionDenied("Invalid access token. The token has expired.")
		}
		return issued.clientID, nil
	}
	if ws.opts.Entra != nil && strings.Count(token, ".") == 2 {
		return ws.verifyEntra(token)
	}
	return "", permissionDenied("Invalid access token.")
}

func (ws *Workspace) verifyEntra(token string) (string, *apiError) {
	e := ws.opts.Entra
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return e.Key, nil },
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithAudience(AzureDatabricksResourceID),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(ws.clock.Now),
		jwt.WithLeeway(time.Minute),
	)
	if err != nil {
		return "", permissionDenied("Invalid access token: %v", err)
	}
	iss, _ := claims.GetIssuer()
	if iss != "https://sts.windows.net/"+e.TenantID+"/" && iss != "https://login.microsoftonline.com/"+e.TenantID+"/v2.0" {
		return "", permissionDenied("Invalid access token: issuer %q is not the workspace's tenant", iss)
	}
	principal := claimString(claims, "oid")
	ids := []string{principal, claimString(claims, "appid"), claimString(claims, "azp"), claimString(claims, "upn")}
	if principal == "" {
		principal = ids[1]
	}
	if len(e.Users) > 0 && !containsAny(e.Users, ids) {
		return "", permissionDenied("User %s is not part of this workspace. Please contact your workspace administrator.", principal)
	}
	return principal, nil
}

func claimString(c jwt.MapClaims, k string) string {
	s, _ := c[k].(string)
	return s
}

func containsAny(set, vals []string) bool {
	for _, s := range set {
		for _, v := range vals {
			if v != "" && s == v {
				return true
			}
		}
	}
	return false
}

// AllowEntraUser adds a principal (oid or application id) to the users of
// the workspace; DenyEntraUser removes it.
func (ws *Workspace) AllowEntraUser(id string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.opts.Entra != nil {
		ws.opts.Entra.Users = append(ws.opts.Entra.Users, id)
	}
}

// oauthTokenResponse is the RFC 6749 §5.1 access token response the
// workspace token endpoint answers (/oidc/v1/token,
// https://learn.microsoft.com/azure/databricks/dev-tools/auth/oauth-m2m).
// The SDK has no type for it: golang.org/x/oauth2 reads it.
type oauthTokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// oauthError is the RFC 6749 §5.2 error response.
type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// jwtBearerGrant is the grant databricks-sdk-go uses to exchange a workspace
// OAuth token for a data-plane token (httpclient.JWTGrantType).
const jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

func (ws *Workspace) oidcRoutes() {
	// Discovery document the SDK reads before an OAuth flow
	// (credentials/u2m/endpoint_supplier.go, GetWorkspaceOAuthEndpoints).
	ws.mux.HandleFunc("GET /oidc/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, u2m.OAuthAuthorizationServer{
			AuthorizationEndpoint: ws.url + "/oidc/v1/authorize",
			TokenEndpoint:         ws.url + "/oidc/v1/token",
		})
	})
	ws.mux.HandleFunc("POST /oidc/v1/token", ws.oauthToken)
}

// oauthToken implements the token exchange grant (federation.go) and the
// client_credentials grant with the client id and
// secret in HTTP basic auth (what the SDK sends, oauth2.AuthStyleInHeader) or
// in the form (client_secret_post).
func (ws *Workspace) oauthToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", err.Error()})
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "client_credentials":
	case jwtBearerGrant:
		ws.exchangeToken(w, r)
		return
	case grantTokenExchange:
		ws.tokenExchange(w, r)
		return
	default:
		writeJSON(w, http.StatusBadRequest, oauthError{"unsupported_grant_type", fmt.Sprintf("grant_type %q is not supported", gt)})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != "" {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	want, known := ws.opts.OAuthClients[id]
	if id == "" || !known || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		writeJSON(w, http.StatusUnauthorized, oauthError{"invalid_client", "Client authentication failed"})
		return
	}
	token := "dose" + randomHex(20)
	ttl := ws.opts.OAuthTokenTTL
	ws.mu.Lock()
	ws.oauth.tokens[token] = oauthToken{clientID: id, expires: ws.clock.Now().Add(ttl)}
	ws.mu.Unlock()
	writeJSON(w, http.StatusOK, oauthTokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: int64(ttl.Seconds()), Scope: r.PostForm.Get("scope")})
}
