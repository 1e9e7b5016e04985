package httpclient_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/httpclient"
)

// script answers each request with the next status (0: drop the
// connection), then 200 with the request body echoed.
type script struct {
	mu       sync.Mutex
	statuses []int
	header   http.Header
	bodies   []string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, string(body))
	var status int
	if len(s.statuses) > 0 {
		status, s.statuses = s.statuses[0], s.statuses[1:]
	} else {
		status = http.StatusOK
	}
	s.mu.Unlock()
	if status == 0 {
		conn, _, _ := w.(http.Hijacker).Hijack()
		_ = conn.Close()
		return
	}
	for k, v := range s.header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *script) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func client(p httpclient.Retry) (*http.Client, *sleeps) {
	sl := &sleeps{}
	p.Sleep = sl.sleep
	return &http.Client{Transport: httpclient.Retrying(http.DefaultTransport, p)}, sl
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	s := &script{statuses: []int{429, 503}, header: http.Header{"Retry-After": {"3"}}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, sl := client(httpclient.Retry{})
	resp, err := c.Post(srv.URL+"/api/2.0/mlflow/model-versions/create", "application/json", strings.NewReader(`{"name":"m"}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, []time.Duration{3 * time.Second, 3 * time.Second}, sl.d, "the waits are the server's Retry-After")
	assert.Equal(t, []string{`{"name":"m"}`, `{"name":"m"}`, `{"name":"m"}`}, s.bodies, "the body is sent again whole")
}

func TestRetryAfterAsDateAndCap(t *testing.T) {
	s := &script{statuses: []int{429}, header: http.Header{"Retry-After": {time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, sl := client(httpclient.Retry{MaxRetryAfter: 5 * time.Second, Budget: time.Minute})
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, []time.Duration{5 * time.Second}, sl.d)
}

func TestRetryAmbiguousFailures(t *testing.T) {
	for _, tc := range []struct {
		name       string
		method     string
		path       string
		idempotent bool
		statuses   []int
		wantCalls  int
		wantStatus int
		wantErr    bool
	}{
		{"GET after 500", "GET", "/x", false, []int{500, 502, 504}, 4, 200, false},
		{"GET after a dropped connection", "GET", "/x", false, []int{0, 0}, 3, 200, false},
		{"plain POST after 500 is not repeated", "POST", "/create", false, []int{500}, 1, 500, false},
		{"plain POST after a drop is not repeated", "POST", "/create", false, []int{0}, 1, 0, true},
		{"plain POST after 429 is repeated", "POST", "/create", false, []int{429, 429}, 3, 200, false},
		{"marked POST after 500 and a drop", "POST", "/set-tag", true, []int{500, 0}, 3, 200, false},
		{"4xx is final", "GET", "/x", false, []int{404}, 1, 404, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{statuses: tc.statuses}
			srv := httptest.NewServer(s)
			defer srv.Close()
			c, _ := client(httpclient.Retry{Idempotent: func(r *http.Request) bool { return r.URL.Path == "/set-tag" }})
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader("{}"))
			require.NoError(t, err)
			resp, err := c.Do(req)
			if tc.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, tc.wantStatus, resp.StatusCode)
			}
			assert.Equal(t, tc.wantCalls, s.calls(), "%s: requests sent (a POST not marked idempotent is never sent again after a 500 or a dropped connection: the server may have done the work)", tc.name)
		})
	}
}

func TestRetryIsBounded(t *testing.T) {
	s := &script{statuses: make([]int, 100)}
	for i := range s.statuses {
		s.statuses[i] = 503
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, sl := client(httpclient.Retry{MaxAttempts: 5})
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 503, resp.StatusCode, "the last answer is returned as it is")
	assert.Equal(t, 5, s.calls())
	var total time.Duration
	for i, d := range sl.d {
		assert.LessOrEqual(t, d, (250*time.Millisecond)<<i, "exponential ceiling")
		total += d
	}
	assert.Less(t, total, 45*time.Second)

	s2 := &script{statuses: []int{429, 429, 429}, header: http.Header{"Retry-After": {"20"}}}
	srv2 := httptest.NewServer(s2)
	defer srv2.Close()
	c2, _ := client(httpclient.Retry{Budget: 30 * time.Second})
	resp, err = c2.Get(srv2.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 429, resp.StatusCode, "a wait past the budget is not made")
	assert.Equal(t, 2, s2.calls())
}

func TestRetryStopsWhenCancelled(t *testing.T) {
	s := &script{statuses: []int{503, 503}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c := &http.Client{Transport: httpclient.Retrying(http.DefaultTransport, httpclient.Retry{
		Sleep: func(context.Context, time.Duration) error { cancel(); return context.Canceled },
	})}
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := c.Do(req)
	if resp != nil {
		resp.Body.Close()
	}
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, s.calls())
}

// TestCleanupCallsAfterACancelAreNotRetried: once the pipeline has
// cancelled the task, a cleanup call (agent.Cleanup: cancel the Databricks
// run, remove a half-made version) gets one try, even when its answer is one
// the layer otherwise retries: all cleanup shares a deadline a few seconds
// after the signal, and a retry's wait would spend it.
func TestCleanupCallsAfterACancelAreNotRetried(t *testing.T) {
	s := &script{statuses: []int{503, 503}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, sl := client(httpclient.Retry{})
	ctx, cancel := agent.WithCancel(context.Background())
	cancel() // the pipeline's SIGINT
	cctx, stop := agent.Cleanup(ctx, nil, 5*time.Second, "cancelling Databricks run 1")
	defer stop()
	req, _ := http.NewRequestWithContext(cctx, "POST", srv.URL+"/api/2.2/jobs/runs/cancel", strings.NewReader(`{"run_id":1}`))
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 503, resp.StatusCode, "the cleanup call's own answer")
	assert.Equal(t, 1, s.calls(), "a cleanup call after the cancel was sent again")
	assert.Empty(t, sl.d, "a cleanup call after the cancel waited to retry")
}

func TestWithIdempotentMarksAPost(t *testing.T) {
	s := &script{statuses: []int{500}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, _ := client(httpclient.Retry{})
	req, _ := http.NewRequestWithContext(httpclient.WithIdempotent(context.Background()), "POST", srv.URL, strings.NewReader("x"))
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, 2, s.calls())
}
