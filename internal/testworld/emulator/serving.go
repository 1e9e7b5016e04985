package emulator

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/serving"
)

// Model serving endpoints (https://docs.databricks.com/api/workspace/servingendpoints).
//
// A new endpoint is NOT_READY with config_update IN_PROGRESS for
// Options.ServingReady, then READY / NOT_UPDATING. A config update is
// IN_PROGRESS for Options.ServingUpdate, then NOT_UPDATING with the new
// config, or UPDATE_FAILED keeping the old one when scripted with
// ServingBehaviour. Served entities must name an existing model version
// (workspace registry, or Unity Catalog for three-part names).
// Invocations run a deterministic stand-in predictor that answers one
// prediction in [0, 1) per input row.
//
// served_entities and served_models: a config names what it serves in one
// of the two lists (served_models is deprecated, databricks-sdk-go v0.81.0
// serving.EndpointCoreConfigInput doc comment). A body with both is refused:
// the service answers 400 BAD_REQUEST "Both served_models and served_entities
// cannot be provided in the config. Databricks recommends using only
// served_entities" (as a live import recorded it; databricks/cli PR 3880 and
// terraform-provider-databricks serving/resource_model_serving.go refuse the
// same client side with ConflictsWith). GET answers both lists for the same
// entities whichever one the config was written with (databricks/cli PR 3880:
// "The GET API response for a model serving endpoint returns with both
// served_models and served_entities even if one is set on the client side";
// the Terraform provider's Read drops one of them for that reason).

type servingState struct {
	endpoints map[string]*endpoint
	script    map[string]ServingBehaviour
	traffic   map[string]ServingTraffic // client traffic by endpoint (servingmetrics.go)
}

func newServingState() servingState {
	return servingState{endpoints: map[string]*endpoint{}, script: map[string]ServingBehaviour{}, traffic: map[string]ServingTraffic{}}
}

// ServingBehaviour scripts an endpoint's deployments.
type ServingBehaviour struct {
	// FailCreate makes the first deployment fail: the endpoint stays
	// NOT_READY with config_update UPDATE_FAILED.
	FailCreate bool
	// FailUpdates makes config updates end UPDATE_FAILED.
	FailUpdates bool
	// Message is the deployment_state_message of a failed deployment.
	Message string
}

// OnServingEndpoint scripts the endpoint with this name.
func (ws *Workspace) OnServingEndpoint(name string, b ServingBehaviour) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.serving.script[name] = b
}

type endpoint struct {
	id        string
	name      string
	created   time.Time
	updated   time.Time
	tags      []serving.EndpointTag
	config    *serving.EndpointCoreConfigOutput // nil until the first deployment succeeds
	pending   *serving.EndpointCoreConfigOutput
	pendingAt time.Time
	doneAt    time.Time
	failed    bool // last deployment failed
	failMsg   string
	// failedConfig is the config whose deployment failed: its entities keep
	// their build and server logs, as Databricks shows them after a failure.
	failedConfig *serving.EndpointCoreConfigOutput
	everReady    bool
	configVers   int64
	aiGateway    *serving.AiGatewayConfig // PUT .../ai-gateway (aigateway.go)
	// routeOptimized is set at creation (dataplane.go).
	routeOptimized bool
	// counters are the metrics of each served entity, trafficAt when the
	// scripted traffic was last added to them (servingmetrics.go).
	counters  map[string]*entityCounters
	trafficAt time.Time
}

