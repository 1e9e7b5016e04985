package azurite

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
)

// FaultProxy is a reverse proxy in front of a blob service that fails a
// seeded share of requests the way Azure Storage does under load: 503
// ServerBusy, 500 InternalError, or a connection closed without an answer.
// Give clients its Endpoint (emulator.BlobAccount.ClientEndpoint) in place of
// the service's.
type FaultProxy struct {
	// Endpoint is the proxy's blob service URL, with the account path.
	Endpoint string

	srv      *httptest.Server
	mu       sync.Mutex
	rng      *rand.Rand
	rate     float64
	injected atomic.Int64
	served   atomic.Int64
}

// NewFaultProxy proxies blobEndpoint (e.g. Server.BlobEndpoint), failing
// each request with probability rate, reproducibly for a seed and an
// arrival order.
func NewFaultProxy(blobEndpoint string, seed uint64, rate float64) (*FaultProxy, error) {
	target, err := url.Parse(blobEndpoint)
	if err != nil {
		return nil, err
	}
	p := &FaultProxy{rng: rand.New(rand.NewPCG(seed, seed^0x5bd1e995)), rate: rate}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.served.Add(1)
		switch p.pick() {
		case 1:
			p.injected.Add(1)
			storageError(w, http.StatusServiceUnavailable, "ServerBusy", "The server is currently unable to receive requests. Please retry your request.")
			return
		case 2:
			p.injected.Add(1)
			storageError(w, http.StatusInternalServerError, "InternalError", "The server encountered an internal error. Please retry the request.")
			return
		case 3:
			p.injected.Add(1)
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					if tc, ok := conn.(*net.TCPConn); ok {
						_ = tc.SetLinger(0)
					}
					_ = conn.Close()
					return
				}
			}
		}
		rp.ServeHTTP(w, r)
	}))
	u, _ := url.Parse(p.srv.URL)
	u.Path = target.Path
	p.Endpoint = u.String()
	return p, nil
}

// pick returns 0 (serve), 1 (503), 2 (500) or 3 (drop).
func (p *FaultProxy) pick() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rng.Float64() >= p.rate {
		return 0
	}
	return 1 + p.rng.IntN(3)
}

// SetRate changes the share of requests that fail from now on (e.g. 0 while
// a test seeds its data, then the rate under test).
func (p *FaultProxy) SetRate(rate float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate = rate
}

// Injected is how many requests were failed; Served how many arrived.
func (p *FaultProxy) Injected() int64 { return p.injected.Load() }

// Served is how many requests arrived at the proxy.
func (p *FaultProxy) Served() int64 { return p.served.Load() }

// Close stops the proxy.
func (p *FaultProxy) Close() { p.srv.Close() }

func storageError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-ms-error-code", code)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`<?xml version="1.0" encoding="utf-8"?><Error><Code>` + code + `</Code><Message>` + msg + `</Message></Error>`))
}
