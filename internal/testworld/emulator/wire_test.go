package emulator_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

func TestStrictDecodingAndErrorShape(t *testing.T) {
	ws, _ := start(t, emulator.Options{})
	cl := ws.Client(t)
	c := ctx(t)
	cases := []struct {
		name   string
		method string
		path   string
		query  map[string]any
		body   any
		want   error
	}{
		{"unknown top-level field", http.MethodPost, "/api/2.2/jobs/create", nil, map[string]any{"name": "x", "bogus": 1}, apierr.ErrInvalidParameterValue},
		{"unknown nested field", http.MethodPost, "/api/2.2/jobs/create", nil, map[string]any{"name": "x", "tasks": []any{map[string]any{"task_key": "a", "notebook_task": map[string]any{"notebook_path": "/x", "extra": true}}}}, apierr.ErrInvalidParameterValue},
		{"Jobs 2.0 single-task shape", http.MethodPost, "/api/2.2/jobs/create", nil, map[string]any{"name": "x", "notebook_task": map[string]any{"notebook_path": "/x"}}, apierr.ErrInvalidParameterValue},
		{"wrong type", http.MethodPost, "/api/2.2/jobs/create", nil, map[string]any{"name": 5}, apierr.ErrInvalidParameterValue},
		{"bad enum", http.MethodPost, "/api/2.2/jobs/create", nil, map[string]any{"name": "x", "format": "SINGLE"}, apierr.ErrInvalidParameterValue},
		{"unknown query parameter", http.MethodGet, "/api/2.2/jobs/get", map[string]any{"job_id": 1, "bogus": "y"}, nil, apierr.ErrInvalidParameterValue},
		{"wrongly typed query parameter", http.MethodGet, "/api/2.2/jobs/runs/get", map[string]any{"run_id": "abc"}, nil, apierr.ErrInvalidParameterValue},
		{"unknown route", http.MethodGet, "/api/2.0/nope", nil, nil, apierr.ErrNotFound},
		{"wrong method", http.MethodDelete, "/api/2.2/jobs/create", nil, nil, apierr.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := cl.Do(c, tc.method, tc.path, nil, tc.query, tc.body, nil)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.want)
		})
	}
	var apiErr *apierr.APIError
	err := cl.Do(c, http.MethodGet, "/api/2.0/nope", nil, nil, nil, nil)
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "ENDPOINT_NOT_FOUND", apiErr.ErrorCode)
	assert.Equal(t, http.StatusNotFound, apiErr.StatusCode)

	// Rejected requests change nothing; accepted ones are recorded decoded.
	all, err := jobs.NewJobs(cl).ListAll(c, jobs.ListJobsRequest{})
	require.NoError(t, err)
	assert.Empty(t, all)
	_, err = jobs.NewJobs(cl).Create(c, jobs.CreateJob{Name: "ok"})
	require.NoError(t, err)
	recs := ws.RequestsTo(http.MethodPost, "/api/2.2/jobs/create")
	last := recs[len(recs)-1]
	require.IsType(t, &jobs.CreateJob{}, last.Body)
	assert.Equal(t, "ok", last.Body.(*jobs.CreateJob).Name)
	assert.True(t, strings.Contains(string(last.Raw), `"name":"ok"`))
	assert.Equal(t, http.StatusOK, last.Status)
	assert.Equal(t, len(cases)+1-3, ws.Writes(), "POSTs and the DELETE count as writes")
}

// statuses sends n plain GETs and returns what came back (0 = connection dropped).
func statuses(t *testing.T, ws *emulator.Workspace, n int) []int {
	t.Helper()
	// A new connection per request: net/http silently resends a GET whose
	// reused keep-alive connection was dropped, which would turn a seeded
	// drop into the next request's answer, depending on timing.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var out []int
	for range n {
		req, _ := http.NewRequest(http.MethodGet, ws.URL()+"/api/2.2/jobs/list", nil)
		req.Header.Set("Authorization", "Bearer "+ws.Token)
		resp, err := hc.Do(req)
		if err != nil {
			out = append(out, 0)
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "" {
			out = append(out, 4291)
			continue
		}
		out = append(out, resp.StatusCode)
	}
	return out
}

func TestFaultsAreSeeded(t *testing.T) {
	plan := emulator.FaultPlan{Seed: 42, Rules: []emulator.FaultRule{{
		Prefix: "/api/2.2/jobs/", Rate: 0.5,
		Kinds:   []emulator.FaultKind{emulator.Fault429, emulator.Fault429RetryAfter, emulator.Fault503, emulator.Fault500, emulator.FaultDrop, emulator.FaultLatency},
		Latency: time.Millisecond,
	}}}
	a, _ := start(t, emulator.Options{})
	b, _ := start(t, emulator.Options{})
	a.SetFaults(plan)
	b.SetFaults(plan)
	sa, sb := statuses(t, a, 60), statuses(t, b, 60)
	assert.Equal(t, sa, sb, "same seed, same requests, same faults")
	for _, want := range []int{200, 429, 4291, 503, 500, 0} {
		assert.Contains(t, sa, want)
	}
	faults := 0
	for _, r := range a.Requests() {
		if r.Fault != "" {
			faults++
		}
	}
	assert.Greater(t, faults, 15)

	plan.Seed = 43
	c, _ := start(t, emulator.Options{})
	c.SetFaults(plan)
	assert.NotEqual(t, sa, statuses(t, c, 60), "another seed, another schedule")

	a.SetFaults(emulator.FaultPlan{})
	for _, s := range statuses(t, a, 5) {
		assert.Equal(t, 200, s)
	}
}

func TestSDKRetriesInjected429And503(t *testing.T) {
	ws, _ := start(t, emulator.Options{})
	ws.SetFaults(emulator.FaultPlan{Seed: 1, Rules: []emulator.FaultRule{
		{Prefix: "/api/2.2/jobs/create", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault429}, Limit: 1},
		{Prefix: "/api/2.2/jobs/get", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault503}, Limit: 1},
	}})
	api := jobs.NewJobs(ws.Client(t))
	created, err := api.Create(ctx(t), jobs.CreateJob{Name: "retried"})
	require.NoError(t, err)
	_, err = api.GetByJobId(ctx(t), created.JobId)
	require.NoError(t, err)
	assert.Len(t, ws.RequestsTo(http.MethodPost, "/api/2.2/jobs/create"), 2, "one 429, then the retry")
	all, err := api.ListAll(ctx(t), jobs.ListJobsRequest{})
	require.NoError(t, err)
	assert.Len(t, all, 1, "the rejected attempt created nothing")
}

