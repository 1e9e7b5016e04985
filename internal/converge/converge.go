// Package converge is the one home of "repeat safely" and "wait": what
// decides whether a Databricks request may be sent again (Idempotent, used by
// the retrying transport that auth wires in), how a step whose request is not
// idempotent converges after an answer that got lost (Ambiguous, Converge,
// CreateOnce), and how a step waits for a remote state (Poll) on a Clock that
// tests replace with a simulated one.
//
// There are three layers, and no request is repeated by two of them:
//
//   - the transport (httpclient.Retry) sends again what is safe to send again
//     (Idempotent) after 429, 503, 5xx or a dropped connection;
//   - databricks-sdk-go's own retry loop is turned down to one try (auth sets
//     Config.RetryTimeoutSeconds to 1 s);
//   - a task step whose request is not idempotent (create a model version, a
//     job, an endpoint) goes through Converge or CreateOnce, which look for
//     the effect of an ambiguous failure before sending the request again.
//
// Waiting for a state (a version READY, an endpoint updated, a statement
// done) goes through Poll; waiting for a job run goes through package
// runwait, which also cancels the remote run. Both take a Clock.
package converge

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/databricks/databricks-sdk-go/apierr"
)

// Tries bounds how many times a task sends a request that is not
// idempotent after ambiguous failures (looking for its effect in between).
const Tries = 5

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
// run, a model version, a job, a serving endpoint) safe to repeat. It calls
// create; after an ambiguous failure it asks find whether the request was
// carried out after all, and only when find answers "not found" calls create
// again, at most Tries times in all. When find finds the effect, Converge
// returns find's value with a nil error. When find itself fails (after the
// transport's own retries), nobody can tell whether the object exists, so
// Converge stops with both errors rather than risk making it twice.
func Converge[T any](ctx context.Context, find func(context.Context) (T, bool, error), create func(context.Context) (T, error)) (T, error) {
	out, err := create(ctx)
	for try := 2; Ambiguous(err) && try <= Tries; try++ {
		got, found, ferr := find(ctx)
		switch {
		case ferr != nil:
			var zero T
			return zero, fmt.Errorf("the create got no clear answer (%w) and looking for what it made failed too (%w); rerun the step, which looks again first", err, ferr)
		case found:
			return got, nil
		}
		out, err = create(ctx)
	}
	return out, err
}

// CreateOnce makes a create request that Databricks refuses the second time
// with an "already exists" answer (a registered model, an experiment): after
// an ambiguous failure it asks again, and "already exists" means the object
// exists, whoever made it. created reports whether this call made it (false
// when it is unknown: the object may be ours from a lost answer).
//
// "Already exists" is either code (alreadyExists): the workspace APIs answer
// 400 RESOURCE_ALREADY_EXISTS, Unity Catalog 409 ALREADY_EXISTS (MLflow's
// register_model accepts both for the same reason, mlflow/mlflow PR 8219).
func CreateOnce(ctx context.Context, create func(context.Context) error) (created bool, err error) {
	err = create(ctx)
	for try := 2; Ambiguous(err) && try <= Tries; try++ {
		err = create(ctx)
	}
	if alreadyExists(err) {
		return false, nil
	}
	return err == nil, err
}

// alreadyExists reports a refusal because the object exists: error code
// RESOURCE_ALREADY_EXISTS (workspace APIs, 400) or ALREADY_EXISTS (Unity
// Catalog, 409). Not any 409: ABORTED and RESOURCE_CONFLICT are conflicts
// of another kind (databricks-sdk-go apierr/error_mapping.go).
func alreadyExists(err error) bool {
	return errors.Is(err, apierr.ErrResourceAlreadyExists) || errors.Is(err, apierr.ErrAlreadyExists)
}
