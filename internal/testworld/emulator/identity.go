package emulator

import (
	"net/http"
	"strconv"

	"github.com/databricks/databricks-sdk-go/service/iam"
)

// Who the caller is, and which workspace answers.
//
// GET /api/2.0/preview/scim/v2/Me answers the calling identity as an
// iam.User (databricks-sdk-go service/iam impl.go, CurrentUser.Me) and names
// the workspace in the X-Databricks-Org-Id response header, which is how
// databricks-sdk-go reads a workspace's id (workspace_functions.go
// CurrentWorkspaceID) and how databricks/cli's test server answers the route
// (libs/testserver/handlers.go).
func (ws *Workspace) identityRoutes() {
	ws.mux.HandleFunc("GET /api/2.0/preview/scim/v2/Me", func(w http.ResponseWriter, r *http.Request) {
		principal := ""
		if rec := recordOf(r); rec != nil {
			principal = rec.Principal
		}
		w.Header().Set("X-Databricks-Org-Id", strconv.FormatInt(ws.WorkspaceID, 10))
		writeJSON(w, http.StatusOK, iam.User{
			Id: principal, UserName: principal, Active: true,
			Schemas: []iam.UserSchema{iam.UserSchemaUrnIetfParamsScimSchemasCore20User},
		})
	})
}