func (ws *Workspace) advanceServing(now time.Time) {
	// Client traffic reaches the config served at the time: up to the end
	// of a config update by the old config, after it by the new one.
	defer func() {
		for _, e := range ws.serving.endpoints {
			ws.accumulateTraffic(e, now)
		}
	}()
	for _, e := range ws.serving.endpoints {
		if e.pending == nil || now.Before(e.doneAt) {
			continue
		}
		ws.accumulateTraffic(e, e.doneAt)
	}
	for _, e := range ws.serving.endpoints {
		if e.pending == nil || now.Before(e.doneAt) {
			continue
		}
		b := ws.serving.script[e.name]
		if (!e.everReady && b.FailCreate) || (e.everReady && b.FailUpdates) {
			e.failed = true
			e.failMsg = b.Message
			if e.failMsg == "" {
				e.failMsg = "Served entity deployment failed: the container image build failed. See build logs."
			}
			e.failedConfig, e.pending = e.pending, nil
			continue
		}
		e.config = e.pending
		for i := range e.config.ServedEntities {
			e.config.ServedEntities[i].State = &serving.ServedModelState{Deployment: serving.ServedModelStateDeploymentDeploymentReady, DeploymentStateMessage: "Served entity is ready."}
		}
		for i := range e.config.ServedModels {
			e.config.ServedModels[i].State = &serving.ServedModelState{Deployment: serving.ServedModelStateDeploymentDeploymentReady, DeploymentStateMessage: "Served model is ready."}
		}
		e.pending, e.failed, e.failMsg, e.failedConfig, e.everReady = nil, false, "", nil, true
		e.updated = e.doneAt
	}
}

func (ws *Workspace) endpointView(e *endpoint) *serving.ServingEndpointDetailed {
	out := &serving.ServingEndpointDetailed{
		Id: e.id, Name: e.name, Creator: ws.UserName, CreationTimestamp: millis(e.created),
		LastUpdatedTimestamp: millis(e.updated), Tags: e.tags, PermissionLevel: serving.ServingEndpointDetailedPermissionLevelCanManage,
		State:     &serving.EndpointState{Ready: serving.EndpointStateReadyNotReady, ConfigUpdate: serving.EndpointStateConfigUpdateNotUpdating},
		AiGateway: e.aiGateway,
	}
	if e.routeOptimized {
		out.RouteOptimized, out.EndpointUrl, out.DataPlaneInfo = true, ws.routeOptimizedURL(e.name), ws.dataPlaneInfo(e)
	}
	if e.config != nil {
		out.Config = bothLists(e.config)
		out.State.Ready = serving.EndpointStateReadyReady
	}
	switch {
	case e.pending != nil:
		out.State.ConfigUpdate = serving.EndpointStateConfigUpdateInProgress
		p := bothLists(e.pending)
		out.PendingConfig = &serving.EndpointPendingConfig{
			ConfigVersion: int(p.ConfigVersion), ServedEntities: p.ServedEntities, ServedModels: p.ServedModels,
			TrafficConfig: p.TrafficConfig, StartTime: millis(e.pendingAt),
		}
	case e.failed:
		out.State.ConfigUpdate = serving.EndpointStateConfigUpdateUpdateFailed
	}
	return out
}

