package auth

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/httpclient"
)

// DatabricksScope is the scope of Microsoft Entra tokens for Azure
// Databricks: the application id of the AzureDatabricks resource
// (https://learn.microsoft.com/azure/databricks/dev-tools/auth/user-aad-token).
const DatabricksScope = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"

// managementScope is Azure Service Management, for the management header.
const managementScope = "https://management.core.windows.net//.default"

// authorityHosts are the Microsoft Entra authorities of the Azure clouds, by
// the "environment" data of an Azure Resource Manager connection.
var authorityHosts = map[string]string{
	"azurecloud":        "https://login.microsoftonline.com/",
	"azurechinacloud":   "https://login.chinacloudapi.cn/",
	"azureusgovernment": "https://login.microsoftonline.us/",
}

// vaultSuffixes are the Key Vault DNS suffixes of the Azure clouds.
var vaultSuffixes = map[string]string{
	"azurecloud":        "vault.azure.net",
	"azurechinacloud":   "vault.azure.cn",
	"azureusgovernment": "vault.usgovcloudapi.net",
}

// armIdentity is the Microsoft Entra identity of an Azure Resource Manager
// service connection.
type armIdentity struct {
	cred     azcore.TokenCredential
	scheme   string
	tenant   string
	clientID string
	vault    string // Key Vault DNS suffix of the connection's cloud
}

// describe names the identity in messages.
func (a *armIdentity) describe() string {
	switch {
	case strings.EqualFold(a.scheme, schemeManagedIdentity) && a.clientID != "":
		return fmt.Sprintf("managed identity %s", a.clientID)
	case strings.EqualFold(a.scheme, schemeManagedIdentity):
		return "the agent's managed identity"
	default:
		return fmt.Sprintf("service principal %s (tenant %s)", a.clientID, a.tenant)
	}
}

// armCredential builds the credential of an Azure Resource Manager
// connection: workload identity federation, service principal with secret or
// certificate, or managed identity.
func (r *Resolver) armCredential(ep *agent.Endpoint) (*armIdentity, error) {
	t, err := r.transport()
	if err != nil {
		return nil, err
	}
	env := strings.ToLower(ep.DataValue("environment"))
	authority := r.AuthorityHost
	if authority == "" {
		authority = cmp.Or(ep.DataValue("activeDirectoryAuthority"), ep.DataValue("environmentAuthorityUrl"), authorityHosts[env], authorityHosts["azurecloud"])
	}
	if !strings.HasSuffix(authority, "/") {
		authority += "/"
	}
	opts := azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: authority},
		Transport: &http.Client{Transport: t},
	}
	id := &armIdentity{
		scheme:   cmp.Or(ep.Scheme, schemeServicePrincipal),
		tenant:   ep.Param("tenantid"),
		clientID: ep.Param("serviceprincipalid"),
		vault:    cmp.Or(r.KeyVaultSuffix, ep.DataValue("AzureKeyVaultDnsSuffix"), vaultSuffixes[env], vaultSuffixes["azurecloud"]),
	}
	var cred azcore.TokenCredential
	switch {
	case strings.EqualFold(id.scheme, schemeWorkloadIdentity):
		sys := r.Env.System()
		if sys.OIDCRequestURI == "" {
			return nil, errors.New("workload identity federation needs the pipeline's OIDC endpoint (System.OidcRequestUri), which this agent did not provide: use an agent version 3.227 or later, in a pipeline run (not locally)")
		}
		if r.Env.JobToken() == "" {
			return nil, errors.New("workload identity federation needs the job's access token, which the agent did not provide")
		}
		cred, err = azidentity.NewClientAssertionCredential(id.tenant, id.clientID, r.pipelineAssertion(ep.ID, sys.OIDCRequestURI), &azidentity.ClientAssertionCredentialOptions{
			ClientOptions: opts, DisableInstanceDiscovery: true,
		})
	case strings.EqualFold(id.scheme, schemeManagedIdentity):
		mopts := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if c := ep.DataValue("msiclientId"); c != "" {
			id.clientID = c
			mopts.ID = azidentity.ClientID(c)
		}
		cred, err = azidentity.NewManagedIdentityCredential(mopts)
	case strings.EqualFold(ep.Param("authenticationType"), "spnCertificate"):
		certs, key, perr := azidentity.ParseCertificates([]byte(ep.Param("servicePrincipalCertificate")), nil)
		if perr != nil {
			return nil, fmt.Errorf("the service connection's certificate cannot be used (it must be PEM with the certificate and an unencrypted private key): %w", perr)
		}
		cred, err = azidentity.NewClientCertificateCredential(id.tenant, id.clientID, certs, key, &azidentity.ClientCertificateCredentialOptions{
			ClientOptions: opts, DisableInstanceDiscovery: true,
		})
	default:
		cred, err = azidentity.NewClientSecretCredential(id.tenant, id.clientID, ep.Param("serviceprincipalkey"), &azidentity.ClientSecretCredentialOptions{
			ClientOptions: opts, DisableInstanceDiscovery: true,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("the service connection's identity: %w", err)
	}
	id.cred = &tenantGuard{cred: cred, tenant: id.tenant, log: r.Log}
	return id, nil
}

// pipelineAssertion asks the pipeline's OIDC endpoint for an ID token of the
// service connection (connectionID "": of the pipeline itself), as azidentity.AzurePipelinesCredential does
// (azidentity v1.15.0 azure_pipelines_credential.go): POST
// {System.OidcRequestUri}?api-version=7.1&serviceConnectionId={id} with the
// job token. We do it ourselves because that credential reads
// SYSTEM_OIDCREQUESTURI with os.Getenv (Brickferry reads the environment once)
// and keeps the ID token to itself, while we must register it as a secret.
func (r *Resolver) pipelineAssertion(connectionID, oidcURI string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		t, err := r.retrying()
		if err != nil {
			return "", err
		}
		u, err := url.Parse(oidcURI)
		if err != nil {
			return "", fmt.Errorf("the pipeline's OIDC endpoint %q is not a URL", oidcURI)
		}
		q := u.Query()
		q.Set("api-version", "7.1")
		if connectionID != "" { // without it: the pipeline's own token
			q.Set("serviceConnectionId", connectionID)
		}
		u.RawQuery = q.Encode()
		// Asking twice only mints a second token: safe to retry.
		req, err := http.NewRequestWithContext(httpclient.WithIdempotent(ctx), http.MethodPost, u.String(), nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+r.Env.JobToken())
		// Answer 401 instead of redirecting to a sign-in page when the job token is not accepted.
		req.Header.Set("X-TFS-FedAuthRedirect", "Suppress")
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Transport: t}).Do(req)
		if err != nil {
			return "", fmt.Errorf("asking the pipeline for an OIDC token: %w", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != http.StatusOK {
			return "", &OIDCError{Status: resp.StatusCode, Message: serverMessage(body)}
		}
		var out struct {
			OIDCToken string `json:"oidcToken"`
		}
		if err := json.Unmarshal(body, &out); err != nil || out.OIDCToken == "" {
			return "", &OIDCError{Status: resp.StatusCode, Message: "the answer holds no oidcToken"}
		}
		r.Log.SetSecret(out.OIDCToken)
		return out.OIDCToken, nil
	}
}

