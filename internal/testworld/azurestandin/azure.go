package azurestandin

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// Public names the stand-ins answer at.
const (
	EntraHost   = "login.microsoftonline.com"
	DevOpsHost  = "dev.azure.com"
	VaultSuffix = "vault.azure.net"
	// IMDSAddr is the Azure Instance Metadata Service (managed identities).
	// It is plain http on a link-local address that no proxy may be used
	// for, so only DialContext reaches its stand-in, not the executable.
	IMDSAddr = "169.254.169.254:80"
)

// Authorization schemes of an Azure Resource Manager service connection, as
// the agent passes them (ENDPOINT_AUTH_SCHEME_<id>).
const (
	SchemeServicePrincipal = "ServicePrincipal"           // client secret (authenticationType spnKey)
	SchemeWorkloadIdentity = "WorkloadIdentityFederation" // pipeline OIDC token exchanged at Entra
)

// azureSuffixes are the DNS domains of Microsoft's clouds. A name under one
// of them that no stand-in serves does not resolve: nothing started here ever
// reaches the real Azure.
var azureSuffixes = []string{
	"microsoftonline.com", "microsoftonline.us", "chinacloudapi.cn", "windows.net", "azure.net", "azure.com",
	"azure.cn", "usgovcloudapi.net", "azuredatabricks.net", "visualstudio.com", "microsoft.com",
}

// Options describe the Azure tenant and Azure DevOps organization to stand
// in for. The zero value is a working, empty tenant and organization.
type Options struct {
	// CA signs the stand-ins' certificates. Pass the CA of the emulated
	// workspaces so that one AGENT_CAINFO file covers everything; nil means
	// a new one (Azure.CA).
	CA *emulator.CA

	// TenantID is the Microsoft Entra tenant of the apps and, by default, of
	// the vaults (default: a new id).
	TenantID string
	// Apps are the app registrations of the tenant by client id. Apps of
	// service connections need not be listed: Connections creates them.
	Apps map[string]App
	// ManagedIdentities are the client ids of the managed identities the
	// metadata service (IMDS) issues tokens for; a request without client_id
	// gets the first. Reachable through DialContext only (see IMDSAddr).
	ManagedIdentities []string

	// Organization and Project are the Azure DevOps organization and project
	// (default "contoso" and "mlops"); ProjectID defaults to a new id.
	Organization, Project, ProjectID string
	// Pipeline is the name of the pipeline the job runs (Build.DefinitionName,
	// default "churn-mlops", agenttest's).
	Pipeline string
	// Connections are the project's Azure Resource Manager service
	// connections (see ServiceConnection).
	Connections []Connection
	// VariableGroups are the project's library variable groups.
	VariableGroups []VariableGroup
	// Pipelines are the project's repositories and the agent that runs
	// its pipelines (pipelines.go).
	Pipelines PipelineOptions
	// Vaults are the Key Vaults. Vaults that only variable groups name are
	// created from the groups' secrets.
	Vaults []Vault

	// Hosts are further names served at port 443 with the CA's certificate,
	// e.g. "adb-1234567890123456.7.azuredatabricks.net" → an
	// *emulator.Workspace, so a workspace can have a real-looking URL.
	Hosts map[string]http.Handler

	// PassThrough are names under Azure's domains, and domains (a name
	// under one passes too), that DialContext and the proxy reach at their
	// real address rather than refusing: the real workspaces of a live run
	// and their storage (internal/testworld/live). Everything else of
	// Azure's stays out of reach.
	PassThrough []string

	// ProxyUser and ProxyPassword, when set, are the basic credentials the
	// forward proxy requires (407 otherwise).
	ProxyUser, ProxyPassword string

	// Clock stamps and checks tokens (default: the real clock). Share the
	// emulator's ManualClock to move workspaces and tokens together.
	Clock emulator.Clock
	// TokenTTL is the lifetime of Entra and managed identity tokens
	// (default one hour, as Entra's are at least).
	TokenTTL time.Duration

	// Dir is where the CA file is written (default: a new temporary
	// directory, removed by Close; Start uses t.TempDir()).
	Dir string
	// Logf, if set, receives one line per request and per proxy tunnel.
	Logf func(format string, args ...any)
}

