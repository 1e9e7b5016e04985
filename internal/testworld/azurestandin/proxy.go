package azurestandin

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
)

// proxy is a forward proxy as a corporate network has one: HTTP CONNECT
// tunnels (https) and absolute-URI requests (plain http, e.g. Azurite), with
// basic credentials when it has them. It dials through Azure.DialContext, so
// the public Azure names reach the stand-ins and everything else goes
// straight to its address. It never looks inside a tunnel: TLS is end to
// end between the task and the stand-in, as through a real proxy.
type proxy struct {
	user, pass string
	dial       func(ctx context.Context, network, addr string) (net.Conn, error)
	logf       func(format string, args ...any)

	mu      sync.Mutex
	tunnels []string
	conns   map[net.Conn]bool // open tunnel ends, closed by closeAll
	closed  bool
	forward *httputil.ReverseProxy
	once    sync.Once
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.user != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.pass))
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Proxy-Authorization")), []byte(want)) != 1 {
			p.logf("proxy: %s %s: 407 (no or wrong credentials)", r.Method, r.Host)
			w.Header().Set("Proxy-Authenticate", `Basic realm="azurestandin"`)
			http.Error(w, "proxy authentication required", http.StatusProxyAuthRequired)
			return
		}
	}
	switch {
	case r.Method == http.MethodConnect:
		p.connect(w, r)
	case r.URL.IsAbs():
		p.note(r.URL.Host)
		p.once.Do(func() {
			p.forward = &httputil.ReverseProxy{
				Rewrite:   func(*httputil.ProxyRequest) {}, // the absolute URL is the target; hop-by-hop headers (Proxy-Authorization) are dropped
				Transport: &http.Transport{DialContext: p.dial, Proxy: nil},
			}
		})
		p.forward.ServeHTTP(w, r)
	default:
		http.Error(w, "this is a proxy: send CONNECT or an absolute URL", http.StatusBadRequest)
	}
}

func (p *proxy) note(target string) {
	p.mu.Lock()
	p.tunnels = append(p.tunnels, target)
	p.mu.Unlock()
}

func (p *proxy) connect(w http.ResponseWriter, r *http.Request) {
	p.note(r.Host)
	up, err := p.dial(r.Context(), "tcp", r.Host)
	if err != nil {
		p.logf("proxy: CONNECT %s: 502 (%v)", r.Host, err)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		_ = up.Close()
		http.Error(w, "cannot tunnel over this connection", http.StatusInternalServerError)
		return
	}
	down, buf, err := hj.Hijack()
	if err != nil {
		_ = up.Close()
		return
	}
	if !p.track(up, down) {
		return
	}
	p.logf("proxy: CONNECT %s", r.Host)
	_, _ = io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n")
	go func() {
		defer p.untrack(up, down)
		done := make(chan struct{}, 2)
		go func() { _, _ = io.Copy(up, buf); done <- struct{}{} }() // buf holds what the client sent after CONNECT
		go func() { _, _ = io.Copy(down, up); done <- struct{}{} }()
		<-done
	}()
}

// track registers a tunnel's two ends, or closes them when the proxy is closed.
func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		if p.closed {
			_ = c.Close()
			continue
		}
		p.conns[c] = true
	}
	return !p.closed
}

func (p *proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *proxy) targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.tunnels...)
}
