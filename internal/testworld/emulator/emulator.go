package emulator

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/service/workspace"
)

// Options configure one emulated workspace. The zero value is a working
// workspace with PAT auth, a real clock and in-memory artifact storage.
type Options struct {
	// Name labels the workspace in logs and run page URLs ("dev", "prod").
	Name string
	// Token is the personal access token the workspace accepts. Empty means a
	// random "dapi..." token (see Workspace.Token).
	Token string
	// WorkspaceID is the numeric workspace id (the ?o= in URLs). Zero means a
	// random 16-digit id.
	WorkspaceID int64
	// UserName is the identity behind the PAT (creator_user_name, user_id).
	UserName string

	// CA, when set, makes the workspace serve HTTPS with a certificate for
	// 127.0.0.1 signed by it (URL() is then https://...). Tasks trust it
	// through AGENT_CAINFO; SDKConfig trusts it by itself.
	CA *CA
	// ClientCAs, with CA, makes the workspace require a client certificate
	// signed by one of them, as a corporate gateway in front of an Azure
	// DevOps Server and its services can (the agent's --sslclientcert setup).
	ClientCAs *x509.CertPool

	// Clock drives everything that takes time. Nil means the real clock.
	Clock Clock

	// MLflow is the MLflow era of the workspace (default MLflow2): which
	// MLflow its tracking server and its runtime's client speak. See
	// MLflowEra.
	MLflow MLflowEra

	// Blob is the Azure Blob account that holds run artifacts, registry copies
	// and Unity Catalog model versions. Each workspace creates its own
	// container in it. With Blob set, artifacts/credentials-for-read|write and
	// the UC temporary credentials answer SAS URLs signed for that account
	// (Azurite's devstoreaccount1 in tests). With Blob nil the workspace keeps
	// artifacts in memory: every route that lists or copies artifacts works,
	// but the routes that hand out signed URLs answer 501 NOT_IMPLEMENTED,
	// because there is no blob service to sign for.
	Blob *BlobAccount
	// CredentialType is the type of the signed URLs that
	// artifacts/credentials-for-read|write and
	// model-versions/get-signed-download-uri hand out (with Blob):
	// CredentialAzureSAS (the default) or CredentialAzureADLS, served by the
	// workspace's own DFS endpoint over the same container (dfsFront).
	// Unity Catalog storage locations stay Blob URLs either way.
	CredentialType string
	// CustomerKey, with CredentialAzureADLS, hands out a customer-provided
	// encryption key with every such URL, which every request to it must
	// carry (dfsFront).
	CustomerKey bool

	// OAuthClients are the service principals allowed to use OAuth
	// machine-to-machine auth: client id → client secret.
	OAuthClients map[string]string
	// OAuthTokenTTL is the lifetime of issued OAuth access tokens (default 1h).
	OAuthTokenTTL time.Duration
	// Entra, when set, makes the workspace accept Microsoft Entra ID tokens.
	Entra *EntraOptions
	// FederationPolicies are the Databricks federation policies of the
	// account that the workspace's token endpoint (/oidc/v1/token) checks a
	// token exchange against (see FederationPolicy).
	FederationPolicies []FederationPolicy

	// Timings of simulated work, all measured on Clock. Zero means the
	// default in parentheses.
	RunPending        time.Duration // PENDING before a task runs (5s)
	RunTerminating    time.Duration // TERMINATING after a task ends (2s)
	RunDuration       time.Duration // RUNNING when no behaviour says otherwise (30s)
	RegistrationDelay time.Duration // model version PENDING_REGISTRATION → READY (3s)
	ServingReady      time.Duration // endpoint NOT_READY → READY (60s)
	ServingUpdate     time.Duration // config update IN_PROGRESS → NOT_UPDATING (30s)

	// CredentialPageSize is the number of credential_infos per page of
	// artifacts/credentials-for-read|write (default 100).
	CredentialPageSize int
	// ArtifactListPageSize is the number of files per page of
	// model-versions/list-artifacts (default 1000; Databricks does not
	// document it, the answer has next_page_token).
	ArtifactListPageSize int

	// Logf, if set, receives one line per request.
	Logf func(format string, args ...any)
}

// BlobAccount is a blob service endpoint with shared-key credentials, such
// as the one azurite.Start returns.
type BlobAccount struct {
	Endpoint    string // e.g. http://127.0.0.1:10000/devstoreaccount1
	AccountName string
	AccountKey  string
	// ClientEndpoint, when set, replaces Endpoint in the signed URLs handed
	// to clients (e.g. a fault-injecting proxy in front of the blob
	// service); the emulator's own storage requests still use Endpoint.
	ClientEndpoint string
}