// OIDCError is a refusal by the pipeline's OIDC token endpoint.
type OIDCError struct {
	Status  int
	Message string
}

func (e *OIDCError) Error() string {
	hint := "check that the service connection uses workload identity federation and that this pipeline is allowed to use it"
	if e.Status == http.StatusUnauthorized {
		hint = "the job's access token was not accepted; re-run the job"
	}
	return fmt.Sprintf("the pipeline's OIDC endpoint answered %d (%s): %s", e.Status, agent.Neutralize(e.Message), hint)
}

// serverMessage extracts a readable message from an error body.
func serverMessage(body []byte) string {
	var v struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &v) == nil && v.Message != "" {
		return firstLine(v.Message)
	}
	return firstLine(strings.TrimSpace(string(body)))
}

// tenantGuard registers every token it obtains as a secret, and refuses a
// token for another tenant than the connection's: Key Vault asks for a token
// of the vault's tenant, and a connection cannot get one.
type tenantGuard struct {
	cred   azcore.TokenCredential
	tenant string
	log    *agent.Log
}

// WrongTenantError is a request for a token of another tenant.
type WrongTenantError struct {
	Connection, Requested string
}

func (e *WrongTenantError) Error() string {
	return fmt.Sprintf("the resource belongs to Microsoft Entra tenant %s, but the service connection signs in to tenant %s: use a service connection of tenant %s", e.Requested, e.Connection, e.Requested)
}

func (g *tenantGuard) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if opts.TenantID != "" && g.tenant != "" && !strings.EqualFold(opts.TenantID, g.tenant) {
		return azcore.AccessToken{}, &WrongTenantError{Connection: g.tenant, Requested: opts.TenantID}
	}
	tok, err := g.cred.GetToken(ctx, opts)
	if err != nil {
		return tok, err
	}
	g.log.SetSecret(tok.Token)
	return tok, nil
}

// EntraError is a refusal by Microsoft Entra ID, explained from its AADSTS
// error code (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
type EntraError struct {
	Identity    string
	Code        int
	Description string
	Err         error
}

func (e *EntraError) Error() string {
	var fix string
	switch e.Code {
	case 7000215:
		fix = "the client secret is wrong: copy the secret's value (not its id) into the service connection"
	case 7000222:
		fix = "the client secret has expired: create a new one and update the service connection, or switch it to workload identity federation"
	case 700016:
		fix = "no such application in the tenant: check the tenant and client ids of the service connection"
	case 90002, 900023:
		fix = "the tenant does not exist: check the tenant id of the service connection"
	case 700211, 700212, 700213, 70021, 700223:
		fix = "the app registration has no federated credential matching this service connection (issuer and subject): open the connection in Azure DevOps and copy its issuer and subject to the app's federated credentials"
	case 700024, 700027:
		fix = "the certificate is not accepted: upload the certificate's public part to the app registration, or renew an expired certificate"
	case 7000112, 7000114:
		fix = "the application is disabled or not allowed to sign in: enable it in Microsoft Entra ID"
	default:
		fix = "check the service connection (Project settings > Service connections > Verify)"
	}
	msg := fmt.Sprintf("Microsoft Entra ID refused to sign in %s: %s", e.Identity, fix)
	if e.Description != "" {
		msg += " [" + agent.Neutralize(e.Description) + "]"
	}
	return msg
}

func (e *EntraError) Unwrap() error { return e.Err }

// explainEntra turns an azidentity failure into an EntraError when Entra
// answered with an error body.
func explainEntra(err error, identity string) error {
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil || afe.RawResponse.Body == nil {
		return err
	}
	body, rerr := io.ReadAll(afe.RawResponse.Body)
	afe.RawResponse.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return err
	}
	var v struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Codes       []int  `json:"error_codes"`
	}
	if json.Unmarshal(body, &v) != nil || (v.Error == "" && len(v.Codes) == 0) {
		return err
	}
	e := &EntraError{Identity: identity, Description: firstLine(v.Description), Err: err}
	if len(v.Codes) > 0 {
		e.Code = v.Codes[0]
	}
	if e.Description == "" {
		e.Description = v.Error
	}
	return e
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}
