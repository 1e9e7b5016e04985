package emulator

import (
	"net/http"
	"reflect"
	"slices"
)

// routes registers every emulated API. Anything else answers 404
// ENDPOINT_NOT_FOUND (see ServeHTTP). SOURCES.md, beside this file, cites
// where each route and the rules it enforces come from; a test keeps the two
// in step.
func (ws *Workspace) routes() {
	ws.oidcRoutes()
	ws.jobsRoutes()
	ws.mlflowRoutes()
	if ws.opts.MLflow == MLflow3 {
		ws.loggedModelRoutes() // an MLflow 2 workspace answers 404 ENDPOINT_NOT_FOUND
	}
	ws.artifactRoutes()
	ws.registryRoutes()
	ws.ucRoutes()
	ws.deploymentJobRoutes()
	ws.servingRoutes()
	ws.aiGatewayRoutes()
	ws.metricsRoutes()
	ws.dbfsRoutes()
	ws.filesRoutes()
	ws.workspaceRoutes()
	ws.reposRoutes()
	ws.sqlRoutes()
	ws.computeRoutes()
	ws.identityRoutes()
	ws.warehouseRoutes()
	ws.grantRoutes()
}

// Route is one route a workspace serves.
type Route struct {
	// Pattern is the net/http pattern: method and path, with wildcards
	// ("GET /api/2.0/serving-endpoints/{name}").
	Pattern string
	// Request is the type the route decodes the request's query (and JSON
	// body) into, strictly: the SDK's request type, or the emulator's own
	// for a route the SDK lacks. Nil for a route that reads a form or raw
	// bytes (OAuth token, invocations).
	Request reflect.Type
}

// Routes lists the routes the workspace serves, in registration order.
func (ws *Workspace) Routes() []Route {
	return append(slices.Clone(ws.mux.routes), ws.dataPlane.mux.routes...)
}

// routeMux is the workspace's ServeMux, keeping a list of what it serves.
// Every registration goes through route, HandleFunc and Handle included.
type routeMux struct {
	*http.ServeMux
	routes []Route
}

func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

// route registers h for pattern; request is as in Route.Request.
func (m *routeMux) route(pattern string, request reflect.Type, h http.HandlerFunc) {
	m.routes = append(m.routes, Route{Pattern: pattern, Request: request})
	m.ServeMux.HandleFunc(pattern, h)
}

// HandleFunc registers a route that decodes nothing itself.
func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.route(pattern, nil, h)
}

// Handle registers a route that decodes nothing itself.
func (m *routeMux) Handle(pattern string, h http.Handler) { m.route(pattern, nil, h.ServeHTTP) }