// Workspace is one emulated Azure Databricks workspace on its own loopback
// port, with its own state and credentials. All methods are safe for
// concurrent use.
type Workspace struct {
	// Token is the workspace's personal access token.
	Token string
	// Host is host:port of the listener (127.0.0.1:NNNNN).
	Host string
	// WorkspaceID is the numeric workspace id.
	WorkspaceID int64
	// UserName is the identity behind Token.
	UserName string

	opts  Options
	clock Clock
	url   string
	ln    net.Listener
	srv   *http.Server
	// dataPlane is the host of route-optimized endpoints (dataplane.go).
	dataPlane *dataPlaneServer
	mux       *routeMux

	mu         sync.Mutex // guards everything below
	ids        idSource
	jobs       jobsState
	mlflow     mlflowState
	registry   registryState
	uc         ucState
	serving    servingState
	dbfs       *memFS
	volumes    *memFS
	notebooks  *workspaceTree
	repos      reposState
	sql        sqlState
	compute    computeState
	oauth      oauthState
	store      artifactStore
	dfs        *dfsFront // with Options.CredentialType CredentialAzureADLS
	behaviours behaviours

	recMu   sync.Mutex
	records []Request

	faultMu sync.Mutex
	faults  *faultState
}

// New starts a workspace on a free loopback port. Call Close when done.
func New(opts Options) (*Workspace, error) {
	ws := &Workspace{opts: withDefaults(opts), clock: opts.Clock}
	if ws.clock == nil {
		ws.clock = RealClock{}
	}
	ws.Token = ws.opts.Token
	if ws.Token == "" {
		ws.Token = "dapi" + randomHex(16)
	}
	ws.WorkspaceID = ws.opts.WorkspaceID
	if ws.WorkspaceID == 0 {
		n, err := rand.Int(rand.Reader, big.NewInt(9e15))
		if err != nil {
			return nil, err
		}
		ws.WorkspaceID = 1e15 + n.Int64()
	}
	ws.UserName = ws.opts.UserName
	ws.ids = idSource{next: 1000}
	ws.dbfs = newMemFS()
	ws.volumes = newMemFS()
	ws.notebooks = newWorkspaceTree()
	ws.initState()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("emulator: listen: %w", err)
	}
	ws.Host = ln.Addr().String()
	ws.url = "http://" + ws.Host
	if ws.opts.CA != nil {
		cfg, err := ws.opts.CA.ServerConfig()
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		if ws.opts.ClientCAs != nil {
			cfg.ClientCAs, cfg.ClientAuth = ws.opts.ClientCAs, tls.RequireAndVerifyClientCert
		}
		ln = tls.NewListener(ln, cfg)
		ws.url = "https://" + ws.Host
	}
	ws.ln = ln
	var dpTLS *tls.Config
	if ws.opts.CA != nil {
		if dpTLS, err = ws.opts.CA.ServerConfig(); err != nil {
			_ = ln.Close()
			return nil, err
		}
	}
	if err := ws.startDataPlane(dpTLS); err != nil {
		_ = ln.Close()
		return nil, err
	}

	if ws.opts.Blob != nil {
		store, err := newBlobStore(context.Background(), *ws.opts.Blob, fmt.Sprintf("ws%d", ws.WorkspaceID))
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		ws.store = store
		if ws.opts.CredentialType == CredentialAzureADLS {
			if ws.dfs, err = newDFSFront(store, ws.opts.CustomerKey); err != nil {
				_ = ln.Close()
				return nil, err
			}
		}
	} else {
		ws.store = newMemStore()
	}
	switch ws.opts.CredentialType {
	case CredentialAzureSAS, CredentialAzureADLS:
	default:
		_ = ln.Close()
		return nil, fmt.Errorf("emulator: CredentialType %q: use %s or %s", ws.opts.CredentialType, CredentialAzureSAS, CredentialAzureADLS)
	}
	if ws.opts.CustomerKey && ws.dfs == nil {
		_ = ln.Close()
		return nil, fmt.Errorf("emulator: CustomerKey needs Blob and CredentialType %s", CredentialAzureADLS)
	}

	ws.mux = newRouteMux()
	ws.routes()
	ws.srv = &http.Server{Handler: ws, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = ws.srv.Serve(ln) }()
	return ws, nil
}

// Start starts a workspace for a test and closes it in t.Cleanup.
func Start(t testing.TB, opts Options) *Workspace {
	t.Helper()
	ws, err := New(opts)
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	t.Cleanup(ws.Close)
	return ws
}

