package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go/config/experimental/auth/oidc"
	"github.com/databricks/databricks-sdk-go/credentials/u2m"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/brickferry/brickferry/internal/agent"
)

// Databricks workload identity federation (MethodFederation): the pipeline's
// OIDC token, from System.OidcRequestUri as for an Azure Resource Manager
// connection with workload identity federation (pipelineAssertion), is
// exchanged at the workspace's token endpoint for a Databricks OAuth token
// by databricks-sdk-go's own token source (config/experimental/auth/oidc,
// DatabricksOIDCTokenSource: the exchange its env-oidc and file-oidc
// credentials make). No Microsoft Entra app and no secret are involved; a
// federation policy of the Databricks account trusts the token
// (https://learn.microsoft.com/azure/databricks/dev-tools/auth/oauth-federation-policy).
//
// It is a task input (connectionMethod databricksFederation), not a scheme
// of the Databricks service connection type: a custom endpoint type can only
// use Azure DevOps' closed set of authentication schemes (basic, token and
// the few others of "Service endpoint authentication schemes",
// https://learn.microsoft.com/azure/devops/extend/develop/auth-schemes, each
// a stored credential put in a request header), none of which yields an
// OIDC token; and the pipeline's OIDC endpoint
// issues tokens for the pipeline itself (no serviceConnectionId) or for a
// service connection of a built-in type with workload identity federation.

// OIDCAudience is the audience of every OIDC token Azure DevOps issues to a
// pipeline: a Databricks federation policy must list it
// (databricks-sdk-go issue 1391; Entra's workload identity federation).
const OIDCAudience = "api://AzureADTokenExchange"

// FederationClaims are the issuer, subject and audience of an OIDC token of
// the pipeline, as a federation policy must name them.
type FederationClaims struct {
	Issuer, Subject, Audience string
}

// Organization is the Azure DevOps organization's name, from the collection
// URL (https://dev.azure.com/{org}/ or https://{org}.visualstudio.com/).
func Organization(sys agent.System) string {
	u, err := url.Parse(sys.CollectionURI)
	if err != nil || u.Host == "" {
		return ""
	}
	if org, ok := strings.CutSuffix(strings.ToLower(u.Host), ".visualstudio.com"); ok {
		return org
	}
	org, _, _ := strings.Cut(strings.Trim(u.Path, "/"), "/")
	return org
}

// ExpectedClaims are the claims of the token a job presents, computed from
// its variables: issuer https://vstoken.dev.azure.com/{System.CollectionId},
// audience api://AzureADTokenExchange, subject p://{org}/{project}/{pipeline}
// for the pipeline's own token or sc://{org}/{project}/{connection} for a
// service connection's (the sc:// subject: microsoft/azure-pipelines-tasks
// docs/service-connections/azure-oidc/README.md; the issuer and the p://
// subject: databricks-sdk-go issue 1391, which also says System.CollectionId
// is the organization id). Azure Resource Manager connections created since
// Entra became their issuer use other claims, shown on the connection's
// page; the pipeline's OIDC endpoint still issues these. An empty connection
// name stands for "<connection name>".
func ExpectedClaims(sys agent.System, subject, connection string) FederationClaims {
	c := FederationClaims{Issuer: "https://vstoken.dev.azure.com/" + sys.CollectionID, Audience: OIDCAudience}
	if sys.CollectionID == "" {
		c.Issuer = "https://vstoken.dev.azure.com/<organization id: System.CollectionId>"
	}
	prefix := Organization(sys) + "/" + sys.Project + "/"
	if subject == SubjectServiceConnection {
		if connection == "" {
			connection = "<service connection name>"
		}
		c.Subject = "sc://" + prefix + connection
	} else {
		c.Subject = "p://" + prefix + sys.DefinitionName
	}
	return c
}

// presentedTokens gets the pipeline's OIDC tokens and keeps the claims of the
// last one, to say what was presented when Databricks refuses it.
type presentedTokens struct {
	request func(context.Context) (string, error)

	mu   sync.Mutex
	last *FederationClaims
}

// IDToken implements oidc.IDTokenSource. Azure DevOps sets the audience
// itself (OIDCAudience): the one asked for is not sent.
func (p *presentedTokens) IDToken(ctx context.Context, _ string) (*oidc.IDToken, error) {
	tok, err := p.request(ctx)
	if err != nil {
		return nil, err
	}
	// Read, not verified: the claims are only reported.
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err == nil {
		c := &FederationClaims{}
		c.Issuer, _ = claims.GetIssuer()
		c.Subject, _ = claims.GetSubject()
		if aud, _ := claims.GetAudience(); len(aud) > 0 {
			c.Audience = strings.Join(aud, ", ")
		}
		p.mu.Lock()
		p.last = c
		p.mu.Unlock()
	}
	return &oidc.IDToken{Value: tok}, nil
}

