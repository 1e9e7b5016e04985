package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/serving"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/httpclient"
	"github.com/brickferry/brickferry/internal/modeluri"
	"github.com/brickferry/brickferry/internal/preflight"
)

// Deps are what the task needs from outside: the workspace connection and
// an HTTP client for signed storage URLs.
type Deps struct {
	// Connect reads the workspace connection inputs (recording bad ones in
	// in) and returns how to connect once every input is valid (nil:
	// auth.Connect, the shared resolver).
	Connect auth.ConnectFunc
	// HTTP downloads the model's input example from signed storage URLs
	// (without the Databricks token). Nil means a client with the agent's
	// proxy and certificate settings (internal/httpclient).
	HTTP *http.Client
	// Poll is the pause before each state poll; nil means defaultPoll.
	Poll func(attempt int) time.Duration
	// Clock drives the waiting for the endpoint (default the wall clock);
	// tests advance an emulated workspace with it.
	Clock converge.Clock
}

// Task is ModelServe@1.
func Task(deps Deps) agent.TaskFunc {
	return auth.Task("ModelServe", deps.Connect, readOptions, deps.newStep)
}

// step is one run of the task (one step of a pipeline) against one endpoint.
type step struct {
	o    Options
	c    *client.DatabricksClient
	api  *serving.ServingEndpointsAPI
	http *http.Client
	log  *agent.Log
	wait waiter
	// oauth: the connection gives an OAuth token (route-optimized
	// endpoints accept no other); principal names it in messages.
	oauth     bool
	principal string

	// what happened, for the outputs and the summary
	action     string // created, updated, unchanged, tags updated
	plan       plan
	final      *serving.ServingEndpointDetailed
	smoke      smokeResult
	rolledBack bool
	gateway    string // the AI Gateway config set by the step, "" when none was sent
	canary     canaryResult
	outcome    string // failure reason, "" on success
}

// newStep makes the step once every input is valid and ws is connected.
func (d Deps) newStep(env agent.Env, log *agent.Log, ws *auth.Workspace, opts Options) (*step, error) {
	httpc := d.HTTP
	if httpc == nil {
		net, err := httpclient.FromEnv(env)
		if err != nil {
			return nil, err
		}
		if httpc, err = net.Client(httpclient.Options{Log: log}); err != nil {
			return nil, err
		}
		// Downloads from signed storage URLs are GETs: ride out a
		// throttled or failing store like every Databricks call.
		httpc.Transport = httpclient.Retrying(httpc.Transport, httpclient.Retry{Log: log})
		httpc.Timeout = 2 * time.Minute
	}
	poll := d.Poll
	if poll == nil {
		poll = defaultPoll
	}
	api := serving.NewServingEndpoints(ws.Client)
	return &step{o: opts, c: ws.Client, api: api, http: httpc, log: log, wait: waiter{api: api, log: log, poll: poll, clock: converge.Or(d.Clock)},
		oauth: ws.OAuth, principal: ws.Principal}, nil
}

