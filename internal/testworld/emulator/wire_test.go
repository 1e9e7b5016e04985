package emulator_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

func TestStrictDecodingAndErrorShape(t *testing.T) {
	ws, _ := start(t, emulator.Options{})
	cl := sdk(t, ws)
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
