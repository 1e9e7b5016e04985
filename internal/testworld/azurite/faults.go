package azurite

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
)

// Fault is a failure FaultProxy injects, the way Azure Storage fails under
// load. The texts are those of Azure Storage's common REST API error codes
// (https://learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes).
type Fault string

const (
	// FaultServerBusy answers 503 ServerBusy ("The server is currently
	// unable to receive requests. Please retry your request.") without
	// forwarding the request.
	FaultServerBusy Fault = "503"
	// FaultInternalError answers 500 InternalError ("The server encountered
	// an internal error. Please retry the request.") without forwarding the
	// request.
	FaultInternalError Fault = "500"
	// FaultDrop closes the connection (TCP RST) without forwarding the
	// request.
	FaultDrop Fault = "drop"
	// Fault500AfterCommit forwards a write to the blob service, which
	// carries it out, and then answers 500 OperationTimedOut in place of
	// the service's answer: the code Azure Storage answers when its server
	// timeout elapsed, documented as "The operation may or may not have
	// succeeded on the server side. Please query the server state before
	// retrying the operation." (common REST API error codes; the server
	// timeouts are in "Setting timeouts for Blob service operations",
	// https://learn.microsoft.com/rest/api/storageservices/setting-timeouts-for-blob-service-operations).
	// azcore's retry policy, which the azblob clients use, sends the write
	// again after a 500 (policy.RetryOptions.StatusCodes defaults to 408,
	// 429, 500, 502, 503, 504), so a client must write blobs in a way that a
	// second identical write leaves the same blob (Put Blob replaces the
	// blob; Put Block with the same id replaces the uncommitted block; Put
	// Block List with "Latest" ids finds the blocks it already committed).
	Fault500AfterCommit Fault = "500-after-commit"
	// FaultDropAfterCommit forwards a write to the blob service, which
	// carries it out, and then resets the connection (TCP RST) without an
	// answer: the service finished the write but the answer was lost on the
	// way (a proxy or load balancer timeout). azcore sends the request
	// again after a transport error as well.
	FaultDropAfterCommit Fault = "drop-after-commit"
)

// AfterCommit reports whether f fails a request after the service carried
// it out. Only writes get such faults.
func (f Fault) AfterCommit() bool {
	return f == Fault500AfterCommit || f == FaultDropAfterCommit
}

// FaultPlan is a seeded, reproducible fault schedule for FaultProxy.
type FaultPlan struct {
	Seed uint64
	// Rate is the share of requests that fail, each with one of Kinds
	// chosen uniformly; a read (GET, HEAD) draws only among the kinds that
	// fail before the service (an after-commit fault needs a write).
	Rate float64
	// Kinds defaults to FaultServerBusy, FaultInternalError and FaultDrop.
	Kinds []Fault
	// Writes fails writes by arrival order, beside Rate: Writes[n] is the
	// fault of the n-th write (PUT, POST, PATCH, DELETE; counted from 1).
	Writes map[int]Fault
}

// Request is one request the proxy received.
type Request struct {
	Method string
	Path   string // URL path: /account/container/blob
	Comp   string // the comp query parameter (block, blocklist, list, ...), "" for Put Blob and Get Blob
	// Status is the status answered (0 when the connection was dropped).
	Status int
	// Fault is the injected fault, if any.
	Fault Fault
	// Committed is, for an after-commit fault, the status the blob service
	// answered before that answer was lost.
	Committed int
}

// IsWrite reports whether the request may change the store.
func (r Request) IsWrite() bool { return isWrite(r.Method) }

