package auth

import (
	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/httpclient"
)

// retryPolicy is how the Databricks client, the OAuth token request and the
// Azure DevOps client ride out transient failures: one retrying layer in the
// transport (httpclient.Retry), with databricks-sdk-go's own retries turned
// down (Config.RetryTimeoutSeconds, see resolve) so that no request is
// retried by two layers. Which POSTs may be sent again is converge's
// decision (converge.Idempotent); a task step whose request is not
// idempotent converges itself (converge.Converge, converge.CreateOnce).
func retryPolicy() *httpclient.Retry {
	return &httpclient.Retry{Idempotent: converge.Idempotent}
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
