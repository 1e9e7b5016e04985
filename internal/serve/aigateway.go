package serve

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/serving"

	"github.com/brickferry/brickferry/internal/agent"
)

// Gateway is what the task was asked to set in the endpoint's AI Gateway
// (PUT /api/2.0/serving-endpoints/{name}/ai-gateway, databricks-sdk-go
// ServingEndpointsAPI.PutAiGateway). Each part left unset keeps what the
// endpoint has; guardrails and fallbacks are never touched.
//
// Inference tables are the AI Gateway ones: legacy inference tables
// (auto_capture_config) cannot be enabled after 2026-02-20 and are
// unsupported after 2026-03-20 (Databricks docs, "Inference tables for
// monitoring and debugging models"), so the task never sends one on a new
// endpoint.
type Gateway struct {
	InferenceCatalog string // "" keeps the inference table as it is
	InferenceSchema  string
	InferencePrefix  string
	UsageTracking    string // keep, on or off
	RateLimits       []serving.AiGatewayRateLimit
	SetRateLimits    bool // the rate limits input was given ("none" clears them)
}

// set reports whether any part of the AI Gateway was asked for.
func (g Gateway) set() bool {
	return g.InferenceCatalog != "" || g.UsageTracking == "on" || g.UsageTracking == "off" || g.SetRateLimits
}

// rateLimitKeys are the keys an AI Gateway rate limit counts calls by
// (SDK doc AiGatewayRateLimit.Key).
var rateLimitKeys = []string{"endpoint", "user", "user_group", "service_principal"}

// readGateway reads the AI Gateway inputs.
func readGateway(in *agent.Inputs) Gateway {
	g := Gateway{UsageTracking: in.Choice("usageTracking")}
	if g.UsageTracking == "" {
		g.UsageTracking = "keep"
	}
	if s := in.String("inferenceTableSchema"); s != "" {
		cat, sch, ok := strings.Cut(s, ".")
		if !ok || !ucName.MatchString(cat) || !ucName.MatchString(sch) {
			in.Fail("inferenceTableSchema", "%q is not a Unity Catalog schema: give catalog.schema, e.g. main.serving_logs", agent.Neutralize(s))
		} else {
			g.InferenceCatalog, g.InferenceSchema = cat, sch
		}
	}
	g.InferencePrefix = in.String("inferenceTablePrefix")
	if g.InferencePrefix != "" {
		if g.InferenceCatalog == "" {
			in.Fail("inferenceTablePrefix", "a table name prefix needs an inference table schema (inferenceTableSchema)")
		} else if !ucName.MatchString(g.InferencePrefix) {
			in.Fail("inferenceTablePrefix", "%q is not a table name prefix: use letters, digits and underscores", agent.Neutralize(g.InferencePrefix))
		}
	}
	lines := in.Lines("rateLimits")
	if len(lines) == 1 && strings.EqualFold(lines[0], "none") {
		g.SetRateLimits = true
		return g
	}
	for _, line := range lines {
		rl, err := parseRateLimit(line)
		if err != nil {
			in.Fail("rateLimits", "%q: %v", agent.Neutralize(line), err)
			continue
		}
		g.RateLimits = append(g.RateLimits, rl)
		g.SetRateLimits = true
	}
	return g
}

// ucName is a Unity Catalog name part this task accepts (no quoting).
var ucName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// parseRateLimit reads "key[:principal]=calls" (calls per minute).
func parseRateLimit(line string) (serving.AiGatewayRateLimit, error) {
	k, v, ok := strings.Cut(line, "=")
	if !ok {
		return serving.AiGatewayRateLimit{}, fmt.Errorf("give key=calls per minute, e.g. endpoint=1000, user=60, user_group:analysts=200 or service_principal:<application id>=100")
	}
	key, principal, _ := strings.Cut(strings.TrimSpace(k), ":")
	if !slices.Contains(rateLimitKeys, key) {
		return serving.AiGatewayRateLimit{}, fmt.Errorf("%q is not a rate limit key: use one of %s", agent.Neutralize(key), strings.Join(rateLimitKeys, ", "))
	}
	needs := key == "user_group" || key == "service_principal"
	switch {
	case needs && principal == "":
		return serving.AiGatewayRateLimit{}, fmt.Errorf("a %s limit names its principal: %s:<name>=calls", key, key)
	case !needs && principal != "" && key == "endpoint":
		return serving.AiGatewayRateLimit{}, fmt.Errorf("an endpoint limit has no principal")
	}
	calls, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || calls < 1 {
		return serving.AiGatewayRateLimit{}, fmt.Errorf("%q is not a number of calls per minute (1 or more)", agent.Neutralize(strings.TrimSpace(v)))
	}
	return serving.AiGatewayRateLimit{
		Key: serving.AiGatewayRateLimitKey(key), Principal: principal, Calls: calls,
		RenewalPeriod: serving.AiGatewayRateLimitRenewalPeriodMinute,
	}, nil
}

