package azurestandin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Microsoft Entra ID: the tenant's OpenID configuration and its v2.0 token
// endpoint for the client credentials grant, with a client secret, a
// certificate assertion or a federated (pipeline OIDC) assertion, answering
// errors in Entra's shape with the AADSTS codes of
// https://learn.microsoft.com/entra/identity-platform/reference-error-codes.

// OIDCAudience is the audience of the pipeline's OIDC tokens and of
// federated assertions
// (https://learn.microsoft.com/entra/workload-id/workload-identity-federation).
const OIDCAudience = "api://AzureADTokenExchange"

const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// knownTenant: the apps' tenant and the tenants of the vaults.
func (a *Azure) knownTenant(tenant string) bool {
	if strings.EqualFold(tenant, a.TenantID) {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, v := range a.vaults {
		if strings.EqualFold(v.TenantID, tenant) {
			return true
		}
	}
	return false
}

// accessToken is an Entra v1 access token for an app of a tenant.
func (a *Azure) accessToken(aud, tenant, appID string) (string, error) {
	now := a.clock.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"aud": aud, "iss": "https://sts.windows.net/" + tenant + "/", "tid": tenant,
		"appid": appID, "oid": appID, "iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(a.ttl).Unix(),
	}).SignedString(a.entraKey)
	return a.mint(tok), err
}

func entraError(w http.ResponseWriter, status int, code string, aadsts int, text string) {
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: 0b1c\r\nCorrelation ID: 2d3e\r\nTimestamp: 2026-01-01 00:00:00Z", aadsts, text),
		"error_codes":       []int{aadsts},
	})
}

func (a *Azure) entra(w http.ResponseWriter, r *http.Request) {
	tenant, _, _ := strings.Cut(strings.Trim(r.URL.Path, "/"), "/")
	base := "https://" + EntraHost + "/" + tenant
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
		if !a.knownTenant(tenant) {
			entraError(w, http.StatusBadRequest, "invalid_tenant", 90002, "Tenant '"+tenant+"' not found.")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer":                 base + "/v2.0",
		})
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
		a.token(w, r, tenant, base+"/oauth2/v2.0/token")
	default:
		entraError(w, http.StatusNotFound, "invalid_request", 900561, "The endpoint only accepts POST requests. Received a "+r.Method+" request.")
	}
}

func (a *Azure) token(w http.ResponseWriter, r *http.Request, tenant, endpoint string) {
	if err := r.ParseForm(); err != nil {
		entraError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "client_credentials" {
		entraError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '"+f.Get("grant_type")+"'.")
		return
	}
	client := f.Get("client_id")
	scopes := strings.Fields(f.Get("scope"))
	if len(scopes) == 0 {
		entraError(w, http.StatusBadRequest, "invalid_scope", 1002012, "The provided value for scope is not valid.")
		return
	}
	a.mu.Lock()
	app, ok := a.apps[client]
	if ok {
		copied := *app
		app = &copied
	}
	a.mu.Unlock()
	if !ok || !strings.EqualFold(tenant, a.TenantID) {
		entraError(w, http.StatusBadRequest, "unauthorized_client", 700016, "Application with identifier '"+client+"' was not found in the directory '"+tenant+"'.")
		return
	}
	if assertion := f.Get("client_assertion"); assertion != "" {
		if f.Get("client_assertion_type") != jwtBearer {
			entraError(w, http.StatusBadRequest, "invalid_request", 700025, "Client assertion type is not supported.")
			return
		}
		if aadsts, text := a.checkAssertion(app, assertion, endpoint); aadsts != 0 {
			status, code := http.StatusBadRequest, "invalid_request"
			if aadsts == 700027 { // a certificate that does not verify: the client is not authenticated
				status, code = http.StatusUnauthorized, "invalid_client"
			}
			entraError(w, status, code, aadsts, text)
			return
		}
	} else {
		switch secret := f.Get("client_secret"); {
		case secret == "":
			entraError(w, http.StatusBadRequest, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
			return
		case app.Secret != "" && secret == app.Secret:
		case app.ExpiredSecret != "" && secret == app.ExpiredSecret:
			entraError(w, http.StatusUnauthorized, "invalid_client", 7000222, "The provided client secret keys for app '"+client+"' are expired.")
			return
		default:
			entraError(w, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided.")
			return
		}
	}
	tok, err := a.accessToken(strings.TrimSuffix(scopes[0], "/.default"), tenant, client)
	if err != nil {
		entraError(w, http.StatusInternalServerError, "server_error", 50000, err.Error())
		return
	}
	ttl := int(a.ttl.Seconds())
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": tok})
}

// checkAssertion checks a client assertion: a pipeline OIDC token whose
// subject is one of the app's federated credentials, or a JWT signed with
// the app's certificate for the token endpoint. It returns an AADSTS code
// and text when the assertion is refused.
func (a *Azure) checkAssertion(app *App, assertion, endpoint string) (int, string) {
	noMatch := "No matching federated identity record found for presented assertion subject."
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(assertion, claims, func(*jwt.Token) (any, error) { return &a.oidcKey.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(a.clock.Now))
	if err == nil { // a pipeline OIDC token
		sub, _ := claims.GetSubject()
		iss, _ := claims.GetIssuer()
		aud, _ := claims.GetAudience()
		if iss != a.OIDCIssuer() || len(aud) != 1 || aud[0] != OIDCAudience {
			return 700211, "No matching federated identity record found for presented assertion issuer '" + iss + "'."
		}
		for _, s := range app.FederatedSubjects {
			if s == sub {
				return 0, ""
			}
		}
		return 700213, noMatch + " Assertion subject: '" + sub + "'."
	}
	if app.Certificate == nil {
		return 700213, noMatch
	}
	_, err = jwt.Parse(assertion, func(*jwt.Token) (any, error) { return app.Certificate.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256", "PS256"}), jwt.WithAudience(endpoint))
	if err != nil {
		return 700027, "Client assertion failed signature validation."
	}
	return 0, ""
}

// imds is the Azure Instance Metadata Service's managed identity endpoint
// (https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token).
func (a *Azure) imds(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Metadata") != "true" || r.URL.Path != "/metadata/identity/oauth2/token" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "Required metadata header not specified"})
		return
	}
	ids := a.opts.ManagedIdentities
	id := r.URL.Query().Get("client_id")
	known := false
	for _, m := range ids {
		known = known || m == id
	}
	if id == "" && len(ids) > 0 {
		id, known = ids[0], true
	}
	if !known {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "Identity not found"})
		return
	}
	resource := r.URL.Query().Get("resource")
	tok, err := a.accessToken(strings.TrimSuffix(resource, "/"), a.TenantID, id)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"access_token": tok, "resource": resource, "token_type": "Bearer",
		"expires_in": fmt.Sprint(int(a.ttl.Seconds())), "expires_on": fmt.Sprint(time.Now().Add(a.ttl).Unix()),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