// App is an app registration (service principal) in the tenant.
type App struct {
	// Secret is the client secret; ExpiredSecret is one Entra refuses with
	// AADSTS7000222 (expired).
	Secret, ExpiredSecret string
	// Certificate is the certificate (public part) the app accepts client
	// assertions signed for (service connections with spnCertificate).
	Certificate *x509.Certificate
	// FederatedSubjects are the subjects of pipeline OIDC tokens the app
	// trusts (its federated credentials), "sc://{org}/{project}/{connection}".
	// A workload identity Connection adds its own.
	FederatedSubjects []string
}

// Connection is an Azure Resource Manager service connection of the project.
type Connection struct {
	Name string
	ID   string // default: a new id
	// ClientID is the app the connection signs in as (default: a new app).
	ClientID string
	// Scheme is SchemeServicePrincipal (default; the app's secret, a new
	// one if it has none) or SchemeWorkloadIdentity (the app trusts the
	// connection's subject).
	Scheme string
}

// VariableGroup is a library variable group.
type VariableGroup struct {
	Name string
	// Variables of a plain group. The REST API never returns the value of a
	// secret one (it answers null), as Azure DevOps does.
	Variables map[string]Variable
	// KeyVault links the group to a vault: its variables are the vault's
	// secrets it selects, listed without values.
	KeyVault *GroupVault
	// Restricted: the pipeline's identity has no Reader role on the group,
	// so reading it answers 403.
	Restricted bool
}

// Variable is a variable of a group.
type Variable struct {
	Value  string
	Secret bool
}

// GroupVault is the Key Vault a variable group is linked to.
type GroupVault struct {
	Vault string // the vault's name, e.g. "kv-mlops"
	// Connection is the name of the service connection the group was linked
	// with (its providerData.serviceEndpointId); a task reading the group by
	// name uses its own connection to read the vault.
	Connection string
	// Secrets are the secrets the group selects, name → value; they are put
	// in the vault.
	Secrets map[string]string
}

// Vault is an Azure Key Vault, served at {name}.vault.azure.net.
type Vault struct {
	Name     string
	TenantID string // default Options.TenantID
	Secrets  map[string]string
	// Readers are the client ids allowed to get secrets (the Key Vault
	// Secrets User role); empty means every principal of the vault's tenant.
	Readers []string
}

// Request is one request a stand-in answered (never its headers or body:
// they carry secrets).
type Request struct {
	Host, Method, Path string
	Status             int
}

// Azure is a running set of stand-ins. Its fields are what a task needs to
// reach them; they must not be changed.
type Azure struct {
	// minted are the access and OIDC tokens handed out (see Minted).
	mintMu sync.Mutex
	minted []string

	CA             *emulator.CA
	CAFile         string // the CA certificate (PEM), for AGENT_CAINFO
	TenantID       string
	SubscriptionID string // the subscription of every service connection
	Organization   string
	Project        string
	ProjectID      string
	Pipeline       string
	CollectionURI  string // https://dev.azure.com/{org}/
	// JobToken is the job's access token for Azure DevOps: the only bearer
	// token the DevOps stand-in accepts.
	JobToken string
	// OIDCRequestURI is the pipeline's OIDC endpoint (System.OidcRequestUri).
	OIDCRequestURI string
	// ProxyURL is the forward proxy, http://127.0.0.1:port, without credentials.
	ProxyURL string

	opts     Options
	clock    emulator.Clock
	ttl      time.Duration
	orgID    string // the organization's id: the issuer of its OIDC tokens
	entraKey *rsa.PrivateKey
	oidcKey  *rsa.PrivateKey
	tmpDir   string

	servers   []*http.Server
	frontAddr string
	imdsAddr  string
	proxy     *proxy
	gallery   *gallery // the Marketplace and installed extensions (gallery.go)

	mu       sync.Mutex // guards everything below
	apps     map[string]*App
	conns    []Connection
	groups   []*VariableGroup
	vaults   map[string]*Vault // by lower-case name
	hosts    map[string]http.Handler
	certs    map[string]*tls.Certificate
	requests []Request

	pipelines pipelineState // has its own lock
}

