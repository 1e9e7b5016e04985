package httpclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/converge"
)

// Retry is the policy of the retrying layer: the one place where Brickferry
// rides out transient HTTP failures (a throttled or briefly unavailable
// Databricks front end, a dropped connection) for clients that have no retry
// policy of their own.
//
// Any request is sent again after 429 (the server refused it before doing
// anything, RFC 6585) and 503 (Databricks' TEMPORARILY_UNAVAILABLE, which
// databricks-sdk-go also retries for every method). After 408, 500, 502, 504
// or a failure to get any answer (connection refused, reset or closed; not a
// certificate or name error), the server may have done the work, so only a
// request that repeating cannot do twice is sent again: GET, HEAD, OPTIONS,
// PUT and DELETE, and a POST or PATCH that the caller marks as safe
// (Idempotent, or a context from WithIdempotent): e.g. a Databricks
// runs/submit carrying an idempotency_token, a transition-stage, a set-tag.
// Nothing is sent again once the pipeline has cancelled the task
// (agent.Cancelled), also for cleanup calls made after that.
// A caller whose POST is not idempotent must make its own step convergent
// (look for what the first try may have made before making it again). Waits grow exponentially with full jitter
// (BaseDelay·2^n, at most MaxDelay); a Retry-After header (seconds or an
// HTTP date) replaces the computed wait, up to MaxRetryAfter. The total time
// spent waiting is bounded by Budget, and the attempts by MaxAttempts: when
// either is spent, the last answer (or error) is returned as it is.
//
// Clients built on azcore (Key Vault, Entra ID, blob storage) have their own
// retry policy, which also honours Retry-After; they get the transport
// without this layer, so that no request is retried by two layers.
type Retry struct {
	MaxAttempts   int           // every try, the first included; default 8
	Budget        time.Duration // total waiting; default 45 s (under the SDK's 60 s inactivity timeout)
	BaseDelay     time.Duration // default 250 ms
	MaxDelay      time.Duration // default 8 s
	MaxRetryAfter time.Duration // a longer Retry-After is shortened to this; default 30 s
	// Idempotent reports whether a POST or PATCH may be sent again.
	Idempotent func(*http.Request) bool
	// Sleep waits (tests record the waits); default a timer that stops
	// when ctx is done.
	Sleep func(ctx context.Context, d time.Duration) error
	// Log, when set, gets a debug line per retry (method, host, path,
	// reason, wait; never the query or a header).
	Log *agent.Log
}

type idempotentKey struct{}

// WithIdempotent marks the requests made with ctx as safe to send again.
func WithIdempotent(ctx context.Context) context.Context {
	return context.WithValue(ctx, idempotentKey{}, true)
}

func markedIdempotent(ctx context.Context) bool {
	v, _ := ctx.Value(idempotentKey{}).(bool)
	return v
}

// Retrying wraps next with the retry policy p.
func Retrying(next http.RoundTripper, p Retry) http.RoundTripper {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 8
	}
	if p.Budget <= 0 {
		p.Budget = 45 * time.Second
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 250 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 8 * time.Second
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 30 * time.Second
	}
	if p.Sleep == nil {
		p.Sleep = sleep
	}
	return &retrying{next: next, p: p}
}

type retrying struct {
	next http.RoundTripper
	p    Retry
	mu   sync.Mutex
	rnd  *rand.Rand
}

// idempotent reports whether sending req twice has the effect of sending it once.
func (t *retrying) idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return markedIdempotent(req.Context()) || (t.p.Idempotent != nil && t.p.Idempotent(req))
}

func (t *retrying) RoundTrip(req *http.Request) (*http.Response, error) {
	// A body that cannot be read again cannot be sent again.
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return t.next.RoundTrip(req)
	}
	ctx := req.Context()
	idempotent := t.idempotent(req)
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 {
			r = req.Clone(ctx)
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				r.Body = body
			}
		}
		resp, err := t.next.RoundTrip(r)
		reason, retryAfter, ok := retryable(ctx, resp, err, idempotent)
		if !ok || attempt >= t.p.MaxAttempts {
			return resp, err
		}
		wait := t.backoff(attempt)
		if retryAfter > 0 {
			wait = min(retryAfter, t.p.MaxRetryAfter)
		}
		if waited+wait > t.p.Budget {
			return resp, err
		}
		if resp != nil {
			// Read a little so the connection can be reused, then let it go.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
		}
		if t.p.Log != nil {
			t.p.Log.Debug("HTTP %s %s://%s%s: %s, attempt %d of %d, retrying in %s", req.Method, req.URL.Scheme, req.URL.Host, req.URL.EscapedPath(), reason, attempt, t.p.MaxAttempts, wait.Round(time.Millisecond))
		}
		if err := t.p.Sleep(ctx, wait); err != nil {
			return nil, err
		}
		waited += wait
	}
}

// backoff is the full-jitter exponential wait before attempt n+1.
func (t *retrying) backoff(n int) time.Duration {
	ceiling := t.p.BaseDelay << min(n-1, 20)
	if ceiling > t.p.MaxDelay || ceiling <= 0 {
		ceiling = t.p.MaxDelay
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rnd == nil {
		t.rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	// At least a tenth of the ceiling, so a burst of retries spreads out.
	return ceiling/10 + time.Duration(t.rnd.Int64N(int64(ceiling-ceiling/10)+1))
}

// retryable says whether an answer (or a failure to get one) is transient,
// why, and the wait the server asked for.
func retryable(ctx context.Context, resp *http.Response, err error, idempotent bool) (reason string, retryAfter time.Duration, ok bool) {
	// Once the pipeline has cancelled the task, cleanup calls get one try
	// each: they share a deadline of a few seconds (agent.Cleanup).
	if agent.Cancelled(ctx) {
		return "", 0, false
	}
	if err != nil {
		if !idempotent {
			return "", 0, false
		}
		var unknownCA x509.UnknownAuthorityError
		var hostname x509.HostnameError
		var invalid x509.CertificateInvalidError
		var verify *tls.CertificateVerificationError
		var header tls.RecordHeaderError
		var alert tls.AlertError // e.g. the server requires a client certificate
		var dns *net.DNSError
		switch {
		case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid),
			errors.As(err, &verify), errors.As(err, &header), errors.As(err, &alert):
			return "", 0, false
		case errors.As(err, &dns) && dns.IsNotFound:
			return "", 0, false
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return "", 0, false
		}
		return "no answer (" + err.Error() + ")", 0, true
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return resp.Status, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), true
	case http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		if idempotent {
			return resp.Status, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), true
		}
	}
	return "", 0, false
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date
// (RFC 9110 section 10.2.3). Zero when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		if d := at.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	if err := (converge.RealClock{}).Sleep(ctx, d); err != nil {
		return fmt.Errorf("waiting to retry: %w", err)
	}
	return nil
}