func (s *step) Run(ctx context.Context) (err error) {
	o := s.o
	s.log.Section(fmt.Sprintf("Serving %s version %s on endpoint %s", o.Model, o.Version, o.Endpoint))
	s.log.SetOutput("endpointName", o.Endpoint)
	s.log.SetOutput("endpointUrl", strings.TrimSuffix(s.c.Config.Host, "/")+invocationsPath(o.Endpoint))
	s.log.SetOutput("rolledBack", "false")
	defer func() {
		if ctx.Err() == nil {
			if err != nil {
				s.outcome = err.Error()
			}
			s.summary()
		}
	}()

	// The version must be there and READY before the endpoint is created
	// or changed: a typo would leave an endpoint that fails to serve.
	if err := s.preflight(ctx); err != nil {
		return err
	}
	if err := s.checkInferenceSchema(ctx); err != nil {
		return err
	}

	s.log.Progress(5, "reading the endpoint")
	ep, err := s.api.Get(ctx, serving.GetServingEndpointRequest{Name: o.Endpoint})
	switch {
	case errors.Is(err, apierr.ErrNotFound):
		ep = nil
		s.log.Info("Endpoint %s does not exist yet: it will be created.", o.Endpoint)
	case err != nil:
		return fmt.Errorf("reading endpoint %s: %w", o.Endpoint, err)
	default:
		s.log.Info("%s", describeState(ep))
	}
	if err := s.routeOptimized(ep); err != nil {
		return err
	}
	if st := state(ep); st.ConfigUpdate == serving.EndpointStateConfigUpdateInProgress {
		if ep, err = s.waitForOthers(ctx, ep); err != nil {
			return err
		}
	}

	p := planFor(o, ep)
	s.plan = p
	for _, n := range p.notes {
		s.log.Warning("%s", n)
	}
	s.log.Info("Served now: %s", describeServed(p.before))
	s.log.Info("Wanted:     %s", describeServed(p.want))
	if len(p.dropped) > 0 {
		s.log.Info("Dropped:    %s", strings.Join(p.dropped, ", "))
	}

	if p.unchanged {
		s.action = "unchanged"
		s.log.Info("Endpoint %s already serves exactly this config: no update sent.", o.Endpoint)
		if err := s.updateTags(ctx, p.tags); err != nil {
			return err
		}
		if state(ep).Ready != serving.EndpointStateReadyReady {
			if ep, err = s.settle(ctx, "the endpoint to be READY"); err != nil {
				return err
			}
		}
		s.final = ep
		return s.smokeAndFinish(ctx, false)
	}

	if err := s.apply(ctx, p); err != nil {
		return err
	}
	s.log.Progress(30, "waiting for the endpoint")
	ep, err = s.settle(ctx, "the config update to finish and the endpoint to be READY")
	s.final = ep
	switch {
	case err != nil:
		return err
	case state(ep).ConfigUpdate == serving.EndpointStateConfigUpdateUpdateFailed:
		return s.updateFailed(ctx, ep)
	case !servesConfig(ep, p.want):
		return fmt.Errorf("endpoint %s finished its update but serves %s instead of %s (was it changed by someone else at the same time?)",
			o.Endpoint, describeServed(servedOf(ep.Config)), describeServed(p.want))
	}
	s.log.Info("Endpoint %s is READY with %s.", o.Endpoint, describeServed(servedOf(ep.Config)))
	return s.smokeAndFinish(ctx, true)
}

// preflight resolves the model version and checks that it is READY
// (package preflight). The endpoint name was checked with the inputs.
func (s *step) preflight(ctx context.Context) error {
	name, err := modeluri.ParseName(s.o.Model)
	if err != nil {
		name = modeluri.Name{Full: s.o.Model} // a workspace registry name serve's own check accepts
	}
	n, _ := strconv.Atoi(s.o.Version)
	pf := preflight.New(s.c, s.c.Config.Host)
	v := pf.Model(ctx, "modelVersion", name, modeluri.VersionRef{Number: n})
	if err := pf.Err(); err != nil {
		return err
	}
	s.log.Info("Model %s version %d is READY.", name.Full, v.Number)
	return nil
}

// waitForOthers handles an update someone else started: wait for it (never
// overwrite it: Databricks refuses a new config while one is in progress,
// and the other update would be lost) or fail, as the input says.
func (s *step) waitForOthers(ctx context.Context, ep *serving.ServingEndpointDetailed) (*serving.ServingEndpointDetailed, error) {
	since := ""
	if ep.PendingConfig != nil && ep.PendingConfig.StartTime > 0 {
		since = " since " + time.UnixMilli(ep.PendingConfig.StartTime).UTC().Format(time.RFC3339)
	}
	if s.o.FailIfUpdating {
		return nil, fmt.Errorf("endpoint %s has a config update in progress%s; it was left alone (set 'If another update is in progress' to wait to deploy after it)", s.o.Endpoint, since)
	}
	s.log.Info("Endpoint %s has a config update in progress%s: waiting for it to finish before deploying.", s.o.Endpoint, since)
	s.log.Progress(10, "waiting for another update")
	ep, err := s.wait.settle(ctx, s.o.Endpoint, s.o.Timeout, false)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if errors.Is(err, errTimedOut) {
		return nil, fmt.Errorf("the update already in progress on endpoint %s did not finish within %s; nothing was changed", s.o.Endpoint, s.o.Timeout)
	}
	if err != nil {
		return nil, err
	}
	if state(ep).ConfigUpdate == serving.EndpointStateConfigUpdateUpdateFailed {
		s.log.Warning("the update that was in progress on endpoint %s failed; deploying on top of the config it serves", s.o.Endpoint)
	}
	return ep, nil
}

