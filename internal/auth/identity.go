package auth

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/databricks/databricks-sdk-go/httpclient"
)

// WorkspaceID reads the id Azure Databricks knows the workspace by: the
// X-Databricks-Org-Id header of GET /api/2.0/preview/scim/v2/Me, which is how
// databricks-sdk-go reads it (workspace_functions.go CurrentWorkspaceID). Two
// URLs can reach one workspace (its adb-<id>.<n>.azuredatabricks.net name and
// a name of the organization's own, behind Private Link); the id tells them
// apart.
func (w *Workspace) WorkspaceID(ctx context.Context) (int64, error) {
	var header string
	err := w.Client.ApiClient().Do(w.Context(ctx), http.MethodGet, "/api/2.0/preview/scim/v2/Me",
		httpclient.WithResponseHeader("X-Databricks-Org-Id", &header))
	if err != nil {
		return 0, fmt.Errorf("reading the id of the %s %s: %w", w.Name, w.Host, w.Explain(err))
	}
	id, err := strconv.ParseInt(header, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the %s %s answered no workspace id (X-Databricks-Org-Id %q)", w.Name, w.Host, header)
	}
	return id, nil
}

// Distinct refuses two connections that reach one workspace, by host or by
// workspace id, before a task that must work on two workspaces (the copy
// from a source to a target) changes anything. The error says how each
// connection was resolved, so the input that points at the wrong workspace
// can be found.
func Distinct(ctx context.Context, a, b *Workspace) error {
	same := func(why string) error {
		return fmt.Errorf("the %s and the %s are the same workspace (%s): the %s's credentials are %s, the %s's are %s. "+
			"Point the %s's inputs at the other workspace (for a variable group: the group and suffix whose databricks-host is that workspace's URL)",
			a.Name, b.Name, why, a.Name, a.Principal, b.Name, b.Principal, b.Name)
	}
	if a.Host == b.Host {
		return same(a.Host)
	}
	idA, err := a.WorkspaceID(ctx)
	if err != nil {
		return err
	}
	idB, err := b.WorkspaceID(ctx)
	if err != nil {
		return err
	}
	if idA == idB {
		return same(fmt.Sprintf("workspace id %d, at %s and at %s", idA, a.Host, b.Host))
	}
	if a.log != nil {
		a.log.Info("The %s (%s, workspace id %d) and the %s (%s, workspace id %d) are two workspaces.", a.Name, a.Host, idA, b.Name, b.Host, idB)
	}
	return nil
}
