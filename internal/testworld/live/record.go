package live

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// Recorder records every request the tasks send to the workspaces, and
// every answer, through an HTTPS reverse proxy in front of each workspace
// (Front): with RECORD=1 a run gives the tasks the fronts' addresses
// instead of the workspaces'. It keeps the exchanges as they were and
// redacts them only when it writes them (Write), once every secret of the
// run is known.
//
// Not recorded: what the test process itself sends (the checks, the
// cleanup), and what the tasks send elsewhere (signed storage URLs, Azure
// DevOps, Entra ID, Key Vault).
type Recorder struct {
	mu        sync.Mutex
	exchanges []rawExchange
	closers   []func()
}

type rawExchange struct {
	workspace     string
	method, path  string
	query         string
	request       []byte
	status        int
	response      []byte
	reqCT, respCT string
}

// Front starts a reverse proxy to target (the workspace named name: dev or
// prod) serving HTTPS with a certificate of ca, and returns its URL.
// Upstream, it trusts the system's roots and extra (nil: none).
func (r *Recorder) Front(name string, target *url.URL, ca *emulator.CA, extra *emulator.CA) (string, error) {
	cfg, err := ca.ServerConfig()
	if err != nil {
		return "", err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if extra != nil {
		pool.AppendCertsFromPEM(extra.PEM)
	}
	up := http.DefaultTransport.(*http.Transport).Clone()
	up.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	up.Proxy = nil
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: &recording{rec: r, name: name, next: up},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: rp, TLSConfig: cfg}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	r.mu.Lock()
	r.closers = append(r.closers, func() { _ = srv.Close() })
	r.mu.Unlock()
	return "https://" + ln.Addr().String(), nil
}

// Close stops the fronts.
func (r *Recorder) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.closers {
		c()
	}
	r.closers = nil
}

// recording is the fronts' transport: it keeps each exchange.
type recording struct {
	rec  *Recorder
	name string
	next http.RoundTripper
}

func (t *recording) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	t.rec.mu.Lock()
	t.rec.exchanges = append(t.rec.exchanges, rawExchange{
		workspace: t.name, method: req.Method, path: req.URL.Path, query: req.URL.RawQuery,
		request: reqBody, status: resp.StatusCode, response: respBody,
		reqCT: req.Header.Get("Content-Type"), respCT: resp.Header.Get("Content-Type"),
	})
	t.rec.mu.Unlock()
	return resp, nil
}

// Recording is a recorded run as testdata/recordings/<date>/<name>.json
// holds it.
type Recording struct {
	// Sample is the sample's key (uc, workspace); Plan the run's name,
	// which the conformance replay gives its emulated world.
	Sample, Plan string
	// Against says what answered: "emulator" or "azure".
	Against   string
	Exchanges []Exchange
}

// Exchange is one recorded request and its answer, redacted.
type Exchange struct {
	Workspace string          `json:"workspace"` // dev or prod
	Method    string          `json:"method"`
	Path      string          `json:"path"`
	Query     string          `json:"query,omitempty"`
	Request   json.RawMessage `json:"request,omitempty"` // a JSON body; a body that is not JSON is {"non_json_bytes": n}
	Status    int             `json:"status"`
	Response  json.RawMessage `json:"response,omitempty"`
}