// apply creates the endpoint or sends the new config, and updates tags.
func (s *step) apply(ctx context.Context, p plan) error {
	o := s.o
	if p.create {
		s.action = "created"
		s.log.Info("Creating endpoint %s.", o.Endpoint)
		cfg := p.config
		req := serving.CreateServingEndpoint{Name: o.Endpoint, Config: &cfg, Tags: o.Tags, RouteOptimized: o.RouteOptimized}
		_, err := converge.Converge(ctx, func(ctx context.Context) (struct{}, bool, error) {
			// Not idempotent, and no clear answer: the endpoint may exist now.
			// Not found is an answer (create again), not a failed look-up.
			_, err := s.api.Get(ctx, serving.GetServingEndpointRequest{Name: o.Endpoint})
			if errors.Is(err, apierr.ErrNotFound) {
				return struct{}{}, false, nil
			}
			return struct{}{}, err == nil, err
		}, func(ctx context.Context) (struct{}, error) {
			_, err := s.api.Create(ctx, req)
			return struct{}{}, err
		})
		if err != nil {
			return fmt.Errorf("creating endpoint %s: %w", o.Endpoint, err)
		}
		return nil
	}
	s.action = "updated"
	// Tags first: if they cannot be set, nothing has changed yet.
	if err := s.updateTags(ctx, p.tags); err != nil {
		return err
	}
	cfg := p.config
	cfg.Name = o.Endpoint
	s.log.Info("Updating the config of endpoint %s.", o.Endpoint)
	if err := s.sendConfig(ctx, cfg, p.want); err != nil {
		if conflict(err) {
			return fmt.Errorf("endpoint %s started another update just now; nothing was changed, run again to deploy after it: %w", o.Endpoint, err)
		}
		return fmt.Errorf("updating the config of endpoint %s: %w", o.Endpoint, err)
	}
	return nil
}

// sendConfig sends a new config for the endpoint (an update, or a rollback
// to the config it served before), which is to serve want. A config update
// whose answer got lost (a 500 or a dropped connection after Databricks
// started it) is not made twice:
//   - the transport sends a PUT again after such a failure, and Databricks
//     refuses the second one with 409 RESOURCE_CONFLICT while the first
//     one's update runs: an update in progress to exactly want is that lost
//     request's (or another run's deploying the same config), and is waited
//     for like one started by this step;
//   - when the failure reaches the step (the transport gave up), the step
//     looks before sending again (converge.Converge): an endpoint updating
//     to want, or serving it already, has the config.
func (s *step) sendConfig(ctx context.Context, cfg serving.EndpointCoreConfigInput, want []served) error {
	_, err := converge.Converge(ctx, func(ctx context.Context) (struct{}, bool, error) {
		ep, err := s.api.Get(ctx, serving.GetServingEndpointRequest{Name: s.o.Endpoint})
		if err != nil {
			return struct{}{}, false, err
		}
		return struct{}{}, updatingTo(ep, want) || servesConfig(ep, want), nil
	}, func(ctx context.Context) (struct{}, error) {
		_, err := s.api.UpdateConfig(ctx, cfg)
		if conflict(err) {
			if ep, gerr := s.api.Get(ctx, serving.GetServingEndpointRequest{Name: s.o.Endpoint}); gerr == nil && updatingTo(ep, want) {
				s.log.Info("Endpoint %s is already updating to this config (the answer to an earlier try of this request was lost, or another run deploys the same config).", s.o.Endpoint)
				return struct{}{}, nil
			}
		}
		return struct{}{}, err
	})
	return err
}

// updatingTo reports whether the endpoint has a config update in progress
// to exactly want.
func updatingTo(ep *serving.ServingEndpointDetailed, want []served) bool {
	pc := ep.PendingConfig
	if pc == nil || state(ep).ConfigUpdate != serving.EndpointStateConfigUpdateInProgress {
		return false
	}
	return sameServed(want, servedOf(&serving.EndpointCoreConfigOutput{ServedEntities: pc.ServedEntities, ServedModels: pc.ServedModels, TrafficConfig: pc.TrafficConfig}))
}

// conflict reports a 409: the endpoint has a config update in progress.
func conflict(err error) bool {
	var apiErr *apierr.APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusConflict
}

// updateTags adds or updates the listed tags; other tags are left alone.
func (s *step) updateTags(ctx context.Context, tags []serving.EndpointTag) error {
	if len(tags) == 0 || s.plan.create {
		return nil
	}
	keys := make([]string, 0, len(tags))
	for _, t := range tags {
		keys = append(keys, t.Key)
	}
	s.log.Info("Setting tags on endpoint %s: %s", s.o.Endpoint, strings.Join(keys, ", "))
	if _, err := s.api.Patch(ctx, serving.PatchServingEndpointTags{Name: s.o.Endpoint, AddTags: tags}); err != nil {
		return fmt.Errorf("setting the tags of endpoint %s: %w", s.o.Endpoint, err)
	}
	if s.action == "unchanged" {
		s.action = "tags updated"
	}
	return nil
}

