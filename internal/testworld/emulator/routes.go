package emulator

// routes registers every emulated API. Anything else answers 404
// ENDPOINT_NOT_FOUND (see ServeHTTP).
func (ws *Workspace) routes() {
	ws.oidcRoutes()
	ws.jobsRoutes()
	ws.mlflowRoutes()
	ws.artifactRoutes()
	ws.registryRoutes()
	ws.ucRoutes()
	ws.servingRoutes()
	ws.dbfsRoutes()
	ws.filesRoutes()
	ws.workspaceRoutes()
	ws.reposRoutes()
	ws.sqlRoutes()
	ws.computeRoutes()
	ws.identityRoutes()
	ws.warehouseRoutes()
}
