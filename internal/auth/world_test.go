package auth_test

// The local world of these tests: package azurestandin's stand-ins for
// Microsoft Entra ID, the Azure Instance Metadata Service, Azure DevOps (REST
// API and the pipeline's OIDC endpoint) and Azure Key Vault, its
// authenticating proxy, and two Azure Databricks workspaces (the emulator)
// served by it at their public names. The resolver's dialer is the
// stand-ins' DialContext, and the servers present certificates of a test CA
// that the agent's Agent.CAInfo setting trusts.

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/azurestandin"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

const (
	tenantID      = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	otherTenantID = "0d2f5a3c-1b4e-4f6a-9c8d-7e6f5a4b3c2d"
	devHost       = "adb-1111111111111111.11.azuredatabricks.net"
	prodHost      = "adb-2222222222222222.12.azuredatabricks.net"
	unknownHost   = "adb-3333333333333333.13.azuredatabricks.net" // resolves nowhere
	entraHost     = azurestandin.EntraHost
	devopsHost    = azurestandin.DevOpsHost
	vaultHost     = "kv-mlops.vault.azure.net"
	projectID     = "6c1a5f3e-3d4b-4a5e-9b8e-0a1b2c3d4e5f" // agenttest's System.TeamProjectId

	wifClientID    = "11111111-1111-1111-1111-111111111111"
	secretClientID = "22222222-2222-2222-2222-222222222222"
	certClientID   = "33333333-3333-3333-3333-333333333333"
	miClientID     = "44444444-4444-4444-4444-444444444444"
	strangerID     = "55555555-5555-5555-5555-555555555555" // valid in Entra, not a workspace user
	kvReaderID     = "66666666-6666-6666-6666-666666666666" // may read the vault, not a workspace user
	wifConnection  = "8a6f0b3c-1d2e-4f5a-9b8c-7d6e5f4a3b2c"
	oauthClientID  = "7e1b9c2d-3f4a-4b5c-8d6e-9f0a1b2c3d4e"
	fedClientID    = "a5c0e1f2-1111-4a4a-9b9b-0c0c0c0c0c01" // Databricks SP trusting this pipeline (p://)
	fedConnClient  = "a5c0e1f2-2222-4a4a-9b9b-0c0c0c0c0c02" // Databricks SP trusting connection mlops-wif (sc://)
	proxyUser      = "build-agent"
)

// The secrets are made for each run (crypto/rand's Text: 26 random base32
// characters) in the shapes of real ones, so that nothing in the repository
// looks like a credential.
var (
	spSecret      = "sp-" + rand.Text()
	expiredSecret = "sp-expired-" + rand.Text()
	oauthSecret   = "dose" + rand.Text()
	devPAT        = "dapi" + rand.Text()
	prodPAT       = "dapi" + rand.Text()
	proxyPassword = "proxy-" + rand.Text()
)

