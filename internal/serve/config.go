package serve

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/databricks/databricks-sdk-go/service/serving"
)

// served is one served entity of an endpoint config, whichever field of the
// API it came from (served_entities, or the older served_models), with the
// settings this task manages.
//
// GET answers served_entities AND served_models for the same entities
// (databricks/cli PR 3880; terraform-provider-databricks
// serving/resource_model_serving.go Read keeps one of the two), and a config
// that carries both is refused. So a config is read from served_entities,
// from served_models only when served_entities is empty, and sent with one
// list.
type served struct {
	Name         string
	Model        string
	Version      string
	WorkloadSize string
	WorkloadType string
	ScaleToZero  bool
	EnvVars      map[string]string
	Traffic      int
	State        string // deployment state, when read from the endpoint
}

func (s served) sameSettings(o served) bool {
	return s.Name == o.Name && s.Model == o.Model && s.Version == o.Version &&
		s.WorkloadSize == o.WorkloadSize && s.WorkloadType == o.WorkloadType &&
		s.ScaleToZero == o.ScaleToZero && maps.Equal(s.EnvVars, o.EnvVars) && s.Traffic == o.Traffic
}

// servedOf lists the served entities of a config with their traffic, in
// the order of the config.
func servedOf(cfg *serving.EndpointCoreConfigOutput) []served {
	if cfg == nil {
		return nil
	}
	traffic := routes(cfg.TrafficConfig)
	var out []served
	for _, e := range cfg.ServedEntities {
		out = append(out, served{
			Name: e.Name, Model: e.EntityName, Version: e.EntityVersion, WorkloadSize: e.WorkloadSize,
			WorkloadType: workloadType(string(e.WorkloadType)), ScaleToZero: e.ScaleToZeroEnabled,
			EnvVars: e.EnvironmentVars, Traffic: traffic[e.Name], State: deployment(e.State),
		})
	}
	if len(cfg.ServedEntities) > 0 {
		return out
	}
	for _, m := range cfg.ServedModels {
		out = append(out, served{
			Name: m.Name, Model: m.ModelName, Version: m.ModelVersion, WorkloadSize: m.WorkloadSize,
			WorkloadType: workloadType(string(m.WorkloadType)), ScaleToZero: m.ScaleToZeroEnabled,
			EnvVars: m.EnvironmentVars, Traffic: traffic[m.Name], State: deployment(m.State),
		})
	}
	return out
}

// workloadType is the API's default (CPU) when a config leaves it out.
func workloadType(t string) string {
	if t == "" {
		return string(serving.ServingModelWorkloadTypeCpu)
	}
	return t
}

func deployment(s *serving.ServedModelState) string {
	if s == nil {
		return ""
	}
	return string(s.Deployment)
}

// routes maps served entity names to their traffic percentage. Routes name
// the entity in served_model_name or (newer) served_entity_name.
func routes(tc *serving.TrafficConfig) map[string]int {
	out := map[string]int{}
	if tc == nil {
		return out
	}
	for _, r := range tc.Routes {
		name := r.ServedModelName
		if name == "" {
			name = r.ServedEntityName
		}
		out[name] += r.TrafficPercentage
	}
	return out
}

// plan is what the task will ask of the endpoint.
type plan struct {
	create    bool
	config    serving.EndpointCoreConfigInput
	want      []served                         // the served entities config asks for
	newName   string                           // served entity of the version being deployed
	traffic   int                              // its share of traffic
	stable    string                           // served entity kept next to a canary ("" for none)
	dropped   []string                         // served entities the new config no longer has
	previous  *serving.EndpointCoreConfigInput // what to put back on rollback (nil: nothing)
	before    []served                         // what the endpoint served before the step
	tags      []serving.EndpointTag            // tags to add or update
	unchanged bool                             // the endpoint already serves exactly config
	notes     []string                         // warnings about the plan
}