// checkInferenceSchema makes sure the inference table's schema exists,
// before anything is written: Databricks would otherwise refuse the AI
// Gateway config after the endpoint was already created or updated.
func (s *step) checkInferenceSchema(ctx context.Context) error {
	g := s.o.Gateway
	if g.InferenceCatalog == "" {
		return nil
	}
	full := g.InferenceCatalog + "." + g.InferenceSchema
	_, err := catalog.NewSchemas(s.c).Get(ctx, catalog.GetSchemaRequest{FullName: full})
	var apiErr *apierr.APIError
	switch {
	case errors.Is(err, apierr.ErrNotFound) && errors.As(err, &apiErr):
		return fmt.Errorf("inferenceTableSchema: %s: %s (create the schema, or give one that exists; nothing was changed)", full, apiErr.Message)
	case err != nil:
		return fmt.Errorf("inferenceTableSchema: reading Unity Catalog schema %s: %w", full, err)
	}
	s.log.Info("Inference tables go to Unity Catalog schema %s.", full)
	return nil
}

// gatewayFor is the AI Gateway config to put on an endpoint that has have
// (nil: none), and whether it differs from have.
func gatewayFor(g Gateway, have *serving.AiGatewayConfig) (serving.PutAiGatewayRequest, bool) {
	var req serving.PutAiGatewayRequest
	if have != nil {
		req = serving.PutAiGatewayRequest{
			FallbackConfig: have.FallbackConfig, Guardrails: have.Guardrails, InferenceTableConfig: have.InferenceTableConfig,
			RateLimits: have.RateLimits, UsageTrackingConfig: have.UsageTrackingConfig,
		}
	}
	before := req
	if g.InferenceCatalog != "" {
		req.InferenceTableConfig = &serving.AiGatewayInferenceTableConfig{
			CatalogName: g.InferenceCatalog, SchemaName: g.InferenceSchema, TableNamePrefix: g.InferencePrefix, Enabled: true,
		}
	}
	switch g.UsageTracking {
	case "on":
		req.UsageTrackingConfig = &serving.AiGatewayUsageTrackingConfig{Enabled: true}
	case "off":
		req.UsageTrackingConfig = &serving.AiGatewayUsageTrackingConfig{Enabled: false, ForceSendFields: []string{"Enabled"}}
	}
	if g.SetRateLimits {
		req.RateLimits = g.RateLimits
	}
	return req, !sameGateway(before, req)
}

// sameGateway compares two AI Gateway configs by what they turn on.
func sameGateway(a, b serving.PutAiGatewayRequest) bool {
	norm := func(r serving.PutAiGatewayRequest) serving.PutAiGatewayRequest {
		switch {
		case r.UsageTrackingConfig != nil && r.UsageTrackingConfig.Enabled:
			r.UsageTrackingConfig = &serving.AiGatewayUsageTrackingConfig{Enabled: true}
		case r.UsageTrackingConfig != nil:
			r.UsageTrackingConfig = nil
		}
		if it := r.InferenceTableConfig; it != nil {
			if !it.Enabled {
				r.InferenceTableConfig = nil
			} else {
				r.InferenceTableConfig = &serving.AiGatewayInferenceTableConfig{CatalogName: it.CatalogName, SchemaName: it.SchemaName, TableNamePrefix: it.TableNamePrefix, Enabled: true}
			}
		}
		if len(r.RateLimits) == 0 {
			r.RateLimits = nil
		}
		for i := range r.RateLimits {
			r.RateLimits[i].ForceSendFields = nil
			if r.RateLimits[i].Key == "" {
				r.RateLimits[i].Key = serving.AiGatewayRateLimitKeyEndpoint
			}
		}
		return r
	}
	a.RateLimits, b.RateLimits = slices.Clone(a.RateLimits), slices.Clone(b.RateLimits)
	return reflect.DeepEqual(norm(a), norm(b))
}

