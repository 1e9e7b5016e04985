package emulator

import (
	"net/http"
	"reflect"
	"strings"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/serving"
)

// A serving endpoint's AI Gateway (PUT /api/2.0/serving-endpoints/{name}/ai-gateway,
// databricks-sdk-go v0.81.0 serving.ServingEndpointsAPI.PutAiGateway) and the
// Unity Catalog schemas an inference table is written to.
//
// The request replaces the whole AI Gateway config (a field left out is
// turned off), as the SDK's PutAiGatewayRequest carries every part and the
// REST reference documents the PUT as "Used to update the AI Gateway of a
// serving endpoint". Rules, with their sources in SOURCES.md:
//   - an enabled inference table needs catalog_name and schema_name, and
//     the schema must exist (SDK doc AiGatewayInferenceTableConfig:
//     "Required when enabling inference tables");
//   - an enabled inference table cannot move to another catalog, schema or
//     prefix: it must be disabled first (SDK doc: "On update, you have to
//     disable inference table first in order to change the catalog name");
//   - a rate limit's renewal_period must be minute, its key one of endpoint,
//     user, user_group, service_principal, and it limits calls or tokens
//     (SDK doc AiGatewayRateLimit);
//   - while a config update is in progress the gateway is not changed (409,
//     **unverified**, as strict as a config update).

// CreateSchema makes a Unity Catalog schema (and its catalog) exist, for
// GET /api/2.1/unity-catalog/schemas/{full_name} and AI Gateway inference
// tables. Catalogs and schemas are otherwise not modelled (see uc.go).
func (ws *Workspace) CreateSchema(catalogName, schemaName string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.uc.schemas == nil {
		ws.uc.schemas = map[string]bool{}
	}
	ws.uc.schemas[strings.ToLower(catalogName)] = true
	ws.uc.schemas[strings.ToLower(catalogName+"."+schemaName)] = true
}

// ucSchema is the schema catalog.schema, or the answer Unity Catalog gives
// when it or its catalog does not exist. The error codes are **unverified**
// (the status, 404, is what the SDK maps to ErrNotFound).
func (ws *Workspace) ucSchema(catalogName, schemaName string) (*catalog.SchemaInfo, *apiError) {
	if !ws.uc.schemas[strings.ToLower(catalogName)] {
		return nil, errorf(http.StatusNotFound, "CATALOG_DOES_NOT_EXIST", "Catalog '%s' does not exist.", catalogName)
	}
	full := catalogName + "." + schemaName
	if !ws.uc.schemas[strings.ToLower(full)] {
		return nil, errorf(http.StatusNotFound, "SCHEMA_DOES_NOT_EXIST", "Schema '%s' does not exist.", full)
	}
	return &catalog.SchemaInfo{CatalogName: catalogName, Name: schemaName, FullName: full, Owner: ws.UserName}, nil
}

func (ws *Workspace) aiGatewayRoutes() {
	handle(ws, "GET /api/2.1/unity-catalog/schemas/{full_name}", func(r *http.Request, req *catalog.GetSchemaRequest) (any, *apiError) {
		full := r.PathValue("full_name")
		cat, sch, ok := strings.Cut(full, ".")
		if !ok || cat == "" || sch == "" || strings.Contains(sch, ".") {
			return nil, invalidParam("'%s' is not a valid schema name: use <catalog>.<schema>.", full)
		}
		return ws.ucSchema(cat, sch)
	})
	handle(ws, "PUT /api/2.0/serving-endpoints/{name}/ai-gateway", func(r *http.Request, req *serving.PutAiGatewayRequest) (any, *apiError) {
		e, aerr := ws.endpoint(r.PathValue("name"))
		if aerr != nil {
			return nil, aerr
		}
		if e.pending != nil {
			return nil, errorf(http.StatusConflict, "RESOURCE_CONFLICT", "Endpoint %s is currently being updated. Please wait for the update to finish.", e.name)
		}
		if aerr := ws.checkInferenceTable(e.aiGateway, req.InferenceTableConfig); aerr != nil {
			return nil, aerr
		}
		for _, rl := range req.RateLimits {
			if aerr := checkRateLimit(rl); aerr != nil {
				return nil, aerr
			}
		}
		gw := &serving.AiGatewayConfig{
			FallbackConfig: req.FallbackConfig, Guardrails: req.Guardrails, InferenceTableConfig: req.InferenceTableConfig,
			RateLimits: req.RateLimits, UsageTrackingConfig: req.UsageTrackingConfig,
		}
		if reflect.ValueOf(*gw).IsZero() {
			gw = nil
		}
		e.aiGateway = gw
		return &serving.PutAiGatewayResponse{
			FallbackConfig: req.FallbackConfig, Guardrails: req.Guardrails, InferenceTableConfig: req.InferenceTableConfig,
			RateLimits: req.RateLimits, UsageTrackingConfig: req.UsageTrackingConfig,
		}, nil
	})
}

func (ws *Workspace) checkInferenceTable(current *serving.AiGatewayConfig, it *serving.AiGatewayInferenceTableConfig) *apiError {
	if it == nil || !it.Enabled {
		return nil
	}
	if it.CatalogName == "" || it.SchemaName == "" {
		return invalidParam("catalog_name and schema_name are required when enabling inference tables.")
	}
	if _, aerr := ws.ucSchema(it.CatalogName, it.SchemaName); aerr != nil {
		return aerr
	}
	if current == nil || current.InferenceTableConfig == nil || !current.InferenceTableConfig.Enabled {
		return nil
	}
	have := current.InferenceTableConfig
	if have.CatalogName != it.CatalogName || have.SchemaName != it.SchemaName || have.TableNamePrefix != it.TableNamePrefix {
		return invalidParam("The inference table is enabled in %s.%s with prefix '%s': disable it first to change its catalog, schema or table name prefix.",
			have.CatalogName, have.SchemaName, have.TableNamePrefix)
	}
	return nil
}

func checkRateLimit(rl serving.AiGatewayRateLimit) *apiError {
	if rl.RenewalPeriod != serving.AiGatewayRateLimitRenewalPeriodMinute {
		return invalidParam("renewal_period must be 'minute', got '%s'.", rl.RenewalPeriod)
	}
	switch rl.Key {
	case "", serving.AiGatewayRateLimitKeyEndpoint, serving.AiGatewayRateLimitKeyUser:
	case serving.AiGatewayRateLimitKeyUserGroup, serving.AiGatewayRateLimitKeyServicePrincipal:
		if rl.Principal == "" {
			return invalidParam("A rate limit with key '%s' needs a principal.", rl.Key)
		}
	default:
		return invalidParam("Rate limit key '%s' is not one of endpoint, user, user_group, service_principal.", rl.Key)
	}
	if rl.Calls <= 0 && rl.Tokens <= 0 {
		return invalidParam("A rate limit needs calls or tokens greater than 0.")
	}
	return nil
}
