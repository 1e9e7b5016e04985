package httpclient_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/httpclient"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/fixtures"
)

// startMutualTLS is an HTTPS server that requires a client certificate
// signed by the fixtures' CA and answers with the certificate's name.
func startMutualTLS(t *testing.T, f fixtures.ClientCertFiles) (url, caFile string) {
	t.Helper()
	ca, caFile := emulator.TestCA(t)
	serverCfg, err := ca.ServerConfig()
	require.NoError(t, err)
	clientCA, err := os.ReadFile(f.CA)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(clientCA))
	serverCfg.ClientCAs = pool
	serverCfg.ClientAuth = tls.RequireAndVerifyClientCert
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = serverCfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, caFile
}

// TestClientCertificateAsTheAgentHandsItOver: each way the agent passes its
// client certificate reaches a server that requires one.
func TestClientCertificateAsTheAgentHandsItOver(t *testing.T) {
	f := fixtures.ClientCert(t)
	url, caFile := startMutualTLS(t, f)
	password := f.Password
	cases := []struct {
		name string
		env  map[string]string
	}{
		{"PEM certificate and PKCS#8 encrypted key (the documented openssl pkcs12 -nocerts export)", map[string]string{
			"AGENT_CLIENTCERT": f.Cert, "AGENT_CLIENTCERTKEY": f.Key, "SECRET_AGENT_CLIENTCERTPASSWORD": password}},
		{"PEM certificate and an OpenSSL 1.x encrypted key (Proc-Type: 4,ENCRYPTED)", map[string]string{
			"AGENT_CLIENTCERT": f.Cert, "AGENT_CLIENTCERTKEY": f.LegacyKey, "SECRET_AGENT_CLIENTCERTPASSWORD": password}},
		{".pfx archive with its password", map[string]string{
			"AGENT_CLIENTCERTARCHIVE": f.Archive, "SECRET_AGENT_CLIENTCERTPASSWORD": password}},
		{"all of them, as a configured agent passes them", map[string]string{
			"AGENT_CLIENTCERT": f.Cert, "AGENT_CLIENTCERTKEY": f.Key,
			"AGENT_CLIENTCERTARCHIVE": f.Archive, "SECRET_AGENT_CLIENTCERTPASSWORD": password}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := agent.Env{"AGENT_CAINFO": caFile}
			for k, v := range tc.env {
				env[k] = v
			}
			s, err := httpclient.FromEnv(env)
			require.NoError(t, err)
			c, err := s.Client(httpclient.Options{})
			require.NoError(t, err)
			resp, err := c.Get(url)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "brickferry-agent", string(body))
		})
	}

	t.Run("without the certificate the server refuses the handshake", func(t *testing.T) {
		s, err := httpclient.FromEnv(agent.Env{"AGENT_CAINFO": caFile})
		require.NoError(t, err)
		c, err := s.Client(httpclient.Options{})
		require.NoError(t, err)
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		require.Error(t, err)
	})
}

// TestClientCertificateErrorsNameTheAgentSetting: a certificate that cannot
// be used is a clear error naming the agent setting, never the password.
func TestClientCertificateErrorsNameTheAgentSetting(t *testing.T) {
	f := fixtures.ClientCert(t)
	password := f.Password
	cases := []struct {
		name string
		env  agent.Env
		want []string
	}{
		{"encrypted key, no password", agent.Env{"AGENT_CLIENTCERT": f.Cert, "AGENT_CLIENTCERTKEY": f.Key},
			[]string{"Agent.ClientCertKey", "password-protected", "Agent.ClientCertPassword", "--sslclientcertpassword"}},
		{"encrypted key, wrong password", agent.Env{"AGENT_CLIENTCERT": f.Cert, "AGENT_CLIENTCERTKEY": f.Key, "SECRET_AGENT_CLIENTCERTPASSWORD": "wrong-" + password},
			[]string{"Agent.ClientCertKey", "could not be decrypted", "Agent.ClientCertPassword"}},
		{"legacy key, wrong password", agent.Env{"AGENT_CLIENTCERT": f.Cert, "AGENT_CLIENTCERTKEY": f.LegacyKey, "SECRET_AGENT_CLIENTCERTPASSWORD": "wrong-" + password},
			[]string{"Agent.ClientCertKey", "could not be decrypted", "Agent.ClientCertPassword"}},
		{"archive, wrong password", agent.Env{"AGENT_CLIENTCERTARCHIVE": f.Archive, "SECRET_AGENT_CLIENTCERTPASSWORD": "wrong-" + password},
			[]string{"Agent.ClientCertArchive", "does not open", "Agent.ClientCertPassword"}},
		{"archive, no password", agent.Env{"AGENT_CLIENTCERTARCHIVE": f.Archive},
			[]string{"Agent.ClientCertArchive", "Agent.ClientCertPassword, which the agent did not pass"}},
		{"archive that is not one", agent.Env{"AGENT_CLIENTCERTARCHIVE": f.Cert, "SECRET_AGENT_CLIENTCERTPASSWORD": password},
			[]string{"Agent.ClientCertArchive", "PKCS#12"}},
		{"certificate without key", agent.Env{"AGENT_CLIENTCERT": f.Cert},
			[]string{"Agent.ClientCert", "Agent.ClientCertKey", "--sslclientcertkey"}},
		{"key of another certificate", agent.Env{"AGENT_CLIENTCERT": f.CA, "AGENT_CLIENTCERTKEY": f.Key, "SECRET_AGENT_CLIENTCERTPASSWORD": password},
			[]string{"Agent.ClientCert", "Agent.ClientCertKey", "do not make a pair"}},
		{"missing key file", agent.Env{"AGENT_CLIENTCERT": f.Cert, "AGENT_CLIENTCERTKEY": f.Key + ".missing"},
			[]string{"Agent.ClientCertKey"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := httpclient.FromEnv(tc.env)
			require.NoError(t, err)
			_, err = s.TLSConfig()
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), password)
		})
	}
}