// applyGateway puts the AI Gateway config the inputs ask for, once the
// endpoint's config update is over. An inference table that moves to
// another catalog, schema or prefix is disabled first, as Databricks
// requires (SDK doc AiGatewayInferenceTableConfig: "On update, you have to
// disable inference table first").
func (s *step) applyGateway(ctx context.Context, ep *serving.ServingEndpointDetailed) error {
	g := s.o.Gateway
	if !g.set() {
		if ep != nil && ep.AiGateway != nil {
			s.log.Info("AI Gateway: no AI Gateway input given; the endpoint's AI Gateway config is kept as it is.")
		}
		return nil
	}
	var have *serving.AiGatewayConfig
	if ep != nil {
		have = ep.AiGateway
	}
	req, changed := gatewayFor(g, have)
	req.Name = s.o.Endpoint
	if !changed {
		s.log.Info("AI Gateway: endpoint %s already has this config; nothing sent.", s.o.Endpoint)
		return nil
	}
	if have != nil && have.InferenceTableConfig != nil && have.InferenceTableConfig.Enabled && req.InferenceTableConfig != nil {
		old, now := have.InferenceTableConfig, req.InferenceTableConfig
		if old.CatalogName != now.CatalogName || old.SchemaName != now.SchemaName || old.TableNamePrefix != now.TableNamePrefix {
			s.log.Info("AI Gateway: the inference table moves from %s.%s (prefix %q) to %s.%s (prefix %q); disabling it first, as Databricks requires.",
				old.CatalogName, old.SchemaName, old.TableNamePrefix, now.CatalogName, now.SchemaName, now.TableNamePrefix)
			off := req
			off.InferenceTableConfig = &serving.AiGatewayInferenceTableConfig{Enabled: false, ForceSendFields: []string{"Enabled"}}
			if _, err := s.api.PutAiGateway(ctx, off); err != nil {
				return fmt.Errorf("disabling the inference table of endpoint %s: %w", s.o.Endpoint, err)
			}
		}
	}
	if _, err := s.api.PutAiGateway(ctx, req); err != nil {
		return fmt.Errorf("setting the AI Gateway of endpoint %s: %w", s.o.Endpoint, err)
	}
	s.gateway = describeGateway(req)
	s.log.Info("AI Gateway of endpoint %s set: %s.", s.o.Endpoint, s.gateway)
	return nil
}

// describeGateway is one line: "inference table main.logs (prefix churn),
// usage tracking on, rate limits endpoint 1000/min, user 60/min".
func describeGateway(r serving.PutAiGatewayRequest) string {
	var parts []string
	if it := r.InferenceTableConfig; it != nil && it.Enabled {
		p := "inference table " + it.CatalogName + "." + it.SchemaName
		if it.TableNamePrefix != "" {
			p += " (prefix " + it.TableNamePrefix + ")"
		}
		parts = append(parts, p)
	} else {
		parts = append(parts, "no inference table")
	}
	if r.UsageTrackingConfig != nil && r.UsageTrackingConfig.Enabled {
		parts = append(parts, "usage tracking on")
	} else {
		parts = append(parts, "usage tracking off")
	}
	if len(r.RateLimits) == 0 {
		parts = append(parts, "no rate limits")
	} else {
		var rl []string
		for _, l := range r.RateLimits {
			k := string(l.Key)
			if k == "" {
				k = "endpoint"
			}
			if l.Principal != "" {
				k += " " + l.Principal
			}
			rl = append(rl, fmt.Sprintf("%s %d/min", k, l.Calls))
		}
		parts = append(parts, "rate limits "+strings.Join(rl, ", "))
	}
	return strings.Join(parts, ", ")
}
