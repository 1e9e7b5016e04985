package auth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"

	"github.com/brickferry/brickferry/internal/httpclient"
)

// retryPolicy is how the Databricks client, the OAuth token request and the
// Azure DevOps client ride out transient failures: one retrying layer in the
// transport (httpclient.Retry), with databricks-sdk-go's own retries turned
// down (Config.RetryTimeoutSeconds, see resolve) so that no request is
// retried by two layers.
func retryPolicy() *httpclient.Retry {
	return &httpclient.Retry{Idempotent: databricksIdempotent}
}

// sdkRetryTimeoutSeconds bounds databricks-sdk-go's own retry loop
// (httpclient.ApiClient.perform, v0.81.0). Its first wait is at least 1 s
// (retries.backoff), so a 1 s budget means it never sends a request twice:
// the transport below it has already retried what was safe to retry.
const sdkRetryTimeoutSeconds = 1

// sdkHTTPTimeoutSeconds is the SDK's inactivity timeout; it must outlast the
// transport's retry budget (httpclient.Retry.Budget, 45 s), during which no
// byte moves.
const sdkHTTPTimeoutSeconds = 90

// idempotentPOST are Databricks POST routes that have the same effect when
// sent twice (the second one sets what the first set, or reads).
var idempotentPOST = map[string]bool{
	"/api/2.2/jobs/runs/cancel": true,
	"/api/2.1/jobs/runs/cancel": true,
	"/api/2.2/jobs/reset":       true,
	"/api/2.1/jobs/reset":       true,
	"/api/2.2/jobs/update":      true,
	"/api/2.1/jobs/update":      true,

	"/api/2.0/mlflow/databricks/model-versions/transition-stage":                  true,
	"/api/2.0/mlflow/model-versions/set-tag":                                      true,
	"/api/2.0/mlflow/registered-models/set-tag":                                   true,
	"/api/2.0/mlflow/registered-models/get-latest-versions":                       true,
	"/api/2.0/mlflow/registered-models/alias":                                     true,
	"/api/2.0/mlflow/runs/set-tag":                                                true,
	"/api/2.0/mlflow/runs/log-batch":                                              true,
	"/api/2.0/mlflow/runs/log-parameter":                                          true,
	"/api/2.0/mlflow/runs/update":                                                 true,
	"/api/2.0/mlflow/runs/search":                                                 true,
	"/api/2.0/mlflow/artifacts/credentials-for-read":                              true,
	"/api/2.0/mlflow/artifacts/credentials-for-write":                             true,
	"/api/2.0/mlflow/unity-catalog/model-versions/generate-temporary-credentials": true,
	"/api/2.0/mlflow/unity-catalog/model-versions/set-tag":                        true,
	"/api/2.0/workspace/mkdirs":                                                   true,
	"/api/2.0/dbfs/mkdirs":                                                        true,
	"/oidc/v1/token":                                                              true,
}

// databricksIdempotent reports whether a POST to Databricks may be sent
// again after an ambiguous failure (no answer, 500, 502, 504).
func databricksIdempotent(req *http.Request) bool {
	path := req.URL.Path
	switch {
	case idempotentPOST[path]:
		return true
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

// ConvergeTries bounds how many times a task sends a request that is not
// idempotent after ambiguous failures (looking for its effect in between).
const ConvergeTries = 5

// Ambiguous reports whether a failed Databricks request may nonetheless have
// been carried out: no answer came (the connection dropped after the request
// was sent), or the answer was a server error (500, 502, 504) after the
// transport's retries. A task whose request is not idempotent (create a model
// version, a job, an endpoint) looks for what the request may have made
// before making it again.
func Ambiguous(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ae *apierr.APIError
	if errors.As(err, &ae) {
		return ae.StatusCode >= 500 || ae.StatusCode == http.StatusRequestTimeout
	}
	return true
}

// Converge makes a request that is not idempotent (create an experiment, a
// run, a model version) safe to repeat. It calls create; after an ambiguous
// failure it asks find whether the request was carried out after all, and
// only if not calls create again, at most ConvergeTries times in all.
func Converge[T any](ctx context.Context, find func(context.Context) (T, bool, error), create func(context.Context) (T, error)) (T, error) {
	out, err := create(ctx)
	for try := 2; Ambiguous(err) && try <= ConvergeTries; try++ {
		got, found, ferr := find(ctx)
		if ferr == nil && found {
			return got, nil
		}
		out, err = create(ctx)
	}
	return out, err
}

// CreateOnce makes a create request that Databricks refuses the second time
// with RESOURCE_ALREADY_EXISTS (a registered model, an experiment): after an
// ambiguous failure it asks again, and an "already exists" answer means the
// object exists, whoever made it. created reports whether this call made it
// (false when it is unknown: the object may be ours from a lost answer).
func CreateOnce(ctx context.Context, create func(context.Context) error) (created bool, err error) {
	err = create(ctx)
	for try := 2; Ambiguous(err) && try <= ConvergeTries; try++ {
		err = create(ctx)
	}
	if errors.Is(err, apierr.ErrResourceAlreadyExists) {
		return false, nil
	}
	return err == nil, err
}