// bothLists is a copy of a stored config as GET answers it: every served
// entity of a registered model version in served_entities and again in
// served_models, whichever list the config was written with (see the
// comment at the top of this file).
func bothLists(cfg *serving.EndpointCoreConfigOutput) *serving.EndpointCoreConfigOutput {
	out := *cfg
	out.ServedEntities, out.ServedModels = nil, nil
	for _, e := range cfg.ServedEntities {
		out.ServedEntities = append(out.ServedEntities, e)
		if e.EntityVersion != "" { // a registered model, not an external or foundation model
			out.ServedModels = append(out.ServedModels, serving.ServedModelOutput{
				CreationTimestamp: e.CreationTimestamp, Creator: e.Creator, EnvironmentVars: e.EnvironmentVars,
				InstanceProfileArn: e.InstanceProfileArn, MaxProvisionedConcurrency: e.MaxProvisionedConcurrency,
				MinProvisionedConcurrency: e.MinProvisionedConcurrency, ModelName: e.EntityName, ModelVersion: e.EntityVersion,
				Name: e.Name, ProvisionedModelUnits: e.ProvisionedModelUnits, ScaleToZeroEnabled: e.ScaleToZeroEnabled,
				State: e.State, WorkloadSize: e.WorkloadSize, WorkloadType: e.WorkloadType,
				ForceSendFields: renameFields[serving.ServedModelOutput](e.ForceSendFields, "EntityName", "ModelName", "EntityVersion", "ModelVersion"),
			})
		}
	}
	for _, m := range cfg.ServedModels {
		out.ServedEntities = append(out.ServedEntities, serving.ServedEntityOutput{
			CreationTimestamp: m.CreationTimestamp, Creator: m.Creator, EntityName: m.ModelName, EntityVersion: m.ModelVersion,
			EnvironmentVars: m.EnvironmentVars, InstanceProfileArn: m.InstanceProfileArn,
			MaxProvisionedConcurrency: m.MaxProvisionedConcurrency, MinProvisionedConcurrency: m.MinProvisionedConcurrency,
			Name: m.Name, ProvisionedModelUnits: m.ProvisionedModelUnits, ScaleToZeroEnabled: m.ScaleToZeroEnabled,
			State: m.State, WorkloadSize: m.WorkloadSize, WorkloadType: m.WorkloadType,
			ForceSendFields: renameFields[serving.ServedEntityOutput](m.ForceSendFields, "ModelName", "EntityName", "ModelVersion", "EntityVersion"),
		})
		out.ServedModels = append(out.ServedModels, m)
	}
	return &out
}

// renameFields carries ForceSendFields entries from a served entity to a
// served model or back: renamed by the (old, new) pairs, and left out when
// the struct To has no such field (databricks-sdk-go refuses to marshal it).
func renameFields[To any](fields []string, pairs ...string) []string {
	var out []string
	for _, f := range fields {
		for i := 0; i+1 < len(pairs); i += 2 {
			if f == pairs[i] {
				f = pairs[i+1]
			}
		}
		if _, ok := reflect.TypeFor[To]().FieldByName(f); ok {
			out = append(out, f)
		}
	}
	return out
}