// Close stops the listener and drops all state.
func (ws *Workspace) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = ws.srv.Shutdown(ctx)
	_ = ws.dataPlane.srv.Shutdown(ctx)
	if ws.dfs != nil {
		ws.dfs.close(ctx)
	}
}

// URL is the workspace URL (http://127.0.0.1:NNNNN, or https:// with
// Options.CA), the SDK's Config.Host.
func (ws *Workspace) URL() string { return ws.url }

// Clock returns the workspace's clock.
func (ws *Workspace) Clock() Clock { return ws.clock }

// SDKConfig returns a databricks-sdk-go configuration for this workspace with
// PAT auth that reads no DATABRICKS_*/ARM_* variables and no
// ~/.databrickscfg: Loaders replaces the SDK's default loaders
// (ConfigAttributes reads the environment, ConfigFile the profile file), and
// a loader that sets nothing leaves only the fields given here.
func (ws *Workspace) SDKConfig() *config.Config {
	cfg := &config.Config{
		Host:     ws.URL(),
		Token:    ws.Token,
		AuthType: "pat",
		Loaders:  []config.Loader{NoEnvLoader{}},
	}
	if ws.opts.CA != nil {
		cfg.HTTPTransport = ws.opts.CA.Transport()
	}
	return cfg
}

// NoEnvLoader is a config.Loader that loads nothing. Put it alone in
// config.Config.Loaders so an SDK client only uses the fields set in code.
type NoEnvLoader struct{}

// Name implements config.Loader.
func (NoEnvLoader) Name() string { return "emulator-no-env" }

// Configure implements config.Loader.
func (NoEnvLoader) Configure(*config.Config) error { return nil }

func withDefaults(o Options) Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.RunPending, 5*time.Second)
	def(&o.RunTerminating, 2*time.Second)
	def(&o.RunDuration, 30*time.Second)
	def(&o.RegistrationDelay, 3*time.Second)
	def(&o.ServingReady, 60*time.Second)
	def(&o.ServingUpdate, 30*time.Second)
	def(&o.OAuthTokenTTL, time.Hour)
	if o.CredentialPageSize == 0 {
		o.CredentialPageSize = 100
	}
	if o.CredentialType == "" {
		o.CredentialType = CredentialAzureSAS
	}
	if o.ArtifactListPageSize == 0 {
		o.ArtifactListPageSize = 1000
	}
	if o.UserName == "" {
		o.UserName = "emulator.user@example.com"
	}
	if o.Name == "" {
		o.Name = "workspace"
	}
	return o
}

func (ws *Workspace) initState() {
	ws.jobs = newJobsState()
	ws.mlflow = newMLflowState()
	ws.registry = newRegistryState()
	ws.uc = newUCState()
	ws.serving = newServingState()
	ws.repos = reposState{repos: map[int64]*workspace.RepoInfo{}}
	ws.sql = newSQLState()
	ws.compute = newComputeState()
	ws.oauth = newOAuthState()
	ws.behaviours = newBehaviours()
}

// idSource hands out increasing numeric ids (job ids, run ids, handles).
type idSource struct{ next int64 }

func (s *idSource) take() int64 {
	s.next++
	return s.next
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ServeHTTP is the workspace's front door: record, inject faults,
// authenticate, then route. An unknown route answers 404 ENDPOINT_NOT_FOUND
// like Databricks.
func (ws *Workspace) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 256<<20))
	if err != nil {
		writeError(w, invalidParam("reading request body: %v", err))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	rec := &Request{Time: ws.clock.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Raw: raw}
	sw := &statusWriter{ResponseWriter: w}
	var once sync.Once
	record := func() {
		once.Do(func() {
			rec.Status = sw.status
			if ws.opts.Logf != nil {
				ws.opts.Logf("emulator %s: %s %s → %d%s", ws.opts.Name, r.Method, r.URL.RequestURI(), sw.status, faultSuffix(rec.Fault))
			}
			ws.recMu.Lock()
			ws.records = append(ws.records, *rec)
			ws.recMu.Unlock()
		})
	}
	// A request whose connection is dropped or reset (faults) is recorded
	// before the connection closes: a client that sees it close finds the
	// request in the log. Any other is recorded when the handler returns,
	// before its answer is flushed.
	sw.beforeHijack = record
	defer record()
	r = r.WithContext(context.WithValue(r.Context(), recordKey{}, rec))
	// Every answer names the workspace: databricks-sdk-go's
	// WorkspaceClient.CurrentWorkspaceID reads X-Databricks-Org-Id from
	// SCIM Me (workspace_functions.go), MLflow's UC store reads it from the
	// runs/get answer to link a model version to its run
	// (rest_store.py _get_workspace_id).
	w.Header().Set("X-Databricks-Org-Id", strconv.FormatInt(ws.WorkspaceID, 10))

	if ws.injectFault(sw, r, rec) {
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/oidc/") {
		principal, aerr := ws.authenticate(r)
		if aerr != nil {
			writeError(sw, aerr)
			return
		}
		rec.Principal = principal
	}
	// mux.Handler only looks the route up; mux.ServeHTTP below also sets
	// the path values handlers read with r.PathValue.
	if _, pattern := ws.mux.Handler(r); pattern == "" {
		writeError(sw, errorf(http.StatusNotFound, "ENDPOINT_NOT_FOUND", "No API found for '%s %s'", r.Method, r.URL.Path))
		return
	}
	if rec.Fault.AfterCommit() {
		// The work is done; the answer is lost: replaced by a 500, or the
		// connection closed without one.
		dw := &discardWriter{header: http.Header{}}
		ws.mux.ServeHTTP(dw, r)
		rec.Committed = dw.status
		if rec.Committed == 0 {
			rec.Committed = http.StatusOK
		}
		if rec.Fault == FaultDropAfterCommit {
			resetConnection(sw)
			return
		}
		writeError(sw, errorf(http.StatusInternalServerError, "INTERNAL_ERROR", "Internal error (injected by the emulator after the request was carried out)."))
		return
	}
	ws.mux.ServeHTTP(sw, r)
}