// planFor decides the config that serves o's model version on the endpoint
// ep (nil when the endpoint does not exist yet).
func planFor(o Options, ep *serving.ServingEndpointDetailed) plan {
	p := plan{create: ep == nil, newName: servedName(o.Model, o.Version), traffic: o.TrafficPercent}
	newEntity := served{
		Name: p.newName, Model: o.Model, Version: o.Version, WorkloadSize: o.WorkloadSize,
		WorkloadType: string(o.WorkloadType), ScaleToZero: o.ScaleToZero, EnvVars: o.EnvVars,
	}
	var current *serving.EndpointCoreConfigOutput
	if ep != nil {
		current = ep.Config
	}
	p.before = servedOf(current)
	if current != nil {
		prev := restorable(current)
		p.previous = &prev
	}

	// The version served now: the other entity with the most traffic.
	var stable *served
	for i, s := range p.before {
		if s.Name == p.newName || (s.Model == o.Model && s.Version == o.Version) {
			continue
		}
		if stable == nil || s.Traffic > stable.Traffic {
			stable = &p.before[i]
		}
	}
	if p.traffic < 100 && stable == nil {
		p.notes = append(p.notes, fmt.Sprintf("a canary of %d%% needs another version served next to it, and the endpoint serves none: %s gets all traffic", p.traffic, p.newName))
		p.traffic = 100
	}
	newEntity.Traffic = p.traffic
	p.want = []served{newEntity}
	if p.traffic < 100 {
		keep := *stable
		keep.Traffic = 100 - p.traffic
		keep.State = ""
		p.stable = keep.Name
		p.want = []served{keep, newEntity}
	}
	for _, s := range p.before {
		if !slices.ContainsFunc(p.want, func(w served) bool { return w.Name == s.Name }) {
			p.dropped = append(p.dropped, s.Name)
		}
	}
	p.config = configInput(p.want)
	if current != nil {
		p.config.AutoCaptureConfig = autoCapture(current.AutoCaptureConfig)
		// The entity kept next to a canary keeps every setting it has,
		// including those this task does not manage.
		for i, e := range p.config.ServedEntities {
			if full, ok := entityInputs(current)[e.Name]; ok && e.Name == p.stable {
				p.config.ServedEntities[i] = full
			}
		}
	}

	var tags []serving.EndpointTag
	if ep != nil {
		tags = ep.Tags
	}
	for _, t := range o.Tags {
		if !slices.ContainsFunc(tags, func(have serving.EndpointTag) bool { return have.Key == t.Key && have.Value == t.Value }) {
			p.tags = append(p.tags, t)
		}
	}
	p.unchanged = ep != nil && sameServed(p.want, p.before)
	return p
}

// sameServed reports whether two lists name the same entities with the same
// settings and traffic, in any order.
func sameServed(a, b []served) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y served) bool { return x.sameSettings(y) }) {
			return false
		}
	}
	return true
}

// configInput is the config that serves these entities with their traffic.
func configInput(want []served) serving.EndpointCoreConfigInput {
	cfg := serving.EndpointCoreConfigInput{TrafficConfig: &serving.TrafficConfig{}}
	for _, s := range want {
		cfg.ServedEntities = append(cfg.ServedEntities, serving.ServedEntityInput{
			Name: s.Name, EntityName: s.Model, EntityVersion: s.Version, WorkloadSize: s.WorkloadSize,
			WorkloadType: serving.ServingModelWorkloadType(s.WorkloadType), ScaleToZeroEnabled: s.ScaleToZero,
			EnvironmentVars: s.EnvVars, ForceSendFields: []string{"ScaleToZeroEnabled"},
		})
		cfg.TrafficConfig.Routes = append(cfg.TrafficConfig.Routes, serving.Route{ServedModelName: s.Name, TrafficPercentage: s.Traffic})
	}
	return cfg
}

