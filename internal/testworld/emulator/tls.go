package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// CA is a throw-away certificate authority for emulated services served over
// HTTPS, so tasks run with TLS verification on: the task trusts the CA through
// the agent's AGENT_CAINFO setting, as it would a corporate CA.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the CA certificate, PEM-encoded (what AGENT_CAINFO points at).
	PEM []byte
}

// NewCA creates a CA valid for a day.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Brickferry emulator CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// WriteFile writes the CA certificate (PEM) to path.
func (ca *CA) WriteFile(path string) error { return os.WriteFile(path, ca.PEM, 0o644) }

// Pool is a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// Transport is an HTTP transport that trusts this CA.
func (ca *CA) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	return t
}

// ServerConfig is a TLS server configuration with a certificate for
// 127.0.0.1, ::1 and localhost signed by the CA.
func (ca *CA) ServerConfig() (*tls.Config, error) {
	cert, err := ca.Issue("127.0.0.1", "::1", "localhost")
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Issue signs a server certificate for the given names: IP addresses, host
// names and wildcards such as *.vault.azure.net. Stand-ins that answer at
// public names (package azurestandin) use it, so one CA file covers them and
// the workspaces.
func (ca *CA) Issue(names ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if len(names) > 0 {
		tmpl.Subject = pkix.Name{CommonName: names[0]}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("emulator: signing a server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// testCA is the one CA of a test process: every workspace that StartHTTPS
// starts is signed by it, so a task run that talks to two workspaces (dev
// and prod) trusts both through one Agent.CAInfo file.
var testCA struct {
	once sync.Once
	ca   *CA
	err  error
}

// TestCA is the test process's CA and a file in the test's temporary folder
// holding its certificate (what a task trusts as Agent.CAInfo).
func TestCA(t testing.TB) (*CA, string) {
	t.Helper()
	testCA.once.Do(func() { testCA.ca, testCA.err = NewCA() })
	if testCA.err != nil {
		t.Fatalf("emulator: creating the test CA: %v", testCA.err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := testCA.ca.WriteFile(file); err != nil {
		t.Fatalf("emulator: writing the test CA: %v", err)
	}
	return testCA.ca, file
}

// StartHTTPS starts a workspace serving https (Azure Databricks serves https
// only, and so does package auth) with a certificate of the test CA, stopped
// at the end of the test, and returns it with the CA's file.
func StartHTTPS(t testing.TB, opts Options) (*Workspace, string) {
	t.Helper()
	ca, file := TestCA(t)
	opts.CA = ca
	return Start(t, opts), file
}