func isWrite(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// FaultProxy is a reverse proxy in front of a blob service that fails a
// seeded share of requests the way Azure Storage does under load (see
// Fault): before the service sees the request, or, for writes, after the
// service carried it out. Give clients its Endpoint
// (emulator.BlobAccount.ClientEndpoint) in place of the service's.
type FaultProxy struct {
	// Endpoint is the proxy's blob service URL, with the account path.
	Endpoint string

	srv      *httptest.Server
	rp       *httputil.ReverseProxy
	mu       sync.Mutex // guards rng, plan, writes, log
	rng      *rand.Rand
	plan     FaultPlan
	writes   int
	log      []Request
	injected atomic.Int64
	served   atomic.Int64
}

// NewFaultProxy proxies blobEndpoint (e.g. Server.BlobEndpoint), failing
// each request with probability rate with a fault that happens before the
// service sees it, reproducibly for a seed and an arrival order.
func NewFaultProxy(blobEndpoint string, seed uint64, rate float64) (*FaultProxy, error) {
	return NewFaultProxyPlan(blobEndpoint, FaultPlan{Seed: seed, Rate: rate})
}

// NewFaultProxyPlan proxies blobEndpoint with the fault schedule plan.
func NewFaultProxyPlan(blobEndpoint string, plan FaultPlan) (*FaultProxy, error) {
	target, err := url.Parse(blobEndpoint)
	if err != nil {
		return nil, err
	}
	if len(plan.Kinds) == 0 {
		plan.Kinds = []Fault{FaultServerBusy, FaultInternalError, FaultDrop}
	}
	p := &FaultProxy{rng: rand.New(rand.NewPCG(plan.Seed, plan.Seed^0x5bd1e995)), plan: plan}
	p.rp = httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	// The status the service answered goes to the request's record.
	p.rp.ModifyResponse = func(resp *http.Response) error {
		if rec, ok := resp.Request.Context().Value(recordKey{}).(*Request); ok {
			rec.Status = resp.StatusCode
		}
		return nil
	}
	p.rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, _ error) {
		if rec, ok := r.Context().Value(recordKey{}).(*Request); ok {
			rec.Status = http.StatusBadGateway
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	u, _ := url.Parse(p.srv.URL)
	u.Path = target.Path
	p.Endpoint = u.String()
	return p, nil
}

type recordKey struct{}

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.served.Add(1)
	rec := &Request{Method: r.Method, Path: r.URL.Path, Comp: r.URL.Query().Get("comp"), Fault: p.pick(r.Method)}
	defer func() {
		p.mu.Lock()
		p.log = append(p.log, *rec)
		p.mu.Unlock()
	}()
	r = r.WithContext(context.WithValue(r.Context(), recordKey{}, rec))
	if rec.Fault != "" {
		p.injected.Add(1)
	}
	switch rec.Fault {
	case FaultServerBusy:
		rec.Status = http.StatusServiceUnavailable
		storageError(w, rec.Status, "ServerBusy", "The server is currently unable to receive requests. Please retry your request.")
	case FaultInternalError:
		rec.Status = http.StatusInternalServerError
		storageError(w, rec.Status, "InternalError", "The server encountered an internal error. Please retry the request.")
	case FaultDrop:
		reset(w)
	case Fault500AfterCommit, FaultDropAfterCommit:
		// The service carries the write out; its answer is lost.
		p.rp.ServeHTTP(httptest.NewRecorder(), r)
		rec.Committed, rec.Status = rec.Status, 0
		if rec.Fault == FaultDropAfterCommit {
			reset(w)
			return
		}
		rec.Status = http.StatusInternalServerError
		storageError(w, rec.Status, "OperationTimedOut", "The operation could not be completed within the permitted time. The operation may or may not have succeeded on the server side. Please query the server state before retrying the operation.")
	default:
		p.rp.ServeHTTP(w, r)
	}
}

// pick decides, in arrival order, whether a request fails and how.
func (p *FaultProxy) pick(method string) Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	write := isWrite(method)
	if write {
		p.writes++
		if f, ok := p.plan.Writes[p.writes]; ok {
			return f
		}
	}
	if p.rng.Float64() >= p.plan.Rate {
		return ""
	}
	kinds := p.plan.Kinds
	if !write {
		kinds = nil
		for _, k := range p.plan.Kinds {
			if !k.AfterCommit() {
				kinds = append(kinds, k)
			}
		}
		if len(kinds) == 0 {
			return ""
		}
	}
	return kinds[p.rng.IntN(len(kinds))]
}

// SetRate changes the share of requests that fail from now on (e.g. 0 while
// a test seeds its data, then the rate under test).
func (p *FaultProxy) SetRate(rate float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plan.Rate = rate
}

// Injected is how many requests were failed; Served how many arrived.
func (p *FaultProxy) Injected() int64 { return p.injected.Load() }

// Served is how many requests arrived at the proxy.
func (p *FaultProxy) Served() int64 { return p.served.Load() }

// Requests returns a copy of every request answered so far, in the order
// their answers ended.
func (p *FaultProxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.log...)
}

// Close stops the proxy.
func (p *FaultProxy) Close() { p.srv.Close() }

// reset closes the connection of w with a TCP RST and no answer.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func storageError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-ms-error-code", code)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`<?xml version="1.0" encoding="utf-8"?><Error><Code>` + code + `</Code><Message>` + msg + `</Message></Error>`))
}
