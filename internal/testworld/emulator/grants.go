package emulator

import (
	"net/http"
	"slices"
	"strings"

	"github.com/databricks/databricks-sdk-go/service/catalog"
)

// Unity Catalog grants, read-only through the API: tests give them with
// Grant, and GET .../effective-permissions answers them with the privileges
// inherited from the parent catalog and schema ("Securable objects in Unity
// Catalog are hierarchical and privileges are inherited downward",
// Microsoft Learn "Unity Catalog privileges and securable objects"; SDK doc
// GrantsAPI.GetEffective: "Includes inherited permissions from any parent
// securables"). Catalogs, schemas and tables are not otherwise modelled: their
// effective permissions are answered whether or not they exist; a model
// (securable type FUNCTION, as registered models are granted) must exist.

type grant struct {
	securable  catalog.SecurableType
	fullName   string // lower case
	principal  string
	privileges []catalog.Privilege
}

// Grant grants privileges on a securable (CATALOG main, SCHEMA main.ml,
// FUNCTION main.ml.churn for a registered model, TABLE main.ml.customers) to
// principal, as GRANT ... ON ... TO does.
func (ws *Workspace) Grant(securable catalog.SecurableType, fullName, principal string, privileges ...catalog.Privilege) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.uc.grants = append(ws.uc.grants, grant{securable: securable, fullName: strings.ToLower(fullName), principal: principal, privileges: privileges})
}

// ancestors are the securable and the parents it inherits from, nearest
// first: c.s.x → [(type, c.s.x), (SCHEMA, c.s), (CATALOG, c)].
func ancestors(t catalog.SecurableType, fullName string) [][2]string {
	out := [][2]string{{string(t), fullName}}
	parts := strings.Split(fullName, ".")
	if t != catalog.SecurableTypeSchema && t != catalog.SecurableTypeCatalog && len(parts) == 3 {
		out = append(out, [2]string{string(catalog.SecurableTypeSchema), parts[0] + "." + parts[1]})
	}
	if t != catalog.SecurableTypeCatalog && len(parts) >= 2 {
		out = append(out, [2]string{string(catalog.SecurableTypeCatalog), parts[0]})
	}
	return out
}

func (ws *Workspace) grantRoutes() {
	handle(ws, "GET /api/2.1/unity-catalog/effective-permissions/{securable_type}/{full_name}", func(r *http.Request, req *catalog.GetEffectiveRequest) (any, *apiError) {
		t := catalog.SecurableType(strings.ToUpper(r.PathValue("securable_type")))
		name := strings.ToLower(r.PathValue("full_name"))
		var want int
		switch t {
		case catalog.SecurableTypeCatalog:
			want = 1
		case catalog.SecurableTypeSchema:
			want = 2
		case catalog.SecurableTypeFunction, catalog.SecurableTypeTable:
			want = 3
		default:
			return nil, invalidParam("Unsupported securable type %s.", r.PathValue("securable_type"))
		}
		if len(strings.Split(name, ".")) != want {
			return nil, invalidParam("Invalid %s name '%s'.", strings.ToLower(string(t)), r.PathValue("full_name"))
		}
		if t == catalog.SecurableTypeFunction {
			if _, aerr := ws.ucModel(name); aerr != nil {
				return nil, aerr
			}
		}
		byPrincipal := map[string][]catalog.EffectivePrivilege{}
		for i, a := range ancestors(t, name) {
			for _, g := range ws.uc.grants {
				if string(g.securable) != a[0] || g.fullName != a[1] || (req.Principal != "" && g.principal != req.Principal) {
					continue
				}
				for _, p := range g.privileges {
					ep := catalog.EffectivePrivilege{Privilege: p}
					if i > 0 {
						ep.InheritedFromType, ep.InheritedFromName = catalog.SecurableType(a[0]), a[1]
					}
					byPrincipal[g.principal] = append(byPrincipal[g.principal], ep)
				}
			}
		}
		resp := &catalog.EffectivePermissionsList{}
		principals := make([]string, 0, len(byPrincipal))
		for p := range byPrincipal {
			principals = append(principals, p)
		}
		slices.Sort(principals)
		for _, p := range principals {
			resp.PrivilegeAssignments = append(resp.PrivilegeAssignments, catalog.EffectivePrivilegeAssignment{Principal: p, Privileges: byPrincipal[p]})
		}
		return resp, nil
	})
}
