// Package httpclient builds the one HTTP transport every Brickferry client uses
// (Databricks, Microsoft Entra ID, Key Vault, Azure DevOps, blob storage), so
// that the agent's proxy and certificate settings apply to all of them.
//
// The agent does not set HTTPS_PROXY for tasks. It passes its own settings as
// variables, which azure-pipelines-task-lib reads in getHttpProxyConfiguration
// and getHttpCertConfiguration (node/task.ts):
//
//   - Agent.ProxyUrl, Agent.ProxyUsername, Agent.ProxyPassword (a secret
//     variable, so SECRET_AGENT_PROXYPASSWORD), Agent.ProxyBypassList (a JSON
//     list of regular expressions, each tested case-insensitively against the
//     whole request URL);
//   - Agent.CAInfo (a PEM file of extra trusted roots), the client
//     certificate (Agent.ClientCertArchive, or Agent.ClientCert and
//     Agent.ClientCertKey, with the secret Agent.ClientCertPassword; see
//     clientcert.go), Agent.SkipCertValidation.
//
// When Agent.ProxyUrl is not set, the usual HTTPS_PROXY / HTTP_PROXY /
// NO_PROXY variables of a self-hosted agent's environment apply, as they would
// for any Go program. TLS verification is on unless the agent itself was
// configured to skip it.
package httpclient

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/brickferry/brickferry/internal/agent"
)

// Settings is the agent's network configuration, read once from the task's
// environment.
type Settings struct {
	ProxyURL      *url.URL // without credentials; nil when the agent has no proxy
	ProxyUser     string
	ProxyPassword string
	Bypass        []*regexp.Regexp // request URLs that go direct

	CAFile             string // extra trusted roots (PEM)
	ClientCertFile     string // client certificate (PEM), with ClientKeyFile
	ClientKeyFile      string // its key (PEM, password-protected in the agent's documented setup)
	ClientCertArchive  string // the same as a PKCS#12 (.pfx) archive; used when set
	ClientCertPassword string // password of the key and of the archive
	SkipCertValidation bool

	// envProxy is HTTPS_PROXY/HTTP_PROXY/NO_PROXY, used when ProxyURL is nil.
	envProxy *httpproxy.Config
}

// FromEnv reads the agent's proxy and certificate settings. An error names
// the setting that is wrong; it never contains the proxy password.
func FromEnv(env agent.Env) (Settings, error) {
	variable := func(name string) string {
		v, _, _ := env.Variable(name)
		return strings.TrimSpace(v)
	}
	s := Settings{
		ProxyUser:          variable("Agent.ProxyUsername"),
		ProxyPassword:      variable("Agent.ProxyPassword"),
		CAFile:             variable("Agent.CAInfo"),
		ClientCertFile:     variable("Agent.ClientCert"),
		ClientKeyFile:      variable("Agent.ClientCertKey"),
		ClientCertArchive:  variable("Agent.ClientCertArchive"),
		ClientCertPassword: rawVariable(env, "Agent.ClientCertPassword"),
		SkipCertValidation: strings.EqualFold(variable("Agent.SkipCertValidation"), "true"),
	}
	if raw := variable("Agent.ProxyUrl"); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return Settings{}, fmt.Errorf("the agent's proxy URL (Agent.ProxyUrl) is not an http(s) URL with a host: %q", redactURL(raw))
		}
		if u.User != nil { // credentials in the URL itself, as some agents are configured
			if s.ProxyUser == "" {
				s.ProxyUser = u.User.Username()
				s.ProxyPassword, _ = u.User.Password()
			}
			u.User = nil
		}
		s.ProxyURL = u
	}
	if raw := variable("Agent.ProxyBypassList"); raw != "" {
		var list []string
		if err := json.Unmarshal([]byte(raw), &list); err != nil {
			return Settings{}, fmt.Errorf("the agent's proxy bypass list (Agent.ProxyBypassList) is not a JSON list of strings: %w", err)
		}
		for _, p := range list {
			re, err := regexp.Compile("(?i)" + p)
			if err != nil {
				return Settings{}, fmt.Errorf("the agent's proxy bypass list (Agent.ProxyBypassList) has an entry %q that is not a regular expression: %w", p, err)
			}
			s.Bypass = append(s.Bypass, re)
		}
	}
	if s.ProxyURL == nil {
		s.envProxy = &httpproxy.Config{
			HTTPProxy:  cmp.Or(env["HTTP_PROXY"], env["http_proxy"]),
			HTTPSProxy: cmp.Or(env["HTTPS_PROXY"], env["https_proxy"]),
			NoProxy:    cmp.Or(env["NO_PROXY"], env["no_proxy"]),
		}
	}
	return s, nil
}

