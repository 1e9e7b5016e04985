package auth_test

// The local world of these tests: HTTPS servers standing in for Microsoft
// Entra ID, the Azure Instance Metadata Service, Azure DevOps (REST API and
// the pipeline's OIDC endpoint), Azure Key Vault (with its challenge flow)
// and two Azure Databricks workspaces (the emulator behind TLS), plus an
// authenticating CONNECT proxy. They answer at their public names
// (login.microsoftonline.com, dev.azure.com, kv-mlops.vault.azure.net,
// adb-....azuredatabricks.net): the resolver's dialer maps those names to
// the local listeners, and the servers present certificates of a test CA
// that the agent's Agent.CAInfo setting trusts.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/brickops/brickops/internal/emulator"
)

const (
	tenantID      = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	otherTenantID = "0d2f5a3c-1b4e-4f6a-9c8d-7e6f5a4b3c2d"
	devHost       = "adb-1111111111111111.11.azuredatabricks.net"
	prodHost      = "adb-2222222222222222.12.azuredatabricks.net"
	unknownHost   = "adb-3333333333333333.13.azuredatabricks.net" // resolves nowhere
	entraHost     = "login.microsoftonline.com"
	devopsHost    = "dev.azure.com"
	vaultHost     = "kv-mlops.vault.azure.net"
	otherVault    = "kv-other.vault.azure.net" // belongs to another tenant
	imdsAddr      = "169.254.169.254:80"
	projectID     = "6c1a5f3e-3d4b-4a5e-9b8e-0a1b2c3d4e5f" // agenttest's System.TeamProjectId

	wifClientID    = "11111111-1111-1111-1111-111111111111"
	secretClientID = "22222222-2222-2222-2222-222222222222"
	certClientID   = "33333333-3333-3333-3333-333333333333"
	miClientID     = "44444444-4444-4444-4444-444444444444"
	strangerID     = "55555555-5555-5555-5555-555555555555" // valid in Entra, not a workspace user
	kvReaderID     = "66666666-6666-6666-6666-666666666666" // may read the vault, not a workspace user
	spSecret       = "sp-secret-Zq8~kP2vN5xR7tY1wE3u"
	expiredSecret  = "sp-secret-expired-Hh4~gF6dS8aQ0"
	wifConnection  = "8a6f0b3c-1d2e-4f5a-9b8c-7d6e5f4a3b2c"
	oauthClientID  = "7e1b9c2d-3f4a-4b5c-8d6e-9f0a1b2c3d4e"
	oauthSecret    = "dose-oauth-secret-0f9e8d7c6b5a4"
	devPAT         = "dapi-dev-0123456789abcdef0123456789abcdef"
	prodPAT        = "dapi-prod-fedcba9876543210fedcba9876543210"
)

// world is the set of stand-in services of one test.
type world struct {
	t       *testing.T
	clock   *emulator.ManualClock
	caFile  string
	tlsCert tls.Certificate
	names   map[string]string // host:port → local address

	entraKey *rsa.PrivateKey // signs Entra access tokens
	oidcKey  *rsa.PrivateKey // signs the pipeline's OIDC tokens
	certPEM  []byte          // certClientID's certificate and key (PEM)
	certPub  any

	dev, prod *emulator.Workspace
	devReqs   *recorder

	mu           sync.Mutex
	entraCalls   int
	entraTTL     time.Duration
	oidcCalls    int
	groups       map[string]any // variable groups by name (REST shape)
	secrets      map[string]map[string]string
	proxyConnect []string // hosts CONNECTed through the proxy

	proxyAddr string
	proxyUser string
	proxyPass string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{
		t:        t,
		clock:    emulator.NewManualClock(time.Now()),
		names:    map[string]string{},
		entraTTL: 4 * time.Minute, // under MSAL's 5-minute cache margin: every GetToken reaches the server
		groups:   map[string]any{},
		secrets: map[string]map[string]string{
			vaultHost:  {"databricks-host": "https://" + prodHost + "/", "databricks-token": prodPAT, "databricks-host-prod": "https://" + prodHost, "databricks-token-prod": prodPAT, "databricks-client-id": oauthClientID, "databricks-client-secret": oauthSecret},
			otherVault: {"databricks-token": prodPAT},
		},
	}
	var err error
	w.entraKey, err = rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	w.oidcKey, err = rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	w.pki()

	// Two workspaces: dev accepts the WIF, secret, certificate and managed
	// identity principals; prod accepts OAuth clients and PATs.
	entra := func() *emulator.EntraOptions {
		return &emulator.EntraOptions{Key: &w.entraKey.PublicKey, TenantID: tenantID, Users: []string{wifClientID, secretClientID, certClientID, miClientID}}
	}
	w.dev = emulator.Start(t, emulator.Options{Name: "dev", Token: devPAT, Clock: w.clock, Entra: entra(), OAuthClients: map[string]string{oauthClientID: oauthSecret}, OAuthTokenTTL: time.Hour})
	w.prod = emulator.Start(t, emulator.Options{Name: "prod", Token: prodPAT, Clock: w.clock, Entra: entra(), OAuthClients: map[string]string{oauthClientID: oauthSecret}, OAuthTokenTTL: time.Hour})
	w.devReqs = &recorder{next: w.dev}
	w.serveTLS(devHost, w.devReqs)
	w.serveTLS(prodHost, w.prod)
	w.serveTLS(entraHost, http.HandlerFunc(w.entra))
	w.serveTLS(devopsHost, http.HandlerFunc(w.devops))
	w.serveTLS(vaultHost, w.vault(vaultHost, tenantID))
	w.serveTLS(otherVault, w.vault(otherVault, otherTenantID))
	imds := httptest.NewServer(http.HandlerFunc(w.imds))
	t.Cleanup(imds.Close)
	w.names[imdsAddr] = imds.Listener.Addr().String()
	return w
}