func TestFault500AfterCommitCarriesTheRequestOut(t *testing.T) {
	ws, _ := start(t, emulator.Options{})
	ws.SetFaults(emulator.FaultPlan{Seed: 1, Rules: []emulator.FaultRule{
		{Prefix: "/api/2.2/jobs/create", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault500AfterCommit}, Limit: 1},
	}})
	api := jobs.NewJobs(ws.Client(t))
	_, err := api.Create(ctx(t), jobs.CreateJob{Name: "made"})
	var ae *apierr.APIError
	require.ErrorAs(t, err, &ae, "the client sees a failure")
	assert.Equal(t, http.StatusInternalServerError, ae.StatusCode)
	all, err := api.ListAll(ctx(t), jobs.ListJobsRequest{})
	require.NoError(t, err)
	require.Len(t, all, 1, "the job was created all the same")
	assert.Equal(t, "made", all[0].Settings.Name)
	reqs := ws.RequestsTo(http.MethodPost, "/api/2.2/jobs/create")
	require.Len(t, reqs, 1)
	assert.Equal(t, emulator.Fault500AfterCommit, reqs[0].Fault)
	assert.Equal(t, http.StatusInternalServerError, reqs[0].Status)
}

func TestFaultDropAfterCommitCarriesTheRequestOutAndResetsTheConnection(t *testing.T) {
	ws, _ := start(t, emulator.Options{})
	ws.SetFaults(emulator.FaultPlan{Seed: 1, Rules: []emulator.FaultRule{
		{Path: "/api/2.2/jobs/create", Method: http.MethodPost, Rate: 1, Kinds: []emulator.FaultKind{emulator.FaultDropAfterCommit}, Limit: 1},
	}})
	// A plain client: the SDK's own loop would send the POST again after a
	// reset, which is what this fault exists to catch in the product.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequest(http.MethodPost, ws.URL()+"/api/2.2/jobs/create", strings.NewReader(`{"name":"made"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+ws.Token)
	resp, err := hc.Do(req)
	if err == nil {
		_ = resp.Body.Close()
	}
	require.Error(t, err, "no answer reaches the client")
	assert.Contains(t, err.Error(), "connection reset by peer")

	all, err := jobs.NewJobs(ws.Client(t)).ListAll(ctx(t), jobs.ListJobsRequest{})
	require.NoError(t, err)
	require.Len(t, all, 1, "the job was created all the same")
	assert.Equal(t, "made", all[0].Settings.Name)
	reqs := ws.RequestsTo(http.MethodPost, "/api/2.2/jobs/create")
	require.Len(t, reqs, 1)
	assert.Equal(t, emulator.FaultDropAfterCommit, reqs[0].Fault)
	assert.Zero(t, reqs[0].Status, "recorded as dropped")
	assert.Equal(t, http.StatusOK, reqs[0].Committed, "recorded as carried out")
}

func TestFaultRulePastItsLimitLetsTheNextRuleDecide(t *testing.T) {
	ws, _ := start(t, emulator.Options{})
	ws.SetFaults(emulator.FaultPlan{Seed: 1, Rules: []emulator.FaultRule{
		// Path is exact: jobs/list is not jobs/list-something, and a
		// Prefix of jobs/ would match every route below.
		{Path: "/api/2.2/jobs/list", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault500}, Limit: 2},
		{Prefix: "/api/2.2/jobs/", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault503}},
	}})
	assert.Equal(t, []int{500, 500, 503, 503}, statuses(t, ws, 4))
}
