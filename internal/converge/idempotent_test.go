package converge_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/brickferry/brickferry/internal/converge"
)

func TestIdempotent(t *testing.T) {
	cases := []struct {
		name, path, body string
		want             bool
	}{
		{"transition-stage", "/api/2.0/mlflow/databricks/model-versions/transition-stage", `{}`, true},
		{"UC set-tag", "/api/2.0/mlflow/unity-catalog/model-versions/set-tag", `{}`, true},
		{"model version create", "/api/2.0/mlflow/model-versions/create", `{}`, false},
		{"UC version create", "/api/2.0/mlflow/unity-catalog/model-versions/create", `{}`, false},
		{"jobs create", "/api/2.2/jobs/create", `{}`, false},
		{"submit with a token", "/api/2.2/jobs/runs/submit", `{"idempotency_token":"t1"}`, true},
		{"submit without a token", "/api/2.2/jobs/runs/submit", `{}`, false},
		{"run-now with a token", "/api/2.1/jobs/run-now", `{"job_id":1,"idempotency_token":"t"}`, true},
		{"import with overwrite", "/api/2.0/workspace/import", `{"overwrite":true}`, true},
		{"import without overwrite", "/api/2.0/workspace/import", `{"overwrite":false}`, false},
		{"SELECT", "/api/2.0/sql/statements/", `{"statement":" select count(*) from t"}`, true},
		{"INSERT", "/api/2.0/sql/statements", `{"statement":"INSERT INTO t VALUES (1)"}`, false},
		{"unreadable body", "/api/2.2/jobs/runs/submit", `{`, false},
		{"logged model create", "/api/2.0/mlflow/logged-models", `{}`, false},
		{"logged model search", "/api/2.0/mlflow/logged-models/search", `{}`, true},
		{"logged model download URLs", "/api/2.0/mlflow/logged-models/m-1/artifacts/credentials-for-download", `{}`, true},
		{"logged model upload URLs", "/api/2.0/mlflow/logged-models/m-1/artifacts/credentials-for-upload", `{}`, true},
		{"logged model finalize", "PATCH /api/2.0/mlflow/logged-models/m-1", `{"status":"LOGGED_MODEL_READY"}`, true},
		{"logged model tags", "PATCH /api/2.0/mlflow/logged-models/m-1/tags", `{}`, true},
		{"logged model params", "/api/2.0/mlflow/logged-models/m-1/params", `{}`, false},
		{"run outputs", "/api/2.0/mlflow/runs/outputs", `{}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method, path, ok := strings.Cut(c.path, " ")
			if !ok {
				method, path = http.MethodPost, c.path
			}
			req, err := http.NewRequest(method, "https://adb-1.2.azuredatabricks.net"+path, strings.NewReader(c.body))
			assert.NoError(t, err)
			assert.Equal(t, c.want, converge.Idempotent(req))
		})
	}
}

func TestIdempotentPATCH(t *testing.T) {
	for path, want := range map[string]bool{
		"/api/2.0/serving-endpoints/churn/tags":           true, // add_tags / delete_tags set and remove
		"/api/2.0/serving-endpoints/churn/rate-limits":    false,
		"/api/2.0/permissions/serving-endpoints/abc/tags": false,
	} {
		req, err := http.NewRequest(http.MethodPatch, "https://adb-1.2.azuredatabricks.net"+path, strings.NewReader(`{"add_tags":[{"key":"team","value":"ml"}]}`))
		assert.NoError(t, err)
		assert.Equal(t, want, converge.Idempotent(req), path)
	}
}