// recorder keeps the headers of the requests a handler got.
type recorder struct {
	next    http.Handler
	mu      sync.Mutex
	headers []http.Header
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.headers = append(r.headers, req.Header.Clone())
	r.mu.Unlock()
	r.next.ServeHTTP(w, req)
}

func (r *recorder) last() http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.headers[len(r.headers)-1]
}

// pki makes a CA, a server certificate for every name of the world, the CA
// file for Agent.CAInfo, and certClientID's certificate.
func (w *world) pki() {
	t := w.t
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Brickops test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "brickops test server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames:    []string{"localhost", devHost, prodHost, entraHost, devopsHost, vaultHost, otherVault},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	require.NoError(t, err)
	w.tlsCert = tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
	w.caFile = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(w.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))

	// The service principal's certificate, as an Azure Resource Manager
	// connection holds it: PEM certificate and private key.
	spKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	spTmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "brickops-sp"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	spDER, err := x509.CreateCertificate(rand.Reader, spTmpl, spTmpl, &spKey.PublicKey, spKey)
	require.NoError(t, err)
	w.certPub = &spKey.PublicKey
	w.certPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: spDER}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(spKey)})...)
}

func (w *world) serveTLS(name string, h http.Handler) {
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{w.tlsCert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	w.t.Cleanup(srv.Close)
	w.names[name+":443"] = srv.Listener.Addr().String()
}

// dial connects to the local listener of a public name; other addresses
// (the proxy itself) are dialled as they are; a public name the world does
// not serve does not resolve.
func (w *world) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if local, ok := w.names[addr]; ok {
		addr = local
	} else if host, _, _ := net.SplitHostPort(addr); net.ParseIP(host) == nil && host != "localhost" {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// --- Microsoft Entra ID ---------------------------------------------------

func (w *world) entraToken(aud, tenant, appID string, ttl time.Duration) string {
	now := w.clock.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"aud": aud, "iss": "https://sts.windows.net/" + tenant + "/", "tid": tenant,
		"appid": appID, "oid": appID, "iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(ttl).Unix(),
	})
	s, err := tok.SignedString(w.entraKey)
	require.NoError(w.t, err)
	return s
}

func entraError(rw http.ResponseWriter, status int, code string, aadsts int, text string) {
	writeJSON(rw, status, map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: 0b1c\r\nCorrelation ID: 2d3e\r\nTimestamp: 2026-01-01 00:00:00Z", aadsts, text),
		"error_codes":       []int{aadsts},
	})
}

