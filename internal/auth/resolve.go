// Package auth connects a Brickferry task to its Azure Databricks workspaces.
// All tasks resolve credentials the same way, from one group of task inputs
// per workspace (see docs/credentials.md). A task starts with Task (one
// workspace) or Begin (start.go), which do these steps in this order and
// have the harness explain a refused credential (Workspace.Explain) in any
// error of the task:
//
//	opts := auth.ReadOptions(in, "")            // inputs → Options, problems recorded in in
//	if err := in.Err(); err != nil { return err } // every bad input, before any remote call
//	ws, err := auth.Resolve(ctx, opts, env, log)  // credentials → verified workspace client
//	jobsAPI := jobs.NewJobs(ws.Client)
//
// The five ways to connect are the Method values. Whatever the method, every
// token the task obtains (Entra, pipeline OIDC, workspace OAuth, a secret read
// from Key Vault or a variable group) is registered with task.setsecret
// before it could be printed, and every HTTP client (Databricks, Entra, Key
// Vault, Azure DevOps, storage) goes through the agent's proxy and
// certificate settings (package httpclient).
//
// databricks-sdk-go is configured so that nothing on the agent leaks in: an
// explicit credentials strategy and AuthType, a single loader that loads
// nothing (no ~/.databrickscfg, no DATABRICKS_*/ARM_* variables), our own
// transport, and its logging routed to the task's debug output without
// headers (see Workspace.Context and QuietSDKLogger).
package auth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/config"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/httpclient"
	"github.com/brickferry/brickferry/internal/keyvault"
)

// Workspace is a connected Azure Databricks workspace.
type Workspace struct {
	Name   string // as messages name it, e.g. "workspace", "target workspace"
	Method Method
	Host   string // https://adb-....azuredatabricks.net
	// Client is the databricks-sdk-go client: build services from it
	// (jobs.NewJobs(ws.Client), ml.NewModelRegistry(ws.Client), ...).
	Client *client.DatabricksClient
	Config *config.Config
	// HTTPClient is for calls outside the Databricks API (signed storage
	// URLs): the agent's proxy and certificates, no credentials.
	HTTPClient *http.Client
	// Principal is who the task acts as, for messages (never a secret).
	Principal string
	// OAuth is true when the workspace token is an OAuth access token
	// (Microsoft Entra ID, or a Databricks OAuth service principal), false
	// when the connection gives a fixed token (token input, variable group,
	// Key Vault token, service connection with a token): a personal access
	// token, which some APIs refuse (route-optimized serving endpoints).
	OAuth bool

	log   *agent.Log
	token *tokenCache
}

// Context returns ctx carrying the SDK logger that writes the SDK's log
// lines as the task's debug output. Pass it to SDK calls.
func (w *Workspace) Context(ctx context.Context) context.Context {
	return withSDKLogger(ctx, w.log)
}

// Explain turns an error of a Databricks API call into one that names the
// workspace, the connection method and what to fix when the workspace
// refused the credentials; other errors are returned as they are.
func (w *Workspace) Explain(err error) error {
	if err == nil {
		return nil
	}
	var ae *apierr.APIError
	if !errors.As(err, &ae) || (ae.StatusCode != http.StatusUnauthorized && ae.StatusCode != http.StatusForbidden) {
		return err
	}
	var fix string
	switch w.Method {
	case MethodAzureRM:
		fix = fmt.Sprintf("%s is not a user of this workspace, or lacks the permission: add it in the workspace settings (Identity and access > Service principals), or, if it has Contributor on the workspace's Azure resource, turn on 'not yet a workspace user'", w.Principal)
	case MethodFederation:
		fix = fmt.Sprintf("%s signed in, but is not a user of this workspace or lacks the permission: add the service principal to the workspace and give it the permission", w.Principal)
	case MethodDatabricks, MethodKeyVault:
		if strings.HasPrefix(w.Principal, "OAuth") {
			fix = fmt.Sprintf("%s was refused: add the service principal to the workspace and give it the permission", w.Principal)
			break
		}
		fallthrough
	default:
		fix = fmt.Sprintf("the personal access token from %s was refused: it may have expired or been revoked, or its user lacks the permission; create a new token and update it there", w.Principal)
	}
	return &Error{Workspace: w.Name, Method: w.Method, Err: fmt.Errorf("%s answered %d %s (%s): %s", w.Host, ae.StatusCode, ae.ErrorCode, agent.Neutralize(firstLine(ae.Message)), fix)}
}