func (p *presentedTokens) claims() *FederationClaims {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// PresentedClaims asks the pipeline's OIDC endpoint for a token, of the
// service connection connectionID ("" for the pipeline's own), and returns
// its claims: what a federation will be presented. The token itself is
// registered as a secret and dropped.
func (r *Resolver) PresentedClaims(ctx context.Context, connectionID string) (*FederationClaims, error) {
	sys := r.Env.System()
	if sys.OIDCRequestURI == "" || r.Env.JobToken() == "" {
		return nil, errors.New("the pipeline's OIDC endpoint (System.OidcRequestUri) or the job's access token is missing: run in a pipeline job (a script step maps SYSTEM_ACCESSTOKEN: $(System.AccessToken))")
	}
	p := &presentedTokens{request: r.pipelineAssertion(connectionID, sys.OIDCRequestURI)}
	if _, err := p.IDToken(ctx, OIDCAudience); err != nil {
		return nil, err
	}
	if c := p.claims(); c != nil {
		return c, nil
	}
	return nil, errors.New("the pipeline's OIDC token is not a JWT")
}

// federation returns how tokens of a MethodFederation workspace are fetched.
func (r *Resolver) federation(opts Options, ws *Workspace, hc *http.Client) (fetchFunc, error) {
	sys := r.Env.System()
	if sys.OIDCRequestURI == "" {
		return nil, errors.New("workload identity federation with Databricks needs the pipeline's OIDC endpoint (System.OidcRequestUri), which this agent did not provide: use an agent version 3.227 or later, in a pipeline run (not locally)")
	}
	if r.Env.JobToken() == "" {
		return nil, errors.New("workload identity federation with Databricks needs the job's access token, which the agent did not provide")
	}
	connectionID, whose := "", "this pipeline's OIDC token"
	if opts.FederationSubject == SubjectServiceConnection {
		if opts.ARM == nil {
			return nil, errors.New("no Azure Resource Manager service connection was given to present its OIDC token")
		}
		connectionID, whose = opts.ARM.ID, "the OIDC token of service connection "+opts.ARM.ID
	}
	if opts.FederationClientID != "" {
		ws.Principal = fmt.Sprintf("Databricks service principal %s (federation with %s)", opts.FederationClientID, whose)
	} else {
		ws.Principal = fmt.Sprintf("the principal named by %s (account-wide federation)", whose)
	}
	ids := &presentedTokens{request: r.pipelineAssertion(connectionID, sys.OIDCRequestURI)}
	ts := oidc.NewDatabricksOIDCTokenSource(oidc.DatabricksOIDCTokenSourceConfig{
		ClientID: opts.FederationClientID,
		Host:     ws.Host,
		TokenEndpointProvider: func(context.Context) (*u2m.OAuthAuthorizationServer, error) {
			return &u2m.OAuthAuthorizationServer{TokenEndpoint: ws.Host + "/oidc/v1/token"}, nil
		},
		Audience:      OIDCAudience,
		IDTokenSource: ids,
	})
	return func(ctx context.Context) (string, time.Time, error) {
		start := r.now()
		// The token source's HTTP client is the agent's (proxy,
		// certificates, retries), passed the way golang.org/x/oauth2 takes it.
		tok, err := ts.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
		if err != nil {
			return "", time.Time{}, explainFederation(err, ids.claims(), opts, sys)
		}
		// The expiry on our clock: oauth2 computes Expiry on the wall clock.
		var expires time.Time
		switch {
		case tok.ExpiresIn > 0:
			expires = start.Add(time.Duration(tok.ExpiresIn) * time.Second)
		case !tok.Expiry.IsZero():
			expires = start.Add(time.Until(tok.Expiry))
		}
		return tok.AccessToken, expires, nil
	}, nil
}

// FederationError is Databricks' refusal of the pipeline's OIDC token. It
// names what was presented, what the policy must name, and the subject of
// the other kind of token the pipeline can present, the usual mix-up
// (databricks-sdk-go issue 1391): Databricks' answer names neither.
type FederationError struct {
	Status      int
	Code        string
	Description string
	ClientID    string
	Presented   *FederationClaims // nil when no token was obtained
	Other       FederationClaims  // the other kind of token's claims
	OtherHow    string            // how to present that one instead
}

func (e *FederationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Azure Databricks refused the pipeline's OIDC token (%d %s: %s)", e.Status, e.Code, agent.Neutralize(e.Description))
	owner := "The federation policy of Databricks service principal " + e.ClientID
	if e.ClientID == "" {
		owner = "The account federation policy (no service principal was given: account-wide federation)"
	}
	if p := e.Presented; p != nil {
		fmt.Fprintf(&b, ". The token presented has subject %q, issuer %q, audience %q. %s must name exactly that issuer, that subject and that audience", p.Subject, p.Issuer, p.Audience, owner)
	}
	fmt.Fprintf(&b, ". If the policy expects subject %q instead, %s", e.Other.Subject, e.OtherHow)
	return b.String()
}

// explainFederation turns a refused token exchange into a FederationError.
func explainFederation(err error, presented *FederationClaims, opts Options, sys agent.System) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return err
	}
	e := &FederationError{Status: re.Response.StatusCode, Code: re.ErrorCode, Description: re.ErrorDescription, ClientID: opts.FederationClientID, Presented: presented}
	if opts.FederationSubject == SubjectServiceConnection {
		e.Other = ExpectedClaims(sys, SubjectPipeline, "")
		e.OtherHow = "which is this pipeline's own token (as the Databricks CLI's azure-devops-oidc presents it): set federationSubject to pipeline, or change the policy's subject"
	} else {
		e.Other = ExpectedClaims(sys, SubjectServiceConnection, "")
		e.OtherHow = "which is the token of an Azure Resource Manager service connection: set federationSubject to serviceConnection and choose that connection, or change the policy's subject"
	}
	return e
}