func (w *world) entra(rw http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	tenant := parts[0]
	base := "https://" + entraHost + "/" + tenant
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
		if tenant != tenantID && tenant != otherTenantID {
			entraError(rw, http.StatusBadRequest, "invalid_tenant", 90002, "Tenant '"+tenant+"' not found.")
			return
		}
		writeJSON(rw, http.StatusOK, map[string]any{
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer":                 "https://" + entraHost + "/" + tenant + "/v2.0",
		})
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
		w.mu.Lock()
		w.entraCalls++
		ttl := w.entraTTL
		w.mu.Unlock()
		require.NoError(w.t, r.ParseForm())
		f := r.PostForm
		client, scope := f.Get("client_id"), strings.TrimSuffix(strings.Fields(f.Get("scope"))[0], "/.default")
		if f.Get("grant_type") != "client_credentials" {
			entraError(rw, http.StatusBadRequest, "unsupported_grant_type", 70003, "grant type not supported")
			return
		}
		switch client {
		case secretClientID, strangerID, kvReaderID:
			if f.Get("client_assertion") != "" { // the app has a secret, no federated credential
				entraError(rw, http.StatusBadRequest, "invalid_request", 700213, "No matching federated identity record found for presented assertion subject.")
				return
			}
			switch f.Get("client_secret") {
			case spSecret:
			case expiredSecret:
				entraError(rw, http.StatusUnauthorized, "invalid_client", 7000222, "The provided client secret keys for app '"+client+"' are expired.")
				return
			default:
				entraError(rw, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided.")
				return
			}
		case certClientID:
			if !w.validAssertion(f, w.certPub, base+"/oauth2/v2.0/token") {
				entraError(rw, http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation.")
				return
			}
		case wifClientID:
			if !w.validAssertion(f, &w.oidcKey.PublicKey, "api://AzureADTokenExchange") {
				entraError(rw, http.StatusBadRequest, "invalid_request", 700213, "No matching federated identity record found for presented assertion subject.")
				return
			}
		default:
			entraError(rw, http.StatusBadRequest, "unauthorized_client", 700016, "Application with identifier '"+client+"' was not found in the directory '"+tenant+"'.")
			return
		}
		writeJSON(rw, http.StatusOK, map[string]any{
			"token_type": "Bearer", "expires_in": int(ttl.Seconds()), "ext_expires_in": int(ttl.Seconds()),
			"access_token": w.entraToken(scope, tenant, client, ttl),
		})
	default:
		http.NotFound(rw, r)
	}
}

// validAssertion checks a client assertion: a JWT of client_assertion_type
// jwt-bearer, signed by key, for audience aud.
func (w *world) validAssertion(f map[string][]string, key any, aud string) bool {
	if get(f, "client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return false
	}
	_, err := jwt.Parse(get(f, "client_assertion"), func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"RS256", "PS256"}), jwt.WithAudience(aud))
	return err == nil
}

func get(f map[string][]string, k string) string {
	if v := f[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// imds is the Azure Instance Metadata Service of an agent VM.
func (w *world) imds(rw http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Metadata") != "true" || r.URL.Path != "/metadata/identity/oauth2/token" {
		writeJSON(rw, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "Required metadata header not specified"})
		return
	}
	if id := r.URL.Query().Get("client_id"); id != "" && id != miClientID {
		writeJSON(rw, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "Identity not found"})
		return
	}
	ttl := 4 * time.Minute
	writeJSON(rw, http.StatusOK, map[string]string{
		"access_token": w.entraToken(strings.TrimSuffix(r.URL.Query().Get("resource"), "/"), tenantID, miClientID, ttl),
		"expires_in":   fmt.Sprint(int(ttl.Seconds())), "expires_on": fmt.Sprint(time.Now().Add(ttl).Unix()),
		"resource": r.URL.Query().Get("resource"), "token_type": "Bearer",
	})
}

// --- Azure DevOps -----------------------------------------------------------

const (
	locResourceAreas  = "e81700f7-3be2-46de-8624-2eb35882fcaa"
	locVariableGroups = "f5b09dd5-9d54-45a1-8b5a-1c8287d634cc"
	areaTaskAgent     = "a85b8835-c1a1-4aac-ae97-1c3d0ba72dbd"
)

func (w *world) devops(rw http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer job-token-") {
		rw.Header().Set("Content-Type", "application/json")
		writeJSON(rw, http.StatusUnauthorized, map[string]any{"message": "TF400813: The user is not authorized to access this resource.", "typeKey": "UnauthorizedRequestException"})
		return
	}
	path := r.URL.Path
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/oidctoken"):
		w.mu.Lock()
		w.oidcCalls++
		w.mu.Unlock()
		conn := r.URL.Query().Get("serviceConnectionId")
		if r.URL.Query().Get("api-version") != "7.1" || conn == "" {
			writeJSON(rw, http.StatusBadRequest, map[string]any{"message": "bad request"})
			return
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"iss": "https://vstoken.dev.azure.com/" + tenantID, "sub": "sc://contoso/mlops/" + conn,
			"aud": "api://AzureADTokenExchange", "exp": time.Now().Add(10 * time.Minute).Unix(), "iat": time.Now().Unix(),
		})
		s, err := tok.SignedString(w.oidcKey)
		require.NoError(w.t, err)
		writeJSON(rw, http.StatusOK, map[string]string{"oidcToken": s})
	case r.Method == http.MethodOptions && path == "/contoso/_apis":
		loc := func(id, area, resource, route string) map[string]any {
			return map[string]any{"id": id, "area": area, "resourceName": resource, "routeTemplate": route,
				"resourceVersion": 2, "minVersion": "1.0", "maxVersion": "7.2", "releasedVersion": "0.0"}
		}
		writeJSON(rw, http.StatusOK, map[string]any{"count": 2, "value": []any{
			loc(locResourceAreas, "Location", "ResourceAreas", "_apis/{resource}/{areaId}"),
			loc(locVariableGroups, "distributedtask", "variablegroups", "{project}/_apis/{area}/{resource}/{groupId}"),
		}})
	case r.Method == http.MethodGet && path == "/contoso/_apis/ResourceAreas":
		writeJSON(rw, http.StatusOK, map[string]any{"count": 1, "value": []any{
			map[string]any{"id": areaTaskAgent, "name": "distributedtask", "locationUrl": "https://" + devopsHost + "/contoso/"},
		}})
	case r.Method == http.MethodGet && path == "/contoso/"+projectID+"/_apis/distributedtask/variablegroups":
		name := r.URL.Query().Get("groupName")
		w.mu.Lock()
		g, ok := w.groups[name]
		w.mu.Unlock()
		if name == "forbidden" {
			writeJSON(rw, http.StatusForbidden, map[string]any{"message": "Access denied."})
			return
		}
		list := []any{}
		if ok {
			list = append(list, g)
		}
		writeJSON(rw, http.StatusOK, map[string]any{"count": len(list), "value": list})
	default:
		writeJSON(rw, http.StatusNotFound, map[string]any{"message": "not found: " + r.Method + " " + path})
	}
}