// discardWriter is a ResponseWriter that drops the answer and keeps its
// status (Fault500AfterCommit, FaultDropAfterCommit).
type discardWriter struct {
	header http.Header
	status int
}

func (d *discardWriter) Header() http.Header { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	return len(b), nil
}
func (d *discardWriter) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
}

type recordKey struct{}

func recordOf(r *http.Request) *Request {
	rec, _ := r.Context().Value(recordKey{}).(*Request)
	return rec
}

type statusWriter struct {
	http.ResponseWriter
	status       int
	beforeHijack func() // records the request (ServeHTTP)
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Hijack lets fault injection drop a connection.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.beforeHijack != nil {
		w.beforeHijack()
	}
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijacking not supported")
	}
	return hj.Hijack()
}

// handle registers a JSON route whose request decodes strictly into Req (the
// SDK's request type for the route): the query for GET/DELETE/HEAD, the JSON
// body otherwise. fn runs under the workspace lock after time-driven state
// has been brought up to date; its result is encoded with encoding/json
// (the SDK types' own MarshalJSON).
func handle[Req any](ws *Workspace, pattern string, fn func(r *http.Request, req *Req) (any, *apiError)) {
	ws.mux.route(pattern, reflect.TypeFor[Req](), func(w http.ResponseWriter, r *http.Request) {
		req := new(Req)
		var resp any
		var aerr *apiError
		served := ws.serveLocked(w, r, req, func() *apiError { return decodeRequest(r, req) }, func() {
			ws.advanceLocked()
			resp, aerr = fn(r, req)
		})
		if !served {
			return
		}
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		if resp == nil {
			resp = struct{}{}
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

// serveLocked is the common body of every route that decodes a request:
// decode fills req (its error is the answer), req is recorded as the
// request's body, and fn runs under the workspace lock. It reports whether
// fn ran. Routes whose state depends on time call ws.advanceLocked in fn.
func (ws *Workspace) serveLocked(w http.ResponseWriter, r *http.Request, req any, decode func() *apiError, fn func()) bool {
	if aerr := decode(); aerr != nil {
		writeError(w, aerr)
		return false
	}
	if rec := recordOf(r); rec != nil {
		rec.Body = req
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	fn()
	return true
}

func decodeRequest(r *http.Request, dst any) *apiError {
	if aerr := decodeQuery(r.URL.Query(), dst); aerr != nil {
		return aerr
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete:
		return nil
	}
	return decodeBody(r, dst)
}

// decodeBody decodes the JSON body of r strictly into dst.
func decodeBody(r *http.Request, dst any) *apiError {
	raw, _ := io.ReadAll(r.Body)
	return decodeStrictJSON(raw, dst)
}

// advanceLocked brings every time-driven state machine up to the clock's
// current time. Callers hold ws.mu.
func (ws *Workspace) advanceLocked() {
	now := ws.clock.Now()
	ws.advanceRuns(now)
	ws.advanceRegistry(now)
	ws.advanceServing(now)
}

// do runs fn under the workspace lock with state brought up to date; the
// Go-side accessors use it.
func (ws *Workspace) do(fn func()) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.advanceLocked()
	fn()
}

// Name labels the workspace ("dev", "prod"), as given in Options.Name.
func (ws *Workspace) Name() string { return ws.opts.Name }