// Error is a failure to connect a workspace: which workspace, which method,
// what went wrong and what to fix.
type Error struct {
	Workspace string
	Method    Method
	Err       error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%s): %v", e.Workspace, e.Method.Label(), e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Resolver resolves workspace credentials for one task run. The zero value
// with Env and Log set is the production configuration; the other fields
// replace outside dependencies in tests (or point at a sovereign cloud).
type Resolver struct {
	Env agent.Env
	Log *agent.Log

	// AuthorityHost is the Microsoft Entra authority (default: from the
	// service connection's cloud, https://login.microsoftonline.com/).
	AuthorityHost string
	// DevOpsURL is the Azure DevOps collection URL (default
	// System.TeamFoundationCollectionUri).
	DevOpsURL string
	// KeyVaultSuffix is the Key Vault DNS suffix (default: from the service
	// connection's cloud, vault.azure.net).
	KeyVaultSuffix string
	// DisableChallengeResourceVerification accepts a vault whose host is not
	// under Key Vault's domain (tests only).
	DisableChallengeResourceVerification bool
	// Now is the clock for token expiry (default time.Now).
	Now func() time.Time
	// DialContext replaces the system dialer (tests map host names to local servers).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	once     sync.Once
	settings httpclient.Settings
	rt       http.RoundTripper // for azcore clients, which retry themselves
	retryRT  http.RoundTripper // with the retrying layer, for everything else
	rtErr    error
}

// Resolve connects one workspace with the production configuration.
func Resolve(ctx context.Context, opts Options, env agent.Env, log *agent.Log) (*Workspace, error) {
	return (&Resolver{Env: env, Log: log}).Resolve(ctx, opts)
}

// transport is the one HTTP transport of this run, built on first use,
// without the retrying layer: for clients built on azcore (Key Vault, Entra
// ID, blob storage), whose own retry policy retries transient failures and
// honours Retry-After.
func (r *Resolver) transport() (http.RoundTripper, error) {
	r.build()
	return r.rt, r.rtErr
}

// retrying is the same transport with the retrying layer
// (httpclient.Retry): for the Databricks API, the OAuth token endpoint, the
// pipeline's OIDC endpoint and Azure DevOps.
func (r *Resolver) retrying() (http.RoundTripper, error) {
	r.build()
	return r.retryRT, r.rtErr
}

func (r *Resolver) build() {
	r.once.Do(func() {
		r.settings, r.rtErr = httpclient.FromEnv(r.Env)
		if r.rtErr != nil {
			return
		}
		if r.settings.ProxyPassword != "" {
			r.Log.Mask(r.settings.ProxyPassword)
		}
		if r.settings.SkipCertValidation {
			r.Log.Info("The agent is configured to skip TLS certificate validation (Agent.SkipCertValidation): so are the task's connections.")
		}
		r.rt, r.rtErr = r.settings.Transport(httpclient.Options{Log: r.Log, DialContext: r.DialContext})
		if r.rtErr == nil {
			r.retryRT, r.rtErr = r.settings.Transport(httpclient.Options{Log: r.Log, DialContext: r.DialContext, Retry: retryPolicy()})
		}
	})
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Resolve obtains the workspace's credentials by opts.Method, builds its SDK
// client and checks them with one authenticated call, so that a wrong
// credential fails here with a message that says what to fix.
func (r *Resolver) Resolve(ctx context.Context, opts Options) (*Workspace, error) {
	ws, err := r.resolve(ctx, opts)
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) {
			return nil, err
		}
		return nil, &Error{Workspace: opts.Name, Method: opts.Method, Err: r.explainNetwork(err)}
	}
	if err := r.verify(ctx, ws); err != nil {
		return nil, err
	}
	r.Log.Info("Connected to the %s %s as %s (%s).", ws.Name, ws.Host, ws.Principal, ws.Method.Label())
	return ws, nil
}

