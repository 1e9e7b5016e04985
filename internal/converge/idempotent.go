package converge

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// Idempotent reports whether a POST or PATCH to Databricks may be sent again
// after an ambiguous failure (no answer, 500, 502, 504): it has the same
// effect when sent twice (the second one sets what the first set, or only
// reads). The retrying transport asks it (httpclient.Retry.Idempotent, wired
// by auth).
func Idempotent(req *http.Request) bool {
	path := req.URL.Path
	if req.Method == http.MethodPatch {
		// A serving endpoint's tags: add_tags sets each key to its value,
		// delete_tags removes keys; sent twice, the endpoint has the same
		// tags (databricks-sdk-go v0.81.0 serving.PatchServingEndpointTags).
		// A logged model's status (finalize) or tags: set to the values
		// sent (ml.FinalizeLoggedModel, ml.SetLoggedModelTags).
		return (strings.HasPrefix(path, "/api/2.0/serving-endpoints/") && strings.HasSuffix(path, "/tags")) ||
			strings.HasPrefix(path, "/api/2.0/mlflow/logged-models/")
	}
	switch {
	case idempotentPOST(path):
		return true
	case strings.HasPrefix(path, "/api/2.0/mlflow/logged-models/"):
		return readOnlyLoggedModel(strings.TrimPrefix(path, "/api/2.0/mlflow/logged-models/"))
	case strings.HasSuffix(path, "/jobs/runs/submit"), strings.HasSuffix(path, "/jobs/run-now"):
		// Databricks answers a repeated token with the run the first
		// request started.
		var body struct {
			Token string `json:"idempotency_token"`
		}
		return readJSON(req, &body) && body.Token != ""
	case path == "/api/2.0/workspace/import":
		var body struct {
			Overwrite bool `json:"overwrite"`
		}
		return readJSON(req, &body) && body.Overwrite
	case path == "/api/2.0/sql/statements/" || path == "/api/2.0/sql/statements":
		var body struct {
			Statement string `json:"statement"`
		}
		if !readJSON(req, &body) {
			return false
		}
		word, _, _ := strings.Cut(strings.TrimSpace(body.Statement), " ")
		switch strings.ToUpper(word) {
		case "SELECT", "DESCRIBE", "SHOW":
			return true
		}
	}
	return false
}

// idempotentPOST reports the Databricks POST routes that have the same
// effect when sent twice (the second one sets what the first set, or reads).
func idempotentPOST(path string) bool {
	switch path {
	case "/api/2.2/jobs/runs/cancel",
		"/api/2.1/jobs/runs/cancel",
		"/api/2.2/jobs/reset",
		"/api/2.1/jobs/reset",
		"/api/2.2/jobs/update",
		"/api/2.1/jobs/update",

		"/api/2.0/mlflow/databricks/model-versions/transition-stage",
		"/api/2.0/mlflow/model-versions/set-tag",
		"/api/2.0/mlflow/registered-models/set-tag",
		"/api/2.0/mlflow/registered-models/get-latest-versions",
		"/api/2.0/mlflow/registered-models/alias",
		"/api/2.0/mlflow/runs/set-tag",
		"/api/2.0/mlflow/runs/log-batch",
		"/api/2.0/mlflow/runs/log-parameter",
		"/api/2.0/mlflow/runs/update",
		"/api/2.0/mlflow/runs/search",
		"/api/2.0/mlflow/artifacts/credentials-for-read",
		"/api/2.0/mlflow/artifacts/credentials-for-write",
		"/api/2.0/mlflow/unity-catalog/model-versions/generate-temporary-credentials",
		"/api/2.0/mlflow/unity-catalog/model-versions/set-tag",
		"/api/2.0/workspace/mkdirs",
		"/api/2.0/dbfs/mkdirs",
		"/oidc/v1/token":
		return true
	}
	return false
}

// readOnlyLoggedModel reports the logged-model POSTs (rest is the path after
// /api/2.0/mlflow/logged-models/) that only read: the search and the signed
// URLs. Creating a logged model is not among them: its callers converge.
func readOnlyLoggedModel(rest string) bool {
	return rest == "search" || strings.HasSuffix(rest, "/artifacts/credentials-for-download") || strings.HasSuffix(rest, "/artifacts/credentials-for-upload")
}

// readJSON decodes a copy of req's body (GetBody), leaving req untouched.
func readJSON(req *http.Request, v any) bool {
	if req.GetBody == nil {
		return false
	}
	body, err := req.GetBody()
	if err != nil {
		return false
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, 4<<20))
	if err != nil {
		return false
	}
	return json.Unmarshal(data, v) == nil
}
