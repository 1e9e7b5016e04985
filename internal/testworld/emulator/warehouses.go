package emulator

import (
	"maps"
	"net/http"
	"slices"

	"github.com/databricks/databricks-sdk-go/service/sql"
)

// SQL warehouses, read-only: tests add them with AddWarehouse.
//
// GET /api/2.0/sql/warehouses/{id} answers the warehouse
// (databricks-sdk-go service/sql impl.go, Warehouses.Get); an unknown id is
// a 404, as databricks/cli's test server answers it
// (libs/testserver/sql_warehouses.go, handlers.go).

// AddWarehouse makes sql/warehouses/{id} know w (by w.Id). A warehouse
// without a state is RUNNING.
func (ws *Workspace) AddWarehouse(w sql.GetWarehouseResponse) {
	if w.State == "" {
		w.State = sql.StateRunning
	}
	if w.Name == "" {
		w.Name = w.Id
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.sql.warehouses[w.Id] = w
}

func (ws *Workspace) warehouseRoutes() {
	// Every warehouse (the workspace's user manages them all), by id.
	handle(ws, "GET /api/2.0/sql/warehouses", func(r *http.Request, req *sql.ListWarehousesRequest) (any, *apiError) {
		resp := &sql.ListWarehousesResponse{}
		for _, id := range slices.Sorted(maps.Keys(ws.sql.warehouses)) {
			var info sql.EndpointInfo
			if err := convert(ws.sql.warehouses[id], &info); err != nil {
				return nil, errorf(http.StatusInternalServerError, "INTERNAL_ERROR", "%v", err)
			}
			resp.Warehouses = append(resp.Warehouses, info)
		}
		return resp, nil
	})
	handle(ws, "GET /api/2.0/sql/warehouses/{id}", func(r *http.Request, req *sql.GetWarehouseRequest) (any, *apiError) {
		w, ok := ws.sql.warehouses[r.PathValue("id")]
		if !ok {
			return nil, notFound("SQL warehouse %s does not exist.", r.PathValue("id"))
		}
		return &w, nil
	})
}
