package httpclient

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/youmark/pkcs8"
	"software.sslmate.com/src/go-pkcs12"
)

// The agent's client certificate, as the agent hands it to a task
// (azure-pipelines-agent src/Agent.Worker/ExecutionContext.cs; task-lib
// node/task.ts getHttpCertConfiguration):
//
//   - Agent.ClientCertArchive: a PKCS#12 (.pfx) archive with the certificate,
//     its private key and the CA chain;
//   - Agent.ClientCert and Agent.ClientCertKey: the certificate and its key
//     as PEM files;
//   - Agent.ClientCertPassword (a secret variable): the password of both.
//
// The agent's documented setup (docs/design/clientcert.md) extracts the key
// with `openssl pkcs12 -nocerts -passout ...`, which writes a PKCS#8
// "ENCRYPTED PRIVATE KEY" (PBES2: PBKDF2 + AES or 3DES); crypto/tls cannot
// read that, so the key is decrypted here. OpenSSL 1.x `genrsa -aes256` and
// `rsa -aes256` keys (RFC 1423, "Proc-Type: 4,ENCRYPTED") are read too, as
// Node's tls does for task-lib tasks. The archive is read when it is given,
// as the launcher does (build/launcher/download.js tlsOptions).
//
// Libraries: software.sslmate.com/src/go-pkcs12 reads the archives OpenSSL 3
// writes (PBES2/AES-256, HMAC-SHA256), which golang.org/x/crypto/pkcs12 does
// not; github.com/youmark/pkcs8 decrypts PKCS#8 keys, which golang.org/x/crypto
// cannot.

// clientCertificate loads the agent's client certificate, or returns nil
// when the agent has none.
func (s Settings) clientCertificate() (*tls.Certificate, error) {
	switch {
	case s.ClientCertArchive != "":
		return loadArchive(s.ClientCertArchive, s.ClientCertPassword)
	case s.ClientCertFile != "":
		if s.ClientKeyFile == "" {
			return nil, errors.New("the agent has a client certificate (Agent.ClientCert) but no key file (Agent.ClientCertKey) or archive (Agent.ClientCertArchive); configure the agent with --sslclientcertkey")
		}
		return loadPEMPair(s.ClientCertFile, s.ClientKeyFile, s.ClientCertPassword)
	}
	return nil, nil
}

func loadArchive(file, password string) (*tls.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the agent's client certificate archive (Agent.ClientCertArchive): %w", err)
	}
	key, leaf, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			return nil, fmt.Errorf("the agent's client certificate archive %s (Agent.ClientCertArchive) does not open with the agent's client certificate password (Agent.ClientCertPassword%s)", file, passwordState(password))
		}
		return nil, fmt.Errorf("the agent's client certificate archive %s (Agent.ClientCertArchive) is not a PKCS#12 (.pfx) archive this task can read: %w", file, err)
	}
	cert := &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert, nil
}

func passwordState(password string) string {
	if password == "" {
		return ", which the agent did not pass"
	}
	return ""
}

func loadPEMPair(certFile, keyFile, password string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("reading the agent's client certificate (Agent.ClientCert): %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading the agent's client certificate key (Agent.ClientCertKey): %w", err)
	}
	keyDER, err := decryptKey(keyFile, keyPEM, password)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return nil, fmt.Errorf("the agent's client certificate %s (Agent.ClientCert) and key %s (Agent.ClientCertKey) do not make a pair: %w", certFile, keyFile, err)
	}
	return &cert, nil
}

// decryptKey returns the private key of a PEM key file as PKCS#8 DER,
// decrypted with password when it is encrypted.
func decryptKey(file string, data []byte, password string) ([]byte, error) {
	var block *pem.Block
	for rest := data; ; {
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("the agent's client certificate key %s (Agent.ClientCertKey) holds no PEM private key", file)
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			break
		}
	}
	encrypted := block.Type == "ENCRYPTED PRIVATE KEY" || x509.IsEncryptedPEMBlock(block) //nolint:staticcheck // RFC 1423 keys are insecure but still what OpenSSL 1.x wrote; read, never written
	if encrypted && password == "" {
		return nil, fmt.Errorf("the agent's client certificate key %s (Agent.ClientCertKey) is password-protected, and the agent passed no password (Agent.ClientCertPassword): configure the agent with --sslclientcertpassword", file)
	}
	// The library's message says which: a wrong password, or an encryption
	// it does not know (PBES1, as `openssl pkcs8 -v1` writes).
	notDecrypted := func(err error) error {
		return fmt.Errorf("the agent's client certificate key %s (Agent.ClientCertKey) could not be decrypted with the agent's client certificate password (Agent.ClientCertPassword): %w", file, err)
	}
	var key any
	var err error
	switch {
	case block.Type == "ENCRYPTED PRIVATE KEY":
		if key, err = pkcs8.ParsePKCS8PrivateKey(block.Bytes, []byte(password)); err != nil {
			return nil, notDecrypted(err)
		}
	case encrypted:
		der, derr := x509.DecryptPEMBlock(block, []byte(password)) //nolint:staticcheck // see above
		if derr != nil {
			return nil, notDecrypted(derr)
		}
		key, err = parseAnyKey(der)
	default:
		key, err = parseAnyKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("the agent's client certificate key %s (Agent.ClientCertKey) is not an RSA, ECDSA or Ed25519 private key: %w", file, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("the agent's client certificate key %s (Agent.ClientCertKey): %w", file, err)
	}
	return der, nil
}

// parseAnyKey reads a PKCS#8, PKCS#1 (RSA) or SEC 1 (EC) private key.
func parseAnyKey(der []byte) (any, error) {
	if key, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return key, nil
	}
	if key, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return key, nil
	}
	return x509.ParseECPrivateKey(der)
}