// addGroup adds a library variable group. vault != "" links it to a vault.
func (w *world) addGroup(name, vault string, vars map[string]any) {
	g := map[string]any{"id": len(w.groups) + 1, "name": name, "type": "Vsts", "variables": vars}
	if vault != "" {
		g["type"] = "AzureKeyVault"
		g["providerData"] = map[string]any{"serviceEndpointId": "0f0e0d0c-0b0a-4090-8070-605040302010", "vault": strings.TrimSuffix(vault, ".vault.azure.net")}
	}
	w.mu.Lock()
	w.groups[name] = g
	w.mu.Unlock()
}

// --- Azure Key Vault ----------------------------------------------------------

// vault answers like Key Vault: 401 with a challenge to an unauthenticated
// request, then checks the bearer token's audience, tenant and principal.
func (w *world) vault(host, tenant string) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			rw.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="https://%s/%s", resource="https://vault.azure.net"`, entraHost, tenant))
			writeJSON(rw, http.StatusUnauthorized, map[string]any{"error": map[string]string{"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}})
			return
		}
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(bearer, claims, func(*jwt.Token) (any, error) { return &w.entraKey.PublicKey, nil },
			jwt.WithAudience("https://vault.azure.net"), jwt.WithValidMethods([]string{"RS256"}))
		if err != nil || claims["tid"] != tenant {
			writeJSON(rw, http.StatusUnauthorized, map[string]any{"error": map[string]string{"code": "Unauthorized", "message": "AKV10032: Invalid issuer."}})
			return
		}
		if app := claims["appid"]; app == strangerID {
			writeJSON(rw, http.StatusForbidden, map[string]any{"error": map[string]string{"code": "Forbidden", "message": fmt.Sprintf("The user, group or application 'appid=%s' does not have secrets get permission on key vault '%s'.", app, host)}})
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, "/secrets/")
		name = strings.Trim(name, "/")
		w.mu.Lock()
		v, found := w.secrets[host][name]
		w.mu.Unlock()
		if !ok || !found {
			writeJSON(rw, http.StatusNotFound, map[string]any{"error": map[string]string{"code": "SecretNotFound", "message": "A secret with (name/id) " + name + " was not found in this key vault."}})
			return
		}
		writeJSON(rw, http.StatusOK, map[string]any{"value": v, "id": "https://" + host + "/secrets/" + name + "/0123456789abcdef", "attributes": map[string]any{"enabled": true}})
	})
}

// --- Proxy --------------------------------------------------------------------

// startProxy starts an HTTP CONNECT proxy that requires basic credentials
// and records the hosts it tunnels to.
func (w *world) startProxy(user, pass string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(w.t, err)
	w.t.Cleanup(func() { _ = ln.Close() })
	w.proxyAddr, w.proxyUser, w.proxyPass = ln.Addr().String(), user, pass
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				if req.Header.Get("Proxy-Authorization") != want {
					_, _ = io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n")
					return
				}
				if req.Method != http.MethodConnect {
					_, _ = io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
					return
				}
				w.mu.Lock()
				w.proxyConnect = append(w.proxyConnect, req.Host)
				w.mu.Unlock()
				up, err := w.dial(context.Background(), "tcp", req.Host)
				if err != nil {
					_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
					return
				}
				defer func() { _ = up.Close() }()
				_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()
}

func (w *world) tunnelled() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.proxyConnect...)
}

func (w *world) counts() (entra, oidc int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.entraCalls, w.oidcCalls
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	rw.Header().Set("Content-Type", "application/json; charset=utf-8")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(v)
}
