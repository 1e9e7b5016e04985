package serve

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/serving"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/converge"
)

// errTimedOut marks a wait that ran out of time (not a cancelled pipeline).
var errTimedOut = errors.New("timed out")

// waiter polls an endpoint until its config update settles. The SDK's own
// waiter (WaitGetServingEndpointNotUpdating) only waits for NOT_UPDATING and
// treats UPDATE_FAILED as an error without the endpoint; this one also waits
// for READY, returns the endpoint in every case and logs each change of state.
type waiter struct {
	api   *serving.ServingEndpointsAPI
	log   *agent.Log
	poll  func(attempt int) time.Duration
	clock converge.Clock
}

// defaultPoll starts at half a second, so short updates are seen soon,
// and backs off to every 10 seconds for the minutes a container build takes.
func defaultPoll(attempt int) time.Duration {
	d := 500 * time.Millisecond
	for range attempt {
		d = d * 3 / 2
		if d >= 10*time.Second {
			return 10 * time.Second
		}
	}
	return d
}

// settle polls the endpoint until no config update is in progress and, with
// ready, until it is READY or its update failed. It returns the last
// endpoint read, also with an error: one wrapping errTimedOut after timeout,
// or ctx's error when the pipeline was cancelled.
func (w waiter) settle(ctx context.Context, name string, timeout time.Duration, ready bool) (*serving.ServingEndpointDetailed, error) {
	deadline := w.clock.Now().Add(timeout)
	var last *serving.ServingEndpointDetailed
	lastState := ""
	timedOut := func() error {
		return fmt.Errorf("endpoint %s: %w after %s (%s)", name, errTimedOut, timeout, lastState)
	}
	// The first pause is poll(0): attempts count from 0, checks from 1.
	schedule := converge.Schedule{Pause: func(n int) time.Duration { return w.poll(n - 1) }, Timeout: timeout}
	err := converge.Poll(ctx, w.clock, schedule, func(ctx context.Context) (bool, error) {
		// A request still hanging at the deadline is cut off there.
		reqCtx, cancel := context.WithTimeout(ctx, deadline.Sub(w.clock.Now()))
		ep, err := w.api.Get(reqCtx, serving.GetServingEndpointRequest{Name: name})
		cancel()
		switch {
		case ctx.Err() != nil:
			return false, ctx.Err()
		case err != nil && w.clock.Now().After(deadline):
			return false, timedOut()
		case err != nil:
			return false, fmt.Errorf("reading endpoint %s: %w", name, err)
		}
		last = ep
		if s := describeState(ep); s != lastState {
			w.log.Info("%s", s)
			lastState = s
		}
		return settled(ep, ready), nil
	})
	if errors.Is(err, converge.ErrTimeout) {
		return last, timedOut()
	}
	return last, err
}

func settled(ep *serving.ServingEndpointDetailed, ready bool) bool {
	st := state(ep)
	switch st.ConfigUpdate {
	case serving.EndpointStateConfigUpdateInProgress:
		return false
	case serving.EndpointStateConfigUpdateUpdateFailed:
		return true
	}
	return !ready || st.Ready == serving.EndpointStateReadyReady
}

func state(ep *serving.ServingEndpointDetailed) serving.EndpointState {
	if ep == nil || ep.State == nil {
		return serving.EndpointState{}
	}
	return *ep.State
}

// describeState is one log line: the endpoint's state and each served
// entity's deployment, e.g. "churn: NOT_READY, config update IN_PROGRESS;
// new config 2: churn-3 DEPLOYMENT_CREATING (Creating the served entity.)".
func describeState(ep *serving.ServingEndpointDetailed) string {
	st := state(ep)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s, config update %s", ep.Name, orUnknown(string(st.Ready)), orUnknown(string(st.ConfigUpdate)))
	if ep.Config != nil {
		fmt.Fprintf(&b, "; config %d: %s", ep.Config.ConfigVersion, entityStates(ep.Config.ServedEntities, ep.Config.ServedModels))
	}
	if pc := ep.PendingConfig; pc != nil {
		fmt.Fprintf(&b, "; pending config %d: %s", pc.ConfigVersion, entityStates(pc.ServedEntities, pc.ServedModels))
	}
	return b.String()
}

func entityStates(entities []serving.ServedEntityOutput, models []serving.ServedModelOutput) string {
	var parts []string
	add := func(name string, s *serving.ServedModelState) {
		part := name
		if s != nil && s.Deployment != "" {
			part += " " + string(s.Deployment)
			if s.DeploymentStateMessage != "" {
				part += " (" + s.DeploymentStateMessage + ")"
			}
		}
		parts = append(parts, part)
	}
	for _, e := range entities {
		add(e.Name, e.State)
	}
	if len(entities) > 0 {
		models = nil // GET answers the same entities in both lists (see served)
	}
	for _, m := range models {
		add(m.Name, m.State)
	}
	return strings.Join(parts, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "UNKNOWN"
	}
	return s
}