// Start starts the stand-ins for a test and stops them in t.Cleanup.
func Start(t testing.TB, opts Options) *Azure {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	a, err := New(opts)
	if err != nil {
		t.Fatalf("azurestandin: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// New starts the stand-ins and the proxy on loopback ports. Call Close when done.
func New(opts Options) (*Azure, error) {
	a := &Azure{
		opts: opts, clock: opts.Clock, ttl: opts.TokenTTL,
		TenantID: opts.TenantID, Organization: opts.Organization, Project: opts.Project, ProjectID: opts.ProjectID, Pipeline: opts.Pipeline,
		CA: opts.CA, SubscriptionID: newID(), orgID: newID(), JobToken: "job-token-" + randomHex(20),
		apps: map[string]*App{}, vaults: map[string]*Vault{}, hosts: map[string]http.Handler{}, certs: map[string]*tls.Certificate{},
	}
	if a.clock == nil {
		a.clock = emulator.RealClock{}
	}
	if a.ttl == 0 {
		a.ttl = time.Hour
	}
	if a.TenantID == "" {
		a.TenantID = newID()
	}
	if a.Organization == "" {
		a.Organization = "contoso"
	}
	if a.Project == "" {
		a.Project = "mlops"
	}
	if a.ProjectID == "" {
		a.ProjectID = newID()
	}
	if a.Pipeline == "" {
		a.Pipeline = "churn-mlops"
	}
	a.CollectionURI = "https://" + DevOpsHost + "/" + a.Organization + "/"
	a.OIDCRequestURI = a.CollectionURI + a.ProjectID + "/_apis/distributedtask/hubs/build/plans/" + newID() + "/jobs/" + newID() + "/oidctoken"
	if err := a.load(opts); err != nil {
		return nil, err
	}
	a.startGallery()
	var err error
	if a.CA == nil {
		if a.CA, err = emulator.NewCA(); err != nil {
			return nil, err
		}
	}
	if a.entraKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if a.oidcKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "azurestandin-"); err != nil {
			return nil, err
		}
		a.tmpDir = dir
	}
	a.CAFile = filepath.Join(dir, "azure-standin-ca.pem")
	if err := a.CA.WriteFile(a.CAFile); err != nil {
		a.Close()
		return nil, err
	}

	front, err := a.listen(&tls.Config{GetCertificate: a.certificate, MinVersion: tls.VersionTLS12}, http.HandlerFunc(a.serveFront))
	if err != nil {
		a.Close()
		return nil, err
	}
	a.frontAddr = front
	if a.imdsAddr, err = a.listen(nil, a.record("imds", http.HandlerFunc(a.imds))); err != nil {
		a.Close()
		return nil, err
	}
	a.proxy = &proxy{user: opts.ProxyUser, pass: opts.ProxyPassword, dial: a.DialContext, logf: a.logf, conns: map[net.Conn]bool{}}
	proxyAddr, err := a.listen(nil, a.proxy)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.ProxyURL = "http://" + proxyAddr
	return a, nil
}

// load checks the options and builds the tenant, the project and the vaults.
func (a *Azure) load(opts Options) error {
	for id, app := range opts.Apps {
		app := app
		app.FederatedSubjects = append([]string(nil), app.FederatedSubjects...)
		a.apps[id] = &app
	}
	for _, c := range opts.Connections {
		if err := a.addConnection(c); err != nil {
			return err
		}
	}
	for _, v := range opts.Vaults {
		if err := a.addVault(v); err != nil {
			return err
		}
	}
	for _, g := range opts.VariableGroups {
		if err := a.AddVariableGroup(g); err != nil {
			return err
		}
	}
	for name, h := range opts.Hosts {
		a.hosts[strings.ToLower(name)] = h
	}
	return nil
}

func (a *Azure) addConnection(c Connection) error {
	if c.Name == "" {
		return errors.New("a service connection has no name")
	}
	for _, have := range a.conns {
		if strings.EqualFold(have.Name, c.Name) {
			return fmt.Errorf("two service connections are named %q", c.Name)
		}
	}
	if c.ID == "" {
		c.ID = newID()
	}
	if c.ClientID == "" {
		c.ClientID = newID()
	}
	if c.Scheme == "" {
		c.Scheme = SchemeServicePrincipal
	}
	app := a.apps[c.ClientID]
	if app == nil {
		app = &App{}
		a.apps[c.ClientID] = app
	}
	switch c.Scheme {
	case SchemeServicePrincipal:
		if app.Secret == "" {
			app.Secret = "sp-secret-" + randomHex(16)
		}
	case SchemeWorkloadIdentity:
		app.FederatedSubjects = append(app.FederatedSubjects, a.ConnectionSubject(c.Name))
	default:
		return fmt.Errorf("service connection %q: scheme %q is not %s or %s", c.Name, c.Scheme, SchemeServicePrincipal, SchemeWorkloadIdentity)
	}
	a.conns = append(a.conns, c)
	return nil
}

// ConnectionSubject is the subject of the pipeline's OIDC tokens for a
// service connection, as Azure DevOps issues them
// (https://learn.microsoft.com/azure/devops/pipelines/release/troubleshoot-workload-identity).
func (a *Azure) ConnectionSubject(connection string) string {
	return "sc://" + a.Organization + "/" + a.Project + "/" + connection
}

func (a *Azure) addVault(v Vault) error {
	name := strings.ToLower(v.Name)
	if name == "" {
		return errors.New("a vault has no name")
	}
	if v.TenantID == "" {
		v.TenantID = a.TenantID
	}
	have := a.vaults[name]
	if have == nil {
		have = &Vault{Name: v.Name, TenantID: v.TenantID, Secrets: map[string]string{}, Readers: append([]string(nil), v.Readers...)}
		a.vaults[name] = have
	}
	for k, s := range v.Secrets {
		have.Secrets[k] = s
	}
	return nil
}

// AddVariableGroup adds a library variable group, or replaces the one of
// the same name. The secrets of a Key Vault-linked group are put in its vault.
func (a *Azure) AddVariableGroup(g VariableGroup) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if g.Name == "" {
		return errors.New("a variable group has no name")
	}
	if kv := g.KeyVault; kv != nil {
		if kv.Connection != "" && a.connection(kv.Connection) == nil {
			return fmt.Errorf("variable group %q is linked with service connection %q, which Options.Connections does not have", g.Name, kv.Connection)
		}
		if err := a.addVault(Vault{Name: kv.Vault, Secrets: kv.Secrets}); err != nil {
			return fmt.Errorf("variable group %q: %w", g.Name, err)
		}
	}
	for i, have := range a.groups {
		if strings.EqualFold(have.Name, g.Name) {
			a.groups[i] = &g
			return nil
		}
	}
	a.groups = append(a.groups, &g)
	return nil
}