func (ws *Workspace) servingRoutes() {
	handle(ws, "POST /api/2.0/serving-endpoints", func(r *http.Request, req *serving.CreateServingEndpoint) (any, *apiError) {
		if req.Name == "" {
			return nil, invalidParam("Missing required field: name")
		}
		if _, ok := ws.serving.endpoints[req.Name]; ok {
			return nil, alreadyExists("Endpoint with name '%s' already exists.", req.Name)
		}
		if req.Config == nil {
			return nil, invalidParam("Missing required field: config")
		}
		now := ws.clock.Now()
		e := &endpoint{id: randomHex(16), name: req.Name, created: now, updated: now, tags: req.Tags, routeOptimized: req.RouteOptimized}
		cfg, aerr := ws.buildConfig(req.Config, 1, now)
		if aerr != nil {
			return nil, aerr
		}
		e.pending, e.pendingAt, e.doneAt, e.configVers = cfg, now, now.Add(ws.opts.ServingReady), 1
		ws.serving.endpoints[req.Name] = e
		return ws.endpointView(e), nil
	})
	handle(ws, "GET /api/2.0/serving-endpoints/{name}", func(r *http.Request, req *serving.GetServingEndpointRequest) (any, *apiError) {
		e, aerr := ws.endpoint(r.PathValue("name"))
		if aerr != nil {
			return nil, aerr
		}
		return ws.endpointView(e), nil
	})
	handle(ws, "GET /api/2.0/serving-endpoints", func(r *http.Request, req *struct{}) (any, *apiError) {
		resp := &serving.ListEndpointsResponse{}
		for _, name := range slices.Sorted(maps.Keys(ws.serving.endpoints)) {
			var ep serving.ServingEndpoint
			_ = convert(ws.endpointView(ws.serving.endpoints[name]), &ep)
			resp.Endpoints = append(resp.Endpoints, ep)
		}
		return resp, nil
	})
	handle(ws, "PUT /api/2.0/serving-endpoints/{name}/config", func(r *http.Request, req *serving.EndpointCoreConfigInput) (any, *apiError) {
		e, aerr := ws.endpoint(r.PathValue("name"))
		if aerr != nil {
			return nil, aerr
		}
		if e.pending != nil {
			return nil, errorf(http.StatusConflict, "RESOURCE_CONFLICT", "Endpoint %s is currently being updated. Please wait for the update to finish.", e.name)
		}
		now := ws.clock.Now()
		cfg, aerr := ws.buildConfig(req, e.configVers+1, now)
		if aerr != nil {
			return nil, aerr
		}
		e.configVers++
		e.pending, e.pendingAt, e.doneAt, e.updated = cfg, now, now.Add(ws.opts.ServingUpdate), now
		return ws.endpointView(e), nil
	})
	// Tags are patched without a config update (PATCH .../tags).
	handle(ws, "PATCH /api/2.0/serving-endpoints/{name}/tags", func(r *http.Request, req *serving.PatchServingEndpointTags) (any, *apiError) {
		e, aerr := ws.endpoint(r.PathValue("name"))
		if aerr != nil {
			return nil, aerr
		}
		var kept []serving.EndpointTag
		for _, t := range e.tags {
			drop := false
			for _, k := range req.DeleteTags {
				drop = drop || k == t.Key
			}
			for _, a := range req.AddTags {
				drop = drop || a.Key == t.Key
			}
			if !drop {
				kept = append(kept, t)
			}
		}
		e.tags = append(kept, req.AddTags...)
		return &serving.EndpointTags{Tags: e.tags}, nil
	})
	handle(ws, "DELETE /api/2.0/serving-endpoints/{name}", func(r *http.Request, req *serving.DeleteServingEndpointRequest) (any, *apiError) {
		if _, aerr := ws.endpoint(r.PathValue("name")); aerr != nil {
			return nil, aerr
		}
		delete(ws.serving.endpoints, r.PathValue("name"))
		return nil, nil
	})
	handle(ws, "GET /api/2.0/serving-endpoints/{name}/served-models/{served}/build-logs", func(r *http.Request, req *serving.BuildLogsRequest) (any, *apiError) {
		e, name, aerr := ws.servedEntity(r)
		if aerr != nil {
			return nil, aerr
		}
		logs := fmt.Sprintf("Building container image for served entity %s of endpoint %s\nInstalling dependencies from requirements.txt\n", name, e.name)
		if e.failed && servesEntity(e.failedConfig, name) && !servesEntity(e.config, name) {
			logs += "ERROR: " + e.failMsg + "\n"
		} else {
			logs += "Build succeeded.\n"
		}
		return &serving.BuildLogsResponse{Logs: logs}, nil
	})
	handle(ws, "GET /api/2.0/serving-endpoints/{name}/served-models/{served}/logs", func(r *http.Request, req *serving.LogsRequest) (any, *apiError) {
		e, name, aerr := ws.servedEntity(r)
		if aerr != nil {
			return nil, aerr
		}
		return &serving.ServerLogsResponse{Logs: fmt.Sprintf("[%s] model server for %s/%s listening\n", ws.clock.Now().UTC().Format(time.RFC3339), e.name, name)}, nil
	})
	ws.mux.route("POST /serving-endpoints/{name}/invocations", reflect.TypeFor[serving.QueryEndpointInput](), ws.invoke)
}

// servesEntity reports whether a config has a served entity or model of that name.
func servesEntity(cfg *serving.EndpointCoreConfigOutput, name string) bool {
	if cfg == nil {
		return false
	}
	for _, se := range cfg.ServedEntities {
		if se.Name == name {
			return true
		}
	}
	for _, sm := range cfg.ServedModels {
		if sm.Name == name {
			return true
		}
	}
	return false
}