// Write redacts the exchanges with red and writes them to
// dir/<date>/<name>.json.
func (r *Recorder) Write(path string, rec Recording, red *Redactor) error {
	r.mu.Lock()
	raw := append([]rawExchange(nil), r.exchanges...)
	r.mu.Unlock()
	for _, x := range raw {
		rec.Exchanges = append(rec.Exchanges, Exchange{
			Workspace: x.workspace, Method: x.method,
			Path: red.Text(x.path), Query: red.Text(x.query),
			Request: red.Body(x.request), Status: x.status, Response: red.Body(x.response),
		})
	}
	b, err := marshal(rec, "  ")
	if err != nil {
		return err
	}
	if err := red.Check(b); err != nil {
		return fmt.Errorf("not writing %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644) //nolint:gosec // a recording is meant to be read and committed
}

// Redactor replaces, in recorded text and JSON, every secret of a run (in
// every form the Azure Pipelines agent's masker hides: agent.Masker) with
// <secret> (and its url.PathEscape form, which a path carries),
// the workspaces' addresses with <dev-host> and <prod-host>
// (other workspaces', storage accounts' and local servers' with
// <workspace-host>, <storage-host>, <local-host>),
// bearer tokens, JWTs and SAS signatures with <token>, and generated ids
// (UUIDs, 32-hex ids, logged model ids, 12 to 19-digit numbers, and the
// numeric values of id fields, id and *_id, wherever they appear after) with
// placeholders numbered in order of appearance: the same id is the same
// placeholder throughout a recording (<id-1>, or 9000000000000001 for a
// number, which keeps its JSON type).
type Redactor struct {
	masker  agent.Masker
	hosts   [][2]string // address → placeholder, longest first
	ids     map[string]string
	numbers map[string]string
}

// NumberPlaceholderBase is the first numeric placeholder: a recorded
// number from it to NumberPlaceholderBase+999999 stands for an id.
const NumberPlaceholderBase = 9000000000000000

// NewRedactor redacts secrets and the addresses of hosts (a URL or a
// host:port → its placeholder name, e.g. "dev-host").
func NewRedactor(secrets []string, hosts map[string]string) *Redactor {
	r := &Redactor{ids: map[string]string{}, numbers: map[string]string{}}
	for _, s := range secrets {
		r.masker.Add(s)
		// A path carries a value path-escaped (Go's url.PathEscape keeps
		// $&+,/:;=@ that the agent's URL form escapes): hidden as well.
		r.masker.Add(url.PathEscape(s))
		for _, line := range strings.Split(s, "\n") {
			r.masker.Add(url.PathEscape(strings.TrimSpace(line)))
		}
	}
	for addr, name := range hosts {
		u, err := url.Parse(addr)
		if err == nil && u.Host != "" {
			r.hosts = append(r.hosts, [2]string{u.Scheme + "://" + u.Host, "https://<" + name + ">"}, [2]string{u.Host, "<" + name + ">"})
			if h := u.Hostname(); h != u.Host && h != "127.0.0.1" {
				r.hosts = append(r.hosts, [2]string{h, "<" + name + ">"})
			}
		}
	}
	sort.Slice(r.hosts, func(i, j int) bool { return len(r.hosts[i][0]) > len(r.hosts[j][0]) })
	return r
}

var (
	// hostRe are addresses no Redactor host names: Azure storage accounts
	// and workspaces, and local servers (Azurite, the emulator).
	hostRe  = regexp.MustCompile(`\b[a-z0-9-]+\.(blob|dfs)\.core\.windows\.net\b|\badb-[0-9]+\.[0-9]+\.azuredatabricks\.net\b|\b127\.0\.0\.1:[0-9]+`)
	tokenRe = regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*|\bdapi[0-9a-f]{16,}(-[0-9]+)?\b|\bdose[0-9a-f]{16,}\b|(?i)(sig|signature|token|access_token|refresh_token)=[^&"\s]+`)
	idRe    = regexp.MustCompile(`\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b[0-9a-f]{32}\b|\b[1-9][0-9]{11,18}\b`)
)

// Text redacts a string.
func (r *Redactor) Text(s string) string {
	s = strings.ReplaceAll(r.masker.Mask(s), "***", "<secret>")
	for _, h := range r.hosts {
		s = strings.ReplaceAll(s, h[0], h[1])
	}
	s = hostRe.ReplaceAllStringFunc(s, func(m string) string {
		switch {
		case strings.HasSuffix(m, ".core.windows.net"):
			return "<storage-host>"
		case strings.HasPrefix(m, "127."):
			return "<local-host>"
		}
		return "<workspace-host>"
	})
	s = tokenRe.ReplaceAllStringFunc(s, func(m string) string {
		if k, _, ok := strings.Cut(m, "="); ok && !strings.HasPrefix(m, "eyJ") {
			return k + "=<token>"
		}
		return "<token>"
	})
	// One pass, so that a placeholder written here is not taken for an id.
	return anyIDRe.ReplaceAllStringFunc(s, func(m string) string {
		if p, ok := r.numbers[m]; ok {
			return p
		}
		digits := strings.Trim(m, "0123456789") == ""
		switch {
		case digits && isNumberPlaceholder(m):
			return m
		case digits && len(m) >= 12:
			return r.number(m)
		case digits:
			return m
		}
		p, ok := r.ids[m]
		if !ok {
			p = fmt.Sprintf("<id-%d>", len(r.ids)+1)
			r.ids[m] = p
		}
		return p
	})
}

// anyIDRe finds what Text may replace: idRe's ids, and numbers of 4
// digits or more (a learnt id, see learnID).
var anyIDRe = regexp.MustCompile(idRe.String() + `|\b[1-9][0-9]{3,}\b`)

func isNumberPlaceholder(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n > NumberPlaceholderBase && n < NumberPlaceholderBase+1000000
}

func (r *Redactor) number(m string) string {
	if isNumberPlaceholder(m) {
		return m
	}
	p, ok := r.numbers[m]
	if !ok {
		p = fmt.Sprint(NumberPlaceholderBase + len(r.numbers) + 1)
		r.numbers[m] = p
	}
	return p
}

// Body redacts a body: JSON value by value (numbers that are ids stay
// numbers), anything else reduced to its length.
func (r *Redactor) Body(b []byte) json.RawMessage {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return json.RawMessage(fmt.Sprintf(`{"non_json_bytes":%d}`, len(b)))
	}
	out, err := marshal(r.value(v), "")
	if err != nil {
		return json.RawMessage(fmt.Sprintf(`{"non_json_bytes":%d}`, len(b)))
	}
	return out
}

func (r *Redactor) value(v any) any {
	switch x := v.(type) {
	case string:
		return r.Text(x)
	case json.Number:
		s := x.String()
		if _, known := r.numbers[s]; known || idRe.FindString(s) == s {
			return json.Number(r.number(s))
		}
		return x
	case []any:
		for i := range x {
			x[i] = r.value(x[i])
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			if isIDField(k) {
				r.learnID(val)
			}
			out[r.Text(k)] = r.value(val)
		}
		return out
	}
	return v
}

// isIDField reports whether a JSON field holds an id: id, or *_id
// (job_id, run_id, experiment_id, ...).
func isIDField(k string) bool { return k == "id" || strings.HasSuffix(k, "_id") }

// learnID registers the value of an id field, so that it and every later
// occurrence of it (in paths, queries, bodies) get its placeholder, whatever
// its form: a short number (a job id, 1004) as well as a long one.
func (r *Redactor) learnID(v any) {
	switch x := v.(type) {
	case json.Number:
		if s := x.String(); knownIDRe.MatchString(s) {
			r.number(s)
		}
	case string:
		if knownIDRe.MatchString(x) {
			if _, ok := r.numbers[x]; !ok {
				r.number(x)
			}
		}
	}
}

// knownIDRe is what learnID takes for an id: a number of 4 digits or more.
var knownIDRe = regexp.MustCompile(`^[1-9][0-9]{3,}$`)

// Check fails when b still holds a secret of the run in a form the agent's
// masker hides: the last guard before a recording is written.
func (r *Redactor) Check(b []byte) error {
	if masked := r.masker.Mask(string(b)); masked != string(b) {
		return fmt.Errorf("a secret of the run is left in the recording")
	}
	return nil
}

// marshal is json.Marshal without HTML escaping (placeholders keep their
// < and >), indented by indent when it is not empty.
func marshal(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