// restorable turns the config an endpoint serves into the input that puts it
// back exactly: every served entity (or, when the config answered none,
// served model) with all its settings, the routes and the inference table
// settings. It never has both lists.
func restorable(cfg *serving.EndpointCoreConfigOutput) serving.EndpointCoreConfigInput {
	in := serving.EndpointCoreConfigInput{AutoCaptureConfig: autoCapture(cfg.AutoCaptureConfig)}
	for _, e := range cfg.ServedEntities {
		in.ServedEntities = append(in.ServedEntities, serving.ServedEntityInput{
			Name: e.Name, EntityName: e.EntityName, EntityVersion: e.EntityVersion, EnvironmentVars: e.EnvironmentVars,
			ExternalModel: e.ExternalModel, InstanceProfileArn: e.InstanceProfileArn,
			MaxProvisionedConcurrency: e.MaxProvisionedConcurrency, MaxProvisionedThroughput: e.MaxProvisionedThroughput,
			MinProvisionedConcurrency: e.MinProvisionedConcurrency, MinProvisionedThroughput: e.MinProvisionedThroughput,
			ProvisionedModelUnits: e.ProvisionedModelUnits, ScaleToZeroEnabled: e.ScaleToZeroEnabled,
			WorkloadSize: e.WorkloadSize, WorkloadType: e.WorkloadType, ForceSendFields: []string{"ScaleToZeroEnabled"},
		})
	}
	if len(cfg.ServedEntities) == 0 { // else served_models lists the same entities again
		for _, m := range cfg.ServedModels {
			in.ServedModels = append(in.ServedModels, serving.ServedModelInput{
				Name: m.Name, ModelName: m.ModelName, ModelVersion: m.ModelVersion, EnvironmentVars: m.EnvironmentVars,
				InstanceProfileArn: m.InstanceProfileArn, MaxProvisionedConcurrency: m.MaxProvisionedConcurrency,
				MinProvisionedConcurrency: m.MinProvisionedConcurrency, ProvisionedModelUnits: m.ProvisionedModelUnits,
				ScaleToZeroEnabled: m.ScaleToZeroEnabled, WorkloadSize: m.WorkloadSize,
				WorkloadType: serving.ServedModelInputWorkloadType(m.WorkloadType),
			})
		}
	}
	if cfg.TrafficConfig != nil {
		in.TrafficConfig = &serving.TrafficConfig{Routes: slices.Clone(cfg.TrafficConfig.Routes)}
	}
	return in
}

// entityInputs is every served entity of a config as a served entity input
// with all its settings, by name; served models (the older field) become
// served entities of the same model version.
func entityInputs(cfg *serving.EndpointCoreConfigOutput) map[string]serving.ServedEntityInput {
	in := restorable(cfg)
	out := map[string]serving.ServedEntityInput{}
	for _, e := range in.ServedEntities {
		out[e.Name] = e
	}
	for _, m := range in.ServedModels {
		out[m.Name] = serving.ServedEntityInput{
			Name: m.Name, EntityName: m.ModelName, EntityVersion: m.ModelVersion, EnvironmentVars: m.EnvironmentVars,
			InstanceProfileArn: m.InstanceProfileArn, MaxProvisionedConcurrency: m.MaxProvisionedConcurrency,
			MaxProvisionedThroughput: m.MaxProvisionedThroughput, MinProvisionedConcurrency: m.MinProvisionedConcurrency,
			MinProvisionedThroughput: m.MinProvisionedThroughput, ProvisionedModelUnits: m.ProvisionedModelUnits,
			ScaleToZeroEnabled: m.ScaleToZeroEnabled, WorkloadSize: m.WorkloadSize,
			WorkloadType: serving.ServingModelWorkloadType(m.WorkloadType), ForceSendFields: []string{"ScaleToZeroEnabled"},
		}
	}
	return out
}

func autoCapture(c *serving.AutoCaptureConfigOutput) *serving.AutoCaptureConfigInput {
	if c == nil {
		return nil
	}
	return &serving.AutoCaptureConfigInput{CatalogName: c.CatalogName, SchemaName: c.SchemaName, TableNamePrefix: c.TableNamePrefix, Enabled: c.Enabled, ForceSendFields: []string{"Enabled"}}
}

// servesConfig reports whether the endpoint's config serves the entities of
// want (settings and traffic).
func servesConfig(ep *serving.ServingEndpointDetailed, want []served) bool {
	return ep != nil && sameServed(want, servedOf(ep.Config))
}

// describeServed is a one-line list such as "churn-2 (v2) 90%, churn-3 (v3) 10%".
func describeServed(list []served) string {
	if len(list) == 0 {
		return "nothing"
	}
	parts := make([]string, 0, len(list))
	for _, s := range list {
		parts = append(parts, fmt.Sprintf("%s (%s v%s) %d%%", s.Name, s.Model, s.Version, s.Traffic))
	}
	return strings.Join(parts, ", ")
}