func (ws *Workspace) endpoint(name string) (*endpoint, *apiError) {
	e, ok := ws.serving.endpoints[name]
	if !ok {
		return nil, notFound("Endpoint with name '%s' does not exist.", name)
	}
	return e, nil
}

func (ws *Workspace) servedEntity(r *http.Request) (*endpoint, string, *apiError) {
	e, aerr := ws.endpoint(r.PathValue("name"))
	if aerr != nil {
		return nil, "", aerr
	}
	name := r.PathValue("served")
	for _, cfg := range []*serving.EndpointCoreConfigOutput{e.config, e.pending, e.failedConfig} {
		if servesEntity(cfg, name) {
			return e, name, nil
		}
	}
	return nil, "", notFound("Served model '%s' does not exist in endpoint '%s'.", name, e.name)
}

// buildConfig validates the input config and turns it into the output
// shape, naming served entities <model>-<version> by default and routing all
// traffic to a single entity when no traffic_config is given.
func (ws *Workspace) buildConfig(in *serving.EndpointCoreConfigInput, version int64, now time.Time) (*serving.EndpointCoreConfigOutput, *apiError) {
	if len(in.ServedEntities) == 0 && len(in.ServedModels) == 0 {
		return nil, invalidParam("The config must have at least one served entity.")
	}
	if len(in.ServedEntities) > 0 && len(in.ServedModels) > 0 {
		// The service's own answer (see the comment at the top of this file).
		return nil, errorf(http.StatusBadRequest, "BAD_REQUEST", "Both served_models and served_entities cannot be provided in the config. Databricks recommends using only served_entities.")
	}
	if ac := in.AutoCaptureConfig; ac != nil && ac.Enabled && !now.Before(legacyInferenceTablesEnd) {
		return nil, invalidParam("Legacy inference tables (auto_capture_config) can no longer be enabled. Use AI Gateway inference tables instead.")
	}
	out := &serving.EndpointCoreConfigOutput{ConfigVersion: version, TrafficConfig: in.TrafficConfig, AutoCaptureConfig: nil}
	creating := &serving.ServedModelState{Deployment: serving.ServedModelStateDeploymentDeploymentCreating, DeploymentStateMessage: "Creating the served entity."}
	var names []string
	for _, se := range in.ServedEntities {
		if aerr := ws.checkModelVersion(se.EntityName, se.EntityVersion); aerr != nil {
			return nil, aerr
		}
		var o serving.ServedEntityOutput
		_ = convert(se, &o)
		if o.Name == "" {
			o.Name = strings.ReplaceAll(se.EntityName, ".", "-") + "-" + se.EntityVersion
		}
		o.Creator, o.CreationTimestamp, o.State = ws.UserName, millis(now), creating
		out.ServedEntities = append(out.ServedEntities, o)
		names = append(names, o.Name)
	}
	for _, sm := range in.ServedModels {
		if aerr := ws.checkModelVersion(sm.ModelName, sm.ModelVersion); aerr != nil {
			return nil, aerr
		}
		var o serving.ServedModelOutput
		_ = convert(sm, &o)
		if o.Name == "" {
			o.Name = strings.ReplaceAll(sm.ModelName, ".", "-") + "-" + sm.ModelVersion
		}
		o.Creator, o.CreationTimestamp, o.State = ws.UserName, millis(now), creating
		out.ServedModels = append(out.ServedModels, o)
		names = append(names, o.Name)
	}
	if out.TrafficConfig == nil {
		if len(names) != 1 {
			return nil, invalidParam("traffic_config is required when serving more than one entity.")
		}
		out.TrafficConfig = &serving.TrafficConfig{Routes: []serving.Route{{ServedModelName: names[0], TrafficPercentage: 100}}}
	}
	total := 0
	for _, rt := range out.TrafficConfig.Routes {
		total += rt.TrafficPercentage
	}
	if total != 100 {
		return nil, invalidParam("The traffic percentages of the routes must add up to 100, got %d.", total)
	}
	return out, nil
}

