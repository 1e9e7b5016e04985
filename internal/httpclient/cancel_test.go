package httpclient_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/httpclient"
)

// TestNoRetryAfterTheCancel: a cleanup call made after the pipeline's
// signal gets one try: the cleanup has a few seconds in all (agent.Cleanup).
// The same call before the signal is retried.
func TestNoRetryAfterTheCancel(t *testing.T) {
	s := &script{statuses: []int{503, 503}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, sl := client(httpclient.Retry{})

	ctx, cancel := agent.WithCancel(context.Background())
	cancel()
	cctx, stop := agent.Cleanup(ctx, nil, 30*time.Second, "cancelling a run")
	defer stop()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, srv.URL+"/api/2.2/jobs/runs/cancel", nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, 1, s.calls())
	assert.Empty(t, sl.d)

	before, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/api/2.2/jobs/runs/cancel", nil)
	require.NoError(t, err)
	resp, err = c.Do(before)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "without a cancel the 503 is retried")
	assert.Equal(t, 3, s.calls())
}