// SetSecret sets a secret of a vault (creating the vault in the tenant if
// needed), e.g. to rotate a token between runs.
func (a *Azure) SetSecret(vault, name, value string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_ = a.addVault(Vault{Name: vault, Secrets: map[string]string{name: value}})
}

// connection finds a service connection by name or id; a.mu held or not
// needed (connections never change after New).
func (a *Azure) connection(nameOrID string) *Connection {
	for i := range a.conns {
		if strings.EqualFold(a.conns[i].Name, nameOrID) || strings.EqualFold(a.conns[i].ID, nameOrID) {
			return &a.conns[i]
		}
	}
	return nil
}

// ServiceConnection is the Azure Resource Manager service connection of
// that name as the agent passes it to a task (put it in agenttest.Run's
// Endpoints, and its ID in the task's azureSubscription input). Entra accepts
// it: a service principal connection holds its app's secret, a workload
// identity one signs in with the pipeline's OIDC token. A name that
// Options.Connections does not have is a mistake in the caller: it panics.
func (a *Azure) ServiceConnection(name string) agent.Endpoint {
	c := a.connection(name)
	if c == nil {
		panic(fmt.Sprintf("azurestandin: no service connection named %q in Options.Connections", name))
	}
	ep := agent.Endpoint{
		ID: c.ID, URL: "https://management.azure.com/", Scheme: c.Scheme,
		Parameters: map[string]string{"tenantid": a.TenantID, "serviceprincipalid": c.ClientID},
		Data: map[string]string{
			"environment": "AzureCloud", "scopeLevel": "Subscription",
			"subscriptionId": a.SubscriptionID, "subscriptionName": "Contoso MLOps",
		},
	}
	if c.Scheme == SchemeServicePrincipal {
		a.mu.Lock()
		ep.Parameters["authenticationType"] = "spnKey"
		ep.Parameters["serviceprincipalkey"] = a.apps[c.ClientID].Secret
		a.mu.Unlock()
	}
	return ep
}

