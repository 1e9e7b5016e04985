package emulator

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Databricks OAuth token federation: the workspace token endpoint exchanges a
// JWT of a trusted identity provider for a Databricks access token
// (RFC 8693 token exchange), when a federation policy of the account trusts
// the token's issuer, audience and subject
// (https://learn.microsoft.com/azure/databricks/dev-tools/auth/oauth-federation-policy,
// .../oauth-federation-exchange).

// Token exchange parameters (RFC 8693 §2.1, §3), as databricks-sdk-go
// v0.81.0 sends them (config/experimental/auth/oidc/tokensource.go).
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeJWT       = "urn:ietf:params:oauth:token-type:jwt"
)

// FederationPolicy is a Databricks federation policy.
type FederationPolicy struct {
	// ServicePrincipal is the application id of the service principal a
	// service principal federation policy belongs to: an exchange that names
	// it as client_id signs in as it when issuer, audience and subject match.
	// Empty: an account federation policy, which signs in as the principal
	// the token's subject names (subject_claim "sub") and applies to an
	// exchange without client_id.
	ServicePrincipal string
	// Issuer is the token's iss, e.g. https://vstoken.dev.azure.com/<org id>.
	Issuer string
	// Audiences the token's aud must be one of. Databricks' default, the
	// account id, is not modelled: give them.
	Audiences []string
	// Subject is the token's sub the policy admits (service principal
	// policies only).
	Subject string
	// Key verifies the token's RS256 signature: Databricks reads the issuer's
	// keys from its OpenID configuration (jwks_uri); the emulator takes them.
	Key *rsa.PublicKey
}

// tokenExchange answers a token exchange grant. A subject token that no
// policy admits is refused with 400 invalid_request (RFC 8693 §2.2.2: "If
// ... the subject_token ... [is] invalid for any reason ... The value of the
// error parameter MUST be the invalid_request error code"). The answer never
// says which policy or which claim failed, nor what a policy expects: the
// client has to tell its user what it presented.
func (ws *Workspace) tokenExchange(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	if f.Get("subject_token_type") != tokenTypeJWT || f.Get("subject_token") == "" {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "subject_token and subject_token_type " + tokenTypeJWT + " are required"})
		return
	}
	principal, ttl, err := ws.federate(f.Get("subject_token"), f.Get("client_id"))
	if err != nil {
		if ws.opts.Logf != nil {
			ws.opts.Logf("emulator %s: token exchange refused: %v", ws.opts.Name, err)
		}
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "The subject token is not valid for any federation policy of this account."})
		return
	}
	token := "dofe" + randomHex(20)
	ws.mu.Lock()
	ws.oauth.tokens[token] = oauthToken{clientID: principal, expires: ws.clock.Now().Add(ttl)}
	ws.mu.Unlock()
	writeJSON(w, http.StatusOK, oauthTokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: int64(ttl.Seconds()), Scope: f.Get("scope")})
}

// federate finds the policy that admits the subject token for clientID and
// returns the principal signed in and the lifetime of its access token: the
// subject token's remaining lifetime ("The lifetime of each access token is
// derived from the lifetime of the federated token", oauth-federation-exchange),
// at most OAuthTokenTTL.
func (ws *Workspace) federate(subjectToken, clientID string) (string, time.Duration, error) {
	ws.mu.Lock()
	policies := slices.Clone(ws.opts.FederationPolicies)
	ws.mu.Unlock()
	var errs []error
	for _, p := range policies {
		if p.ServicePrincipal != clientID {
			continue
		}
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(subjectToken, claims, func(*jwt.Token) (any, error) { return p.Key, nil },
			jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(p.Issuer), jwt.WithExpirationRequired(), jwt.WithTimeFunc(ws.clock.Now))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		aud, _ := claims.GetAudience()
		if !slices.ContainsFunc(p.Audiences, func(a string) bool { return slices.Contains(aud, a) }) {
			errs = append(errs, fmt.Errorf("audience %v is not one of %v", aud, p.Audiences))
			continue
		}
		sub, _ := claims.GetSubject()
		if p.ServicePrincipal != "" && sub != p.Subject {
			errs = append(errs, fmt.Errorf("subject %q is not %q", sub, p.Subject))
			continue
		}
		exp, _ := claims.GetExpirationTime()
		ttl := min(exp.Sub(ws.clock.Now()), ws.opts.OAuthTokenTTL)
		if p.ServicePrincipal != "" {
			return p.ServicePrincipal, ttl, nil
		}
		return sub, ttl, nil
	}
	if len(errs) == 0 {
		return "", 0, fmt.Errorf("no federation policy for client_id %q", clientID)
	}
	return "", 0, errors.Join(errs...)
}