// rawVariable is a variable as set: a password may begin or end with a space.
func rawVariable(env agent.Env, name string) string {
	v, _, _ := env.Variable(name)
	return v
}

// redactURL drops the user information of a URL for messages.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		u.User = url.User("***")
		return u.String()
	}
	if i := strings.LastIndex(raw, "@"); i >= 0 {
		return "***" + raw[i:]
	}
	return raw
}

// Options are what a caller adds to the agent's settings.
type Options struct {
	// Log, when set, receives a debug line per request: method, host, path,
	// status and duration. Never the query (signed URLs carry their signature
	// there), never a header.
	Log *agent.Log
	// DialContext replaces net.Dialer.DialContext (tests map public host
	// names to local servers with it). Nil means the system dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Retry, when set, adds the retrying layer (see Retry) above the
	// per-request debug log, so every attempt is logged.
	Retry *Retry
}

// imdsHost is the Azure Instance Metadata Service, which managed identities
// use. It is link-local: no proxy can reach it, whatever the bypass list says.
const imdsHost = "169.254.169.254"

// Proxy returns the proxy for a request (nil for none): the agent's proxy,
// with its credentials, unless the URL matches the bypass list.
func (s Settings) Proxy(req *http.Request) (*url.URL, error) {
	if req.URL.Hostname() == imdsHost {
		return nil, nil
	}
	if s.ProxyURL == nil {
		if s.envProxy == nil {
			return nil, nil
		}
		return s.envProxy.ProxyFunc()(req.URL)
	}
	full := req.URL.String()
	for _, re := range s.Bypass {
		if re.MatchString(full) {
			return nil, nil
		}
	}
	u := *s.ProxyURL
	if s.ProxyUser != "" {
		// net/http sends these as Proxy-Authorization (basic), for plain
		// requests and for CONNECT alike.
		u.User = url.UserPassword(s.ProxyUser, s.ProxyPassword)
	}
	return &u, nil
}

// TLSConfig is the TLS client configuration: the system roots plus
// Agent.CAInfo, the agent's client certificate, verification on unless the
// agent skips it.
func (s Settings) TLSConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the agent's CA certificates (Agent.CAInfo): %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the agent's CA file %s (Agent.CAInfo) holds no PEM certificate", s.CAFile)
		}
		cfg.RootCAs = pool
	}
	cert, err := s.clientCertificate()
	if err != nil {
		return nil, err
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	cfg.InsecureSkipVerify = s.SkipCertValidation //nolint:gosec // only when the agent was configured with --sslskipcertvalidation
	return cfg, nil
}

// Transport returns a new transport with these settings.
func (s Settings) Transport(opts Options) (http.RoundTripper, error) {
	tlsCfg, err := s.TLSConfig()
	if err != nil {
		return nil, err
	}
	dial := opts.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	t := &http.Transport{
		Proxy:                 s.Proxy,
		DialContext:           dial,
		TLSClientConfig:       tlsCfg,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	var rt http.RoundTripper = t
	if opts.Log != nil && opts.Log.DebugEnabled() {
		rt = &logging{next: t, log: opts.Log, proxy: s.Proxy}
	}
	if opts.Retry != nil {
		p := *opts.Retry
		if p.Log == nil && opts.Log != nil && opts.Log.DebugEnabled() {
			p.Log = opts.Log
		}
		rt = Retrying(rt, p)
	}
	return rt, nil
}

// Client returns an *http.Client over a new transport with these settings.
func (s Settings) Client(opts Options) (*http.Client, error) {
	t, err := s.Transport(opts)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: t}, nil
}

// logging writes one debug line per request and response.
type logging struct {
	next  http.RoundTripper
	log   *agent.Log
	proxy func(*http.Request) (*url.URL, error)
}

func (l *logging) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	via := ""
	if p, err := l.proxy(req); err == nil && p != nil {
		via = " via proxy " + p.Host
	}
	resp, err := l.next.RoundTrip(req)
	elapsed := time.Since(start).Round(time.Millisecond)
	target := req.URL.Scheme + "://" + req.URL.Host + req.URL.EscapedPath()
	if err != nil {
		l.log.Debug("HTTP %s %s%s: %v (%s)", req.Method, target, via, err, elapsed)
		return nil, err
	}
	l.log.Debug("HTTP %s %s%s: %s (%s)", req.Method, target, via, resp.Status, elapsed)
	return resp, nil
}