// Env is what the agent would set for a task to use these stand-ins: the
// organization and project, the job's connection to Azure DevOps with
// JobToken, the pipeline's OIDC endpoint, the proxy (with its credentials)
// and the CA file. Add a task's service connections with ServiceConnection.
func (a *Azure) Env() map[string]string {
	sys := agent.Endpoint{ID: agent.SystemConnection, URL: a.CollectionURI, Scheme: "OAuth", Parameters: map[string]string{"AccessToken": a.JobToken}}
	env := sys.Environ()
	for k, v := range map[string]string{
		"SYSTEM_TEAMFOUNDATIONCOLLECTIONURI": a.CollectionURI,
		"SYSTEM_COLLECTIONURI":               a.CollectionURI,
		"SYSTEM_TEAMPROJECT":                 a.Project,
		"SYSTEM_TEAMPROJECTID":               a.ProjectID,
		"SYSTEM_OIDCREQUESTURI":              a.OIDCRequestURI,
		"SYSTEM_COLLECTIONID":                a.orgID,
		"BUILD_DEFINITIONNAME":               a.Pipeline,
		"AGENT_PROXYURL":                     a.ProxyURL,
		"AGENT_CAINFO":                       a.CAFile,
	} {
		env[k] = v
	}
	if a.opts.ProxyUser != "" {
		env["AGENT_PROXYUSERNAME"] = a.opts.ProxyUser
		env["SECRET_AGENT_PROXYPASSWORD"] = a.opts.ProxyPassword // a secret variable, as the agent passes it
	}
	return env
}

// Secrets is every secret value the stand-ins hold: the job token, the
// personal access token (PersonalAccessToken), the apps' secrets, the
// vaults' secrets, secret group variables and the proxy password. A test
// checks that none of them appears in a task's output. A vault secret that
// is an https URL (a workspace URL kept in a vault) is left out: it is an
// address, not a credential, and tasks print it.
func (a *Azure) Secrets() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []string{a.JobToken, a.gallery.pat}
	if a.opts.ProxyPassword != "" {
		out = append(out, a.opts.ProxyPassword)
	}
	for _, app := range a.apps {
		out = append(out, app.Secret, app.ExpiredSecret)
	}
	for _, v := range a.vaults {
		for _, s := range v.Secrets {
			if !strings.HasPrefix(s, "https://") { // a workspace URL kept in a vault is not a credential
				out = append(out, s)
			}
		}
	}
	for _, g := range a.groups {
		for _, v := range g.Variables {
			if v.Secret {
				out = append(out, v.Value)
			}
		}
	}
	kept := out[:0]
	for _, s := range out {
		if s != "" {
			kept = append(kept, s)
		}
	}
	return kept
}

// EntraOptions make an emulated workspace accept the Entra tokens issued
// here for its Azure Databricks scope; users are the client ids that are
// workspace users (empty: every principal of the tenant).
func (a *Azure) EntraOptions(users ...string) *emulator.EntraOptions {
	return &emulator.EntraOptions{Key: &a.entraKey.PublicKey, TenantID: a.TenantID, Users: users}
}

// AddHost serves another name at port 443 (see Options.Hosts).
func (a *Azure) AddHost(name string, h http.Handler) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.hosts[strings.ToLower(name)] = h
}

// Requests are the requests the stand-ins answered so far, in order.
func (a *Azure) Requests() []Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Request(nil), a.requests...)
}

// Tunnelled are the host:port targets of the proxy's CONNECT requests (and
// of plain requests it forwarded) so far, in order.
func (a *Azure) Tunnelled() []string { return a.proxy.targets() }

// Close stops the stand-ins and the proxy and closes open tunnels.
func (a *Azure) Close() {
	a.pipelines.stop()
	for _, s := range a.servers {
		_ = s.Close()
	}
	if a.proxy != nil {
		a.proxy.closeAll()
	}
	if a.tmpDir != "" {
		_ = os.RemoveAll(a.tmpDir)
	}
}

