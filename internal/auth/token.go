package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/config/credentials"
	"golang.org/x/oauth2"

	"github.com/brickferry/brickferry/internal/agent"
)

// refreshMargin: a cached token is renewed when it has less than this left,
// so that a request never leaves with a token that expires on the way.
const refreshMargin = time.Minute

// fetchFunc obtains a new access token and its expiry (zero: never expires).
type fetchFunc func(ctx context.Context) (token string, expires time.Time, err error)

// tokenCache hands out an access token, fetching a new one when the last is
// about to expire. Every token it obtains is registered with the agent as a
// secret before it is returned.
type tokenCache struct {
	fetch fetchFunc
	now   func() time.Time
	log   *agent.Log

	mu      sync.Mutex
	token   string
	expires time.Time
	fetches int
}

func (c *tokenCache) Token(ctx context.Context) (string, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && (c.expires.IsZero() || c.now().Before(c.expires.Add(-refreshMargin))) {
		return c.token, c.expires, nil
	}
	token, expires, err := c.fetch(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	if token == "" {
		return "", time.Time{}, errors.New("the identity provider returned an empty access token")
	}
	c.log.SetSecret(token)
	c.token, c.expires = token, expires
	c.fetches++
	return token, expires, nil
}

// staticToken is a token that does not expire on our side (a PAT).
func staticToken(token string) fetchFunc {
	return func(context.Context) (string, time.Time, error) { return token, time.Time{}, nil }
}

// entraToken gets tokens for scope from a Microsoft Entra credential.
func entraToken(cred azcore.TokenCredential, scope string) fetchFunc {
	return func(ctx context.Context) (string, time.Time, error) {
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
		if err != nil {
			return "", time.Time{}, err
		}
		return tok.Token, tok.ExpiresOn, nil
	}
}

// OAuthError is a refusal by the workspace's OAuth token endpoint (RFC 6749 §5.2).
type OAuthError struct {
	Status      int
	Code        string // e.g. invalid_client
	Description string
}

func (e *OAuthError) Error() string {
	if e.Code == "invalid_client" {
		return fmt.Sprintf("the workspace's OAuth endpoint refused the client id or secret (%s): check both, and that the secret has not expired; the service principal must also be added to the workspace", e.Code)
	}
	return fmt.Sprintf("the workspace's OAuth endpoint answered %d %s %s", e.Status, e.Code, agent.Neutralize(e.Description))
}

// oauthM2M gets workspace OAuth tokens with the client credentials grant
// (https://learn.microsoft.com/azure/databricks/dev-tools/auth/oauth-m2m):
// POST {host}/oidc/v1/token, client id and secret in HTTP basic auth,
// scope all-apis. The expiry is taken on our clock.
func oauthM2M(host, clientID, clientSecret string, hc *http.Client, now func() time.Time) fetchFunc {
	return func(ctx context.Context) (string, time.Time, error) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"all-apis"}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, host+"/oidc/v1/token", strings.NewReader(form.Encode()))
		if err != nil {
			return "", time.Time{}, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(clientSecret))
		start := now()
		resp, err := hc.Do(req)
		if err != nil {
			return "", time.Time{}, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return "", time.Time{}, err
		}
		var out struct {
			AccessToken      string `json:"access_token"`
			ExpiresIn        int64  `json:"expires_in"`
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &out)
		if resp.StatusCode != http.StatusOK || out.AccessToken == "" {
			return "", time.Time{}, &OAuthError{Status: resp.StatusCode, Code: out.Error, Description: out.ErrorDescription}
		}
		var expires time.Time
		if out.ExpiresIn > 0 {
			expires = start.Add(time.Duration(out.ExpiresIn) * time.Second)
		}
		return out.AccessToken, expires, nil
	}
}

// Headers of Azure Databricks for a service principal that is not a
// workspace user yet: with an Azure management token and the workspace's
// resource id, a principal with Contributor on the workspace is added to it
// (databricks-sdk-go config/auth_azure_cli.go; Azure Databricks "Get Microsoft
// Entra ID tokens for service principals").
const (
	headerManagementToken     = "X-Databricks-Azure-SP-Management-Token"
	headerWorkspaceResourceID = "X-Databricks-Azure-Workspace-Resource-Id"
)

// strategy is the databricks-sdk-go CredentialsStrategy of a resolved
// workspace: it sets a bearer token from a tokenCache on every request, so
// tokens are refreshed when they expire, and (optionally) the management
// headers.
type strategy struct {
	name       string
	main       *tokenCache
	management *tokenCache // nil unless the management headers are sent
	resourceID string
	wrap       func(error) error // explains a failure to get a token
}

var _ config.CredentialsStrategy = (*strategy)(nil)

func (s *strategy) Name() string { return s.name }

func (s *strategy) Configure(context.Context, *config.Config) (credentials.CredentialsProvider, error) {
	visitor := func(r *http.Request) error {
		token, _, err := s.main.Token(r.Context())
		if err != nil {
			return s.wrap(err)
		}
		r.Header.Set("Authorization", "Bearer "+token)
		if s.management != nil {
			mt, _, err := s.management.Token(r.Context())
			if err != nil {
				return s.wrap(err)
			}
			r.Header.Set(headerManagementToken, mt)
			r.Header.Set(headerWorkspaceResourceID, s.resourceID)
		}
		return nil
	}
	token := func() (*oauth2.Token, error) {
		t, exp, err := s.main.Token(context.Background())
		if err != nil {
			return nil, s.wrap(err)
		}
		return &oauth2.Token{AccessToken: t, TokenType: "Bearer", Expiry: exp}, nil
	}
	return credentials.NewOAuthCredentialsProvider(visitor, token), nil
}

// noLoader is the only config.Loader of our SDK configurations: nothing is
// read from DATABRICKS_*/ARM_* variables or ~/.databrickscfg, which the SDK's
// default loaders (ConfigAttributes, ConfigFile) would.
type noLoader struct{}

func (noLoader) Name() string                   { return "brickferry" }
func (noLoader) Configure(*config.Config) error { return nil }