func (r *Resolver) resolve(ctx context.Context, opts Options) (*Workspace, error) {
	if opts.Name == "" {
		opts.Name = "workspace"
	}
	t, err := r.retrying()
	if err != nil {
		return nil, err
	}
	plain, err := r.transport()
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: t}
	ws := &Workspace{Name: opts.Name, Method: opts.Method, Host: opts.Host, HTTPClient: &http.Client{Transport: plain}, log: r.Log}
	st := &strategy{name: "brickferry-" + strings.ToLower(string(opts.Method)), wrap: func(err error) error { return err }}
	cache := func(f fetchFunc) *tokenCache { return &tokenCache{fetch: f, now: r.now, log: r.Log} }

	switch opts.Method {
	case MethodToken:
		r.Log.SetSecret(opts.Token)
		ws.Principal = "the token input"
		st.main = cache(staticToken(opts.Token))
	case MethodDatabricks:
		ep := opts.Databricks
		if ep == nil {
			return nil, errors.New("no Databricks service connection was given")
		}
		if id, secret := oauthClient(ep); id != "" {
			ws.Principal = "OAuth service principal " + id + " of the Databricks service connection"
			ws.OAuth = true
			st.main = cache(oauthM2M(ws.Host, id, secret, hc, r.now))
		} else {
			ws.Principal = "the Databricks service connection"
			st.main = cache(staticToken(ep.Param("apitoken")))
		}
	case MethodAzureRM:
		if opts.ARM == nil {
			return nil, errors.New("no Azure Resource Manager service connection was given")
		}
		id, err := r.armCredential(opts.ARM)
		if err != nil {
			return nil, err
		}
		ws.Principal = id.describe()
		ws.OAuth = true
		st.main = cache(entraToken(id.cred, DatabricksScope))
		st.wrap = func(err error) error { return explainEntra(err, id.describe()) }
		if opts.ManagementToken {
			st.management = cache(entraToken(id.cred, managementScope))
			st.resourceID = opts.WorkspaceResourceID
		}
	case MethodFederation:
		f, err := r.federation(opts, ws, hc)
		if err != nil {
			return nil, err
		}
		st.main = cache(f)
	case MethodKeyVault:
		if err := r.fromKeyVault(ctx, opts, ws, st, cache, hc); err != nil {
			return nil, err
		}
	case MethodVariableGroup:
		if err := r.fromVariableGroup(ctx, opts, ws, st, cache); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown connection method %q: use one of azureRM, databricks, databricksFederation, variableGroup, keyVault, token", opts.Method)
	}
	if ws.Host == "" {
		return nil, errors.New("no workspace URL")
	}
	ws.token = st.main
	// Obtain the token now: a wrong identity fails here, before the SDK's retries.
	if _, _, err := st.main.Token(ctx); err != nil {
		return nil, st.wrap(err)
	}
	cfg := &config.Config{
		Host:          ws.Host,
		Credentials:   st,
		AuthType:      st.Name(),
		Loaders:       []config.Loader{noLoader{}},
		HTTPTransport: t,
		// The transport retries; the SDK's own loop would retry again.
		RetryTimeoutSeconds: sdkRetryTimeoutSeconds,
		HTTPTimeoutSeconds:  sdkHTTPTimeoutSeconds,
	}
	c, err := client.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("configuring the Databricks client: %w", err)
	}
	ws.Client, ws.Config = c, cfg
	return ws, nil
}