// DialContext connects to the stand-in of a public name: port 443 of
// login.microsoftonline.com, dev.azure.com, a vault's {name}.vault.azure.net
// and the extra Hosts go to the local TLS listener, IMDSAddr to the metadata
// stand-in. Any other name in Azure's domains does not resolve (a
// *net.DNSError), so nothing reaches the real Azure; everything else (the
// loopback emulators, Azurite, the proxy) is dialled as it is. In-process
// code passes it where it takes a dialer (auth.Resolver.DialContext); the
// proxy uses it for the executable.
func (a *Azure) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	switch {
	case addr == IMDSAddr:
		addr = a.imdsAddr
	case port == "443" && a.serves(name):
		addr = a.frontAddr
	case isAzureName(name) && !a.passes(name):
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// passes reports whether name is, or is under, a name of Options.PassThrough.
func (a *Azure) passes(name string) bool {
	return slices.ContainsFunc(a.opts.PassThrough, func(p string) bool { return name == p || strings.HasSuffix(name, "."+p) })
}

func isAzureName(name string) bool {
	for _, s := range azureSuffixes {
		if name == s || strings.HasSuffix(name, "."+s) {
			return true
		}
	}
	return false
}

// serves says whether a name is answered by the front listener.
func (a *Azure) serves(name string) bool {
	if name == EntraHost || name == DevOpsHost {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.hosts[name]; ok {
		return true
	}
	if vault, ok := strings.CutSuffix(name, "."+VaultSuffix); ok {
		_, ok := a.vaults[vault]
		return ok
	}
	return false
}

// listen serves h on a new loopback port, with TLS when cfg is set.
func (a *Azure) listen(cfg *tls.Config, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("azurestandin: listen: %w", err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	a.servers = append(a.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// certificate issues (once per name) a certificate for the name the client
// asks for: one CA, any served name.
func (a *Azure) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(hello.ServerName)
	if name == "" {
		name = "127.0.0.1"
	}
	if vault, ok := strings.CutSuffix(name, "."+VaultSuffix); ok && vault != "" {
		name = "*." + VaultSuffix
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.certs[name]; c != nil {
		return c, nil
	}
	c, err := a.CA.Issue(name)
	if err != nil {
		return nil, err
	}
	a.certs[name] = &c
	return &c, nil
}

// serveFront dispatches a request of the TLS listener by its host name.
func (a *Azure) serveFront(w http.ResponseWriter, r *http.Request) {
	name := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	}
	var h http.Handler
	switch {
	case name == EntraHost:
		h = http.HandlerFunc(a.entra)
	case name == DevOpsHost:
		h = http.HandlerFunc(a.devops)
	case strings.HasSuffix(name, "."+VaultSuffix):
		h = http.HandlerFunc(a.vault)
	default:
		a.mu.Lock()
		h = a.hosts[name]
		a.mu.Unlock()
	}
	if h == nil {
		http.Error(w, "azurestandin: no stand-in for "+name, http.StatusMisdirectedRequest)
		return
	}
	a.record(name, h).ServeHTTP(w, r)
}

// record logs a request after it is answered.
func (a *Azure) record(host string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		a.mu.Lock()
		a.requests = append(a.requests, Request{Host: host, Method: r.Method, Path: r.URL.Path, Status: sw.status})
		a.mu.Unlock()
		a.logf("azure: %s %s%s: %d", r.Method, host, r.URL.Path, sw.status)
	})
}

func (a *Azure) logf(format string, args ...any) {
	if a.opts.Logf != nil {
		a.opts.Logf(format, args...)
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// newID is a random version 4 UUID, as Azure ids are.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Minted is every token the stand-ins handed out (Entra access tokens,
// pipeline OIDC tokens), for tests that scan output for secrets.
func (a *Azure) Minted() []string {
	a.mintMu.Lock()
	defer a.mintMu.Unlock()
	return append([]string(nil), a.minted...)
}

func (a *Azure) mint(tok string) string {
	a.mintMu.Lock()
	defer a.mintMu.Unlock()
	a.minted = append(a.minted, tok)
	return tok
}
