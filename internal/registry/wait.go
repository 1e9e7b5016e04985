package registry

import (
	"context"
	"fmt"
	"strconv"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/modeluri"
)

// RegistrationError is a version that ended FAILED_REGISTRATION; Message is
// the registry's status message, neutralised for the log.
type RegistrationError struct {
	Model   string
	Version int
	Host    string
	Message string
}

func (e *RegistrationError) Error() string {
	return fmt.Sprintf("version %d of %s failed registration in %s: %s", e.Version, e.Model, e.Host, e.Message)
}

// status reads version n with one request (no aliases, no check of the
// model): what a poll needs.
func (r *Registry) status(ctx context.Context, name modeluri.Name, n int) (Version, error) {
	if name.UC() {
		mv, err := r.UCVersions.Get(ctx, catalog.GetModelVersionRequest{FullName: name.Full, Version: n})
		if err != nil {
			if NotFound(err) {
				return Version{}, fmt.Errorf("version %d of %s not found in Unity Catalog of workspace %s", n, name.Full, r.Host)
			}
			return Version{}, fmt.Errorf("reading version %d of %s: %w", n, name.Full, err)
		}
		v := FromUC(*mv)
		v.Location = mv.StorageLocation
		return v, nil
	}
	resp, err := r.Models.GetModelVersion(ctx, ml.GetModelVersionRequest{Name: name.Full, Version: strconv.Itoa(n)})
	if err != nil {
		return Version{}, fmt.Errorf("reading version %d of %s: %w", n, name.Full, err)
	}
	return FromRegistry(*resp.ModelVersion), nil
}

// WaitReady polls version n (one GET each time) on clock as schedule says
// until it is READY, and returns the last state read, also with an error:
// a *RegistrationError for FAILED_REGISTRATION, converge.ErrTimeout when
// the schedule's timeout ran out, the read's error, or, when ctx was done
// during a pause, an error that wraps ctx's and names the last status.
// onPoll (may be nil) sees every state that is not final.
func (r *Registry) WaitReady(ctx context.Context, clock converge.Clock, name modeluri.Name, n int, schedule converge.Schedule, onPoll func(Version)) (Version, error) {
	var (
		last    Version
		readErr error // check's own failure, told apart from a cancelled pause
	)
	err := converge.Poll(ctx, clock, schedule, func(ctx context.Context) (bool, error) {
		v, err := r.status(ctx, name, n)
		if err != nil {
			readErr = err
			return false, err
		}
		last = v
		switch v.Status {
		case string(ml.ModelVersionStatusReady):
			return true, nil
		case string(ml.ModelVersionStatusFailedRegistration):
			return false, &RegistrationError{Model: name.Full, Version: n, Host: r.Host, Message: agent.Neutralize(v.Message)}
		}
		if onPoll != nil {
			onPoll(v)
		}
		return false, nil
	})
	if err != nil && readErr == nil && ctx.Err() != nil {
		return last, fmt.Errorf("waiting for version %d of %s to be READY (now %s): %w", n, name.Full, last.Status, ctx.Err())
	}
	return last, err
}