// verify makes one cheap authenticated call (list one job).
func (r *Resolver) verify(ctx context.Context, ws *Workspace) error {
	var resp struct{}
	err := ws.Client.Do(ws.Context(ctx), http.MethodGet, "/api/2.2/jobs/list", nil, map[string]any{"limit": 1}, nil, &resp)
	if err == nil {
		return nil
	}
	if explained := ws.Explain(err); explained != err { //nolint:errorlint // identity: was it explained?
		return explained
	}
	var ae *Error
	if errors.As(err, &ae) {
		return err
	}
	return &Error{Workspace: ws.Name, Method: ws.Method, Err: fmt.Errorf("checking the connection to %s: %w", ws.Host, r.explainNetwork(err))}
}

// explainNetwork adds what to do to a network failure.
func (r *Resolver) explainNetwork(err error) error {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var dns *net.DNSError
	switch {
	case errors.As(err, &ua):
		return fmt.Errorf("%w: the server's TLS certificate is not issued by a trusted authority; if the agent's network inspects TLS, configure the agent with its CA certificate (config --sslcacert, which sets Agent.CAInfo)", err)
	case errors.As(err, &hn):
		return fmt.Errorf("%w: the server's TLS certificate is for another host name; check the URL", err)
	case errors.As(err, &dns):
		return fmt.Errorf("%w: the host name does not resolve; check the workspace URL, or the agent's DNS and proxy settings", err)
	}
	if r.settings.ProxyURL != nil && strings.Contains(err.Error(), "Proxy Authentication Required") {
		return fmt.Errorf("%w: the agent's proxy %s refused the proxy credentials (Agent.ProxyUsername, Agent.ProxyPassword)", err, r.settings.ProxyURL.Host)
	}
	return err
}

// fromKeyVault reads the host and the token (or OAuth client) from a vault.
func (r *Resolver) fromKeyVault(ctx context.Context, opts Options, ws *Workspace, st *strategy, cache func(fetchFunc) *tokenCache, hc *http.Client) error {
	if opts.ARM == nil {
		return errors.New("no Azure Resource Manager service connection was given to read the Key Vault")
	}
	id, err := r.armCredential(opts.ARM)
	if err != nil {
		return err
	}
	kv, err := r.vault(opts.KeyVault, id)
	if err != nil {
		return err
	}
	// read returns a secret's value; credentials are registered as secrets at
	// once. The workspace URL and the OAuth client id are identifiers, not
	// credentials: masking them would hide every URL in the log.
	read := func(name string, credential bool) (string, error) {
		v, err := kv.Secret(ctx, name)
		if err != nil {
			return "", explainEntra(err, id.describe())
		}
		if credential {
			r.Log.SetSecret(v)
		}
		return strings.TrimSpace(v), nil
	}
	if ws.Host == "" {
		raw, err := read(opts.KeyVaultHostSecret, false)
		if err != nil {
			return err
		}
		if ws.Host, err = NormalizeHost(raw); err != nil {
			return fmt.Errorf("secret %s of key vault %s is not a workspace URL: %w", opts.KeyVaultHostSecret, opts.KeyVault, err)
		}
	}
	if opts.KeyVaultOAuth {
		clientID, err := read(opts.KeyVaultClientIDSecret, false)
		if err != nil {
			return err
		}
		secret, err := read(opts.KeyVaultClientSecretSecret, true)
		if err != nil {
			return err
		}
		ws.Principal = fmt.Sprintf("OAuth service principal %s from key vault %s", clientID, opts.KeyVault)
		ws.OAuth = true
		st.main = cache(oauthM2M(ws.Host, clientID, secret, hc, r.now))
		return nil
	}
	token, err := read(opts.KeyVaultTokenSecret, true)
	if err != nil {
		return err
	}
	ws.Principal = fmt.Sprintf("secret %s of key vault %s", opts.KeyVaultTokenSecret, opts.KeyVault)
	st.main = cache(staticToken(token))
	return nil
}

func (r *Resolver) vault(name string, id *armIdentity) (*keyvault.Client, error) {
	t, err := r.transport()
	if err != nil {
		return nil, err
	}
	return keyvault.New(name, keyvault.URL(name, id.vault), id.cred, keyvault.Options{
		Transport:                            &http.Client{Transport: t},
		DisableChallengeResourceVerification: r.DisableChallengeResourceVerification,
	})
}