// settle waits for the endpoint with the task's timeout. On cancellation
// or timeout it says what is left running on Databricks.
func (s *step) settle(ctx context.Context, what string) (*serving.ServingEndpointDetailed, error) {
	ep, err := s.wait.settle(ctx, s.o.Endpoint, s.o.Timeout, true)
	switch {
	case ctx.Err() != nil:
		if ep == nil {
			// Cancelled before the first reading came back (a GET the
			// workspace answered, cut off on the way): read the endpoint
			// once more so that the log says what is left running.
			cctx, cancel := agent.Cleanup(ctx, s.log, 10*time.Second, "reading endpoint "+s.o.Endpoint+" to say what keeps running")
			ep, _ = s.api.Get(cctx, serving.GetServingEndpointRequest{Name: s.o.Endpoint})
			cancel()
		}
		s.final = ep
		if state(ep).ConfigUpdate == serving.EndpointStateConfigUpdateInProgress {
			// Databricks has no way to cancel a config update, and a new one
			// (a rollback) is refused until it ends: leave it running.
			s.log.Warning("the pipeline was cancelled while waiting for %s. The config update on endpoint %s keeps running on Databricks (a config update cannot be cancelled) and was not rolled back; the next run waits for it.", what, s.o.Endpoint)
		}
		return ep, ctx.Err()
	case errors.Is(err, errTimedOut):
		s.final = ep
		msg := fmt.Sprintf("endpoint %s was not ready within %s (waiting for %s); last state: %s", s.o.Endpoint, s.o.Timeout, what, describeState(ep))
		if state(ep).ConfigUpdate == serving.EndpointStateConfigUpdateInProgress {
			msg += ". The config update keeps running on Databricks (it cannot be cancelled, and no rollback can be sent while it runs)"
		}
		return ep, errors.New(msg)
	}
	return ep, err
}

// updateFailed prints the logs of the new served entity and checks that the
// endpoint still serves what it served before: Databricks does not switch
// traffic to a config whose deployment failed.
func (s *step) updateFailed(ctx context.Context, ep *serving.ServingEndpointDetailed) error {
	p := s.plan
	s.printLogs(ctx, p.newName)
	reason := fmt.Sprintf("the config update of endpoint %s failed (UPDATE_FAILED)", s.o.Endpoint)
	if p.previous == nil {
		return fmt.Errorf("%s; the endpoint served nothing before, so there is nothing to roll back to (it is left NOT_READY; the next run updates it)", reason)
	}
	if servesConfig(ep, p.before) {
		s.rolledBack = true
		s.log.SetOutput("rolledBack", "true")
		s.log.Info("Databricks kept the previous config serving: %s.", describeServed(servedOf(ep.Config)))
		return fmt.Errorf("%s; it still serves the previous config (%s)", reason, describeServed(p.before))
	}
	return s.rollback(ctx, reason)
}

// smokeAndFinish runs the smoke test, rolls back when it fails (if the step
// changed the endpoint) and sets the outputs.
func (s *step) smokeAndFinish(ctx context.Context, changed bool) error {
	o := s.o
	if err := s.applyGateway(ctx, s.final); err != nil {
		return err
	}
	s.log.SetOutput("endpointUrl", s.invocationsURL(s.final))
	s.log.Progress(80, "smoke test")
	if err := s.runSmokeTest(ctx); err != nil {
		return err
	}
	if s.smoke.Err != nil {
		reason := "the smoke test failed: " + s.smoke.Err.Error()
		if !changed {
			return errors.New(reason)
		}
		return s.rollback(ctx, reason)
	}
	if s.plan.stable != "" && o.Canary.Watch > 0 {
		if err := s.judgeCanary(ctx, changed); err != nil {
			return err
		}
	}
	s.log.SetOutput("servedVersion", o.Version)
	s.log.SetOutput("trafficPercent", strconv.Itoa(routes(s.final.Config.TrafficConfig)[s.plan.newName]))
	if s.smoke.Ran {
		s.log.SetOutput("smokeTestLatencyMs", strconv.FormatInt(s.smoke.Latency.Milliseconds(), 10))
	}
	s.log.Progress(100, "done")
	return nil
}