// world is the set of stand-in services of one test.
type world struct {
	t       *testing.T
	clock   *emulator.ManualClock
	az      *azurestandin.Azure
	certPEM []byte // certClientID's certificate and key (PEM)

	dev, prod *emulator.Workspace
	devReqs   *recorder
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, clock: emulator.NewManualClock(time.Now())}
	cert := w.spCertificate()
	ca, err := emulator.NewCA()
	require.NoError(t, err)
	w.az = azurestandin.Start(t, azurestandin.Options{
		CA: ca, TenantID: tenantID, Organization: "contoso", Project: "mlops", ProjectID: projectID,
		Clock: w.clock, TokenTTL: 4 * time.Minute, // under MSAL's 5-minute cache margin: every GetToken reaches the server
		Apps: map[string]azurestandin.App{
			secretClientID: {Secret: spSecret, ExpiredSecret: expiredSecret},
			strangerID:     {Secret: spSecret},
			kvReaderID:     {Secret: spSecret},
			certClientID:   {Certificate: cert},
		},
		Connections:       []azurestandin.Connection{{Name: "mlops-wif", ID: wifConnection, ClientID: wifClientID, Scheme: azurestandin.SchemeWorkloadIdentity}},
		ManagedIdentities: []string{miClientID},
		Vaults: []azurestandin.Vault{
			{Name: "kv-mlops", Readers: []string{wifClientID, secretClientID, certClientID, miClientID, kvReaderID}, Secrets: map[string]string{
				"databricks-host": "https://" + prodHost + "/", "databricks-token": prodPAT, "databricks-host-prod": "https://" + prodHost,
				"databricks-token-prod": prodPAT, "databricks-client-id": oauthClientID, "databricks-client-secret": oauthSecret,
			}},
			{Name: "kv-other", TenantID: otherTenantID, Secrets: map[string]string{"databricks-token": prodPAT}},
		},
		ProxyUser: proxyUser, ProxyPassword: proxyPassword,
	})

	// Two workspaces: dev accepts the WIF, secret, certificate and managed
	// identity principals; prod accepts OAuth clients and PATs.
	entra := func() *emulator.EntraOptions {
		return w.az.EntraOptions(wifClientID, secretClientID, certClientID, miClientID)
	}
	// Databricks federation policies of the account (the workspaces share
	// it): fedClientID trusts this pipeline's own token, fedConnClient the
	// token of connection mlops-wif.
	policy := func(sp, subject string) emulator.FederationPolicy {
		return emulator.FederationPolicy{ServicePrincipal: sp, Issuer: w.az.OIDCIssuer(), Audiences: []string{azurestandin.OIDCAudience}, Subject: subject, Key: w.az.OIDCKey()}
	}
	policies := []emulator.FederationPolicy{policy(fedClientID, w.az.PipelineSubject()), policy(fedConnClient, w.az.ConnectionSubject("mlops-wif"))}
	// Runs take three hours: longer than any token lives (TestThreeHourRun).
	w.dev = emulator.Start(t, emulator.Options{Name: "dev", Token: devPAT, Clock: w.clock, Entra: entra(), OAuthClients: map[string]string{oauthClientID: oauthSecret}, OAuthTokenTTL: time.Hour, FederationPolicies: policies, RunDuration: 3 * time.Hour})
	w.prod = emulator.Start(t, emulator.Options{Name: "prod", Token: prodPAT, Clock: w.clock, Entra: entra(), OAuthClients: map[string]string{oauthClientID: oauthSecret}, OAuthTokenTTL: time.Hour, FederationPolicies: policies, RunDuration: 3 * time.Hour})
	w.dev.AddNotebook("/Shared/train", "# Databricks notebook source\nprint('train')\n")
	w.prod.AddNotebook("/Shared/train", "# Databricks notebook source\nprint('train')\n")
	w.devReqs = &recorder{next: w.dev}
	w.az.AddHost(devHost, w.devReqs)
	w.az.AddHost(prodHost, w.prod)
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

// spCertificate makes certClientID's certificate, as an Azure Resource
// Manager connection holds it (PEM certificate and private key, in
// w.certPEM), and returns its public part for the app registration.
func (w *world) spCertificate() *x509.Certificate {
	t := w.t
	spKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	spTmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "brickferry-sp"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	spDER, err := x509.CreateCertificate(rand.Reader, spTmpl, spTmpl, &spKey.PublicKey, spKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(spDER)
	require.NoError(t, err)
	w.certPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: spDER}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(spKey)})...)
	return cert
}

// addGroup adds a library variable group.
func (w *world) addGroup(g azurestandin.VariableGroup) {
	require.NoError(w.t, w.az.AddVariableGroup(g))
}

// counts are the calls so far to Entra's token endpoint and to the
// pipeline's OIDC endpoint.
func (w *world) counts() (entra, oidc int) {
	for _, r := range w.az.Requests() {
		switch {
		case r.Host == azurestandin.EntraHost && r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/oauth2/v2.0/token"):
			entra++
		case r.Host == azurestandin.DevOpsHost && r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/oidctoken"):
			oidc++
		}
	}
	return entra, oidc
}