// legacyInferenceTablesEnd is the day from which legacy inference tables
// (auto_capture_config) can not be enabled on new or existing endpoints
// (Databricks docs, "Inference tables for monitoring and debugging models").
var legacyInferenceTablesEnd = time.Date(2026, 2, 20, 0, 0, 0, 0, time.UTC)

func (ws *Workspace) checkModelVersion(name, version string) *apiError {
	if name == "" || version == "" {
		return invalidParam("A served entity needs entity_name and entity_version.")
	}
	if strings.Count(name, ".") == 2 {
		if _, aerr := ws.ucVersion(name, version); aerr != nil {
			return aerr
		}
		return nil
	}
	_, aerr := ws.regVersion(name, version)
	return aerr
}

// invoke answers POST /serving-endpoints/{name}/invocations. The body is
// decoded strictly into serving.QueryEndpointInput; dataframe_split,
// dataframe_records, instances and inputs give the rows.
func (ws *Workspace) invoke(w http.ResponseWriter, r *http.Request) {
	req := &serving.QueryEndpointInput{}
	var served string
	var aerr *apiError
	ok := ws.serveLocked(w, r, req, func() *apiError { return decodeBody(r, req) }, func() {
		ws.advanceLocked()
		var e *endpoint
		if e, aerr = ws.endpoint(r.PathValue("name")); aerr != nil {
			return
		}
		if e.routeOptimized && !onDataPlane(r) && !e.created.Before(workspaceURLCutoff) {
			aerr = invalidParam("Endpoint %s is route-optimized: query it on its route-optimized URL %s (see endpoint_url).", e.name, ws.routeOptimizedURL(e.name))
			return
		}
		if e.config == nil {
			aerr = invalidState("Endpoint %s is not ready yet; its state is NOT_READY.", e.name)
			return
		}
		if routes := e.config.TrafficConfig.Routes; len(routes) > 0 {
			served = routes[0].ServedModelName
			if served == "" {
				served = routes[0].ServedEntityName
			}
		}
	})
	if !ok {
		return
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	rows, err := inputRows(req)
	if err != nil {
		writeError(w, errorf(http.StatusBadRequest, "BAD_REQUEST", "%v", err))
		return
	}
	preds := make([]any, len(rows))
	for i, row := range rows {
		preds[i] = predict(row)
	}
	w.Header().Set("served-model-name", served)
	writeJSON(w, http.StatusOK, &serving.QueryEndpointResponse{Predictions: preds})
}

func inputRows(req *serving.QueryEndpointInput) ([]any, error) {
	switch {
	case req.DataframeSplit != nil:
		return req.DataframeSplit.Data, nil
	case req.DataframeRecords != nil:
		return req.DataframeRecords, nil
	case req.Instances != nil:
		return req.Instances, nil
	case req.Inputs != nil:
		switch v := req.Inputs.(type) {
		case []any:
			return v, nil
		case map[string]any:
			for _, col := range v {
				if arr, ok := col.([]any); ok {
					rows := make([]any, len(arr))
					for i := range arr {
						row := map[string]any{}
						for k, c := range v {
							if ca, ok := c.([]any); ok && i < len(ca) {
								row[k] = ca[i]
							}
						}
						rows[i] = row
					}
					return rows, nil
				}
			}
		}
		return []any{req.Inputs}, nil
	}
	return nil, fmt.Errorf("the request must have one of dataframe_split, dataframe_records, instances or inputs")
}

// predict is a deterministic stand-in for the model: a score in [0, 1)
// derived from the row's JSON.
func predict(row any) float64 {
	b, _ := json.Marshal(row)
	h := fnv.New64a()
	_, _ = h.Write(b)
	v := float64(h.Sum64()%10000) / 10000
	return math.Round(v*10000) / 10000
}