func (s *step) runSmokeTest(ctx context.Context) error {
	o := s.o
	if !o.SmokeTest {
		s.smoke.Skipped = "turned off"
		s.log.Info("Smoke test: turned off.")
		return nil
	}
	s.log.Section("Smoke test")
	p, source := o.Payload, "the request body given"
	if p == nil {
		var why string
		var err error
		p, why, err = inputExample(ctx, s.c, s.http, o.Model, o.Version)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			why = "could not read the model's input example: " + err.Error()
		}
		if p == nil {
			s.smoke.Skipped = why
			s.log.Warning("smoke test skipped: no request body was given and %s", why)
			return nil
		}
		source = fmt.Sprintf("the input example of %s version %s", o.Model, o.Version)
	}
	q, err := s.endpointQuery(ctx, s.final)
	if err != nil {
		return err
	}
	s.log.Info("Querying %s with %s (%s, %d row(s)).", s.invocationsURL(s.final), source, p.Shape, p.Rows)
	res, err := smokeTest(ctx, q, p, o.Timeout)
	res.Source = source
	s.smoke = res
	if err != nil {
		return err
	}
	if res.Err != nil {
		s.log.Info("Smoke test failed after %d ms: %v", res.Latency.Milliseconds(), res.Err)
		return nil
	}
	s.log.Info("Smoke test passed: HTTP %d, %d prediction(s) for %d row(s), %d ms.", res.Status, res.Predictions, res.Rows, res.Latency.Milliseconds())
	return nil
}

// rollback puts back the config the endpoint served before the step, if
// there was one and rollback is on, and returns the failure with what the
// rollback did.
func (s *step) rollback(ctx context.Context, reason string) error {
	p := s.plan
	switch {
	case !s.o.Rollback:
		return fmt.Errorf("%s; rollback is turned off, so endpoint %s keeps %s", reason, s.o.Endpoint, describeServed(p.want))
	case p.previous == nil:
		return fmt.Errorf("%s; endpoint %s served nothing before this step, so there is nothing to roll back to", reason, s.o.Endpoint)
	}
	s.log.Section("Rollback")
	s.log.Info("Putting back the previous config of endpoint %s: %s.", s.o.Endpoint, describeServed(p.before))
	s.log.Progress(90, "rolling back")
	cfg := *p.previous
	cfg.Name = s.o.Endpoint
	if err := s.sendConfig(ctx, cfg, p.before); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s; the rollback could not be sent: %w", reason, err)
	}
	ep, err := s.settle(ctx, "the rollback to finish")
	s.final = ep
	switch {
	case err != nil && ctx.Err() != nil:
		return err
	case err != nil:
		return fmt.Errorf("%s; the rollback did not finish: %w", reason, err)
	case state(ep).ConfigUpdate == serving.EndpointStateConfigUpdateUpdateFailed:
		s.printLogs(ctx, "")
		return fmt.Errorf("%s; the rollback failed too (UPDATE_FAILED)", reason)
	case !servesConfig(ep, p.before):
		return fmt.Errorf("%s; after the rollback endpoint %s serves %s instead of %s", reason, s.o.Endpoint, describeServed(servedOf(ep.Config)), describeServed(p.before))
	}
	s.rolledBack = true
	s.log.SetOutput("rolledBack", "true")
	s.log.Info("Rolled back: endpoint %s serves %s again.", s.o.Endpoint, describeServed(servedOf(ep.Config)))
	return fmt.Errorf("%s; endpoint %s was rolled back to %s", reason, s.o.Endpoint, describeServed(p.before))
}

// maxLogLines bounds what is printed of a build or server log.
const maxLogLines = 200

// printLogs prints the build and server logs of a served entity (every
// entity of the endpoint's config when name is ""). The lines come from the
// model's container, so they are neutralised by Log.Info.
func (s *step) printLogs(ctx context.Context, name string) {
	names := []string{name}
	if name == "" && s.final != nil {
		names = nil
		for _, e := range servedOf(s.final.Config) {
			names = append(names, e.Name)
		}
	}
	for _, n := range names {
		s.log.Group("Build logs of served entity " + n)
		if b, err := s.api.BuildLogs(ctx, serving.BuildLogsRequest{Name: s.o.Endpoint, ServedModelName: n}); err != nil {
			s.log.Info("No build logs: %v", err)
		} else {
			s.log.Info("%s", lastLines(b.Logs, maxLogLines))
		}
		s.log.EndGroup()
		s.log.Group("Server logs of served entity " + n)
		if l, err := s.api.Logs(ctx, serving.LogsRequest{Name: s.o.Endpoint, ServedModelName: n}); err != nil {
			s.log.Info("No server logs: %v", err)
		} else {
			s.log.Info("%s", lastLines(l.Logs, maxLogLines))
		}
		s.log.EndGroup()
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) <= n {
		return strings.Join(lines, "\n")
	}
	return fmt.Sprintf("(%d earlier lines left out)\n%s", len(lines)-n, strings.Join(lines[len(lines)-n:], "\n"))
}
