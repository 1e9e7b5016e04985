package emulator_test

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
	"golang.org/x/tools/go/types/typeutil"
)

// Which workspace routes databricks-sdk-go generates, and which the product
// calls, read from Go source with go/ast and go/types (no request is sent):
//
//   - sdkGenerated reads the SDK's generated service code in the module
//     cache (service/<pkg>/impl.go), where every method builds its path
//     (path := "..." or fmt.Sprintf("...", ...)) and sends it with
//     a.client.Do(ctx, http.MethodX, path, ...).
//   - productRoutes type-checks the product's packages and finds the requests
//     they send themselves (client.Do and http.NewRequest with a path on the
//     workspace host) and the SDK methods they call, which it follows through
//     the SDK's own code (API wrappers, waiters, paginators) to the requests
//     those send. A call through an interface goes to the SDK API types that
//     implement it (runwait.Runs → *jobs.JobsAPI). Not seen: a call through
//     a function value (f := api.Get; f(...)), and requests the SDK sends
//     outside its service packages (OAuth discovery in config, data plane
//     URLs).

const (
	sdkModule     = "github.com/databricks/databricks-sdk-go"
	sdkServices   = sdkModule + "/service/"
	productModule = "github.com/brickferry/brickferry"
	// repoRoot is the repository root seen from this package's directory,
	// where go test runs the package's tests.
	repoRoot = "../../.."
)

// apiRoute is an HTTP method and a path whose parameters are written "{}"
// (one path segment) or "{...}" (a path that brings its own leading slash,
// as the Files API's file_path does).
type apiRoute struct{ method, path string }

func (r apiRoute) String() string { return r.method + " " + r.path }

// muxWildcard matches a wildcard of a net/http pattern's path, with the
// slash before a multi-segment one.
var muxWildcard = regexp.MustCompile(`/\{[^{}]*\.\.\.\}|\{\$\}|\{[^{}]*\}`)

// patternRoute is the apiRoute of a net/http pattern with a method:
// "GET /a/{x}" is GET /a/{}, "/fs/files/{path...}" is /fs/files{...} and
// "/sql/statements/{$}" is /sql/statements/.
func patternRoute(pattern string) (apiRoute, bool) {
	method, p, ok := strings.Cut(pattern, " ")
	if !ok || method == "" || !strings.HasPrefix(p, "/") {
		return apiRoute{}, false
	}
	p = muxWildcard.ReplaceAllStringFunc(p, func(w string) string {
		switch {
		case w == "{$}":
			return ""
		case strings.HasSuffix(w, "...}"):
			return "{...}"
		}
		return "{}"
	})
	return apiRoute{method, p}, true
}

// formatVerb matches a verb of a fmt format.
var formatVerb = regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z%]`)

// sprintfPath is the path fmt.Sprintf(format, ...) builds: its i-th verb
// becomes "{...}" when multi(i) (its argument is a multi-segment path),
// "{}" otherwise.
func sprintfPath(format string, multi func(i int) bool) string {
	i := 0
	return formatVerb.ReplaceAllStringFunc(format, func(v string) string {
		if v == "%%" {
			return "%"
		}
		defer func() { i++ }()
		if multi(i) {
			return "{...}"
		}
		return "{}"
	})
}

// isMultiSegment reports whether e is a call of the SDK's
// httpclient.EncodeMultiSegmentPathParameter (a path parameter that keeps
// its slashes).
func isMultiSegment(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "EncodeMultiSegmentPathParameter"
}

// sdkMethod is one databricks-sdk-go service method as its generated code
// sends it.
type sdkMethod struct {
	route apiRoute
	// request is the method's request type ("jobs.SubmitRun"), "" when it
	// takes none.
	request string
	where   string // file:line of the method in the module cache
}

// sdkDir is databricks-sdk-go's directory in the module cache, the version
// go.mod requires.
func sdkDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", sdkModule).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", sdkModule, err)
	}
	return strings.TrimSpace(string(out))
}

// sdkGenerated reads every service/*/impl.go of the SDK. Keys name a method
// of a service's API type the way SOURCES.md does: "jobs.JobsAPI.Submit".
// A method without a request of its own (List) has the route of the
// method of its implementation it calls (internalList).
func sdkGenerated(t *testing.T, dir string) map[string]sdkMethod {
	t.Helper()
	impls, err := filepath.Glob(filepath.Join(dir, "service", "*", "impl.go"))
	if err != nil || len(impls) == 0 {
		t.Fatalf("no service/*/impl.go under %s (%v)", dir, err)
	}
	out := map[string]sdkMethod{}
	for _, impl := range impls {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, impl, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		api, err := apiTypes(filepath.Join(filepath.Dir(impl), "api.go"))
		if err != nil {
			t.Fatal(err)
		}
		pkg := f.Name.Name
		methods := map[string]*implMethod{} // "jobsImpl.Submit" →
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || fd.Body == nil {
				continue
			}
			m, err := readImplMethod(fd, pkg)
			if err != nil {
				t.Errorf("%s: %v", fset.Position(fd.Pos()), err)
				continue
			}
			m.where = fset.Position(fd.Pos()).String()
			methods[m.impl+"."+fd.Name.Name] = m
		}
		for key, m := range methods {
			impl, name, _ := strings.Cut(key, ".")
			if !ast.IsExported(name) || api[impl] == "" {
				continue
			}
			routes := implRoutes(methods, key, map[string]bool{})
			if len(routes) == 0 {
				// A data plane method (ServingEndpointsDataPlaneAPI.Query):
				// its URL comes from the control plane at run time.
				continue
			}
			if len(routes) != 1 {
				t.Errorf("%s: %s.%s.%s sends %d different requests %v; SOURCES.md expects one per method", m.where, pkg, api[impl], name, len(routes), routes)
				continue
			}
			out[pkg+"."+api[impl]+"."+name] = sdkMethod{route: routes[0], request: m.request, where: m.where}
		}
	}
	return out
}

// implMethod is a method of a service's generated implementation type.
type implMethod struct {
	impl    string     // "jobsImpl"
	routes  []apiRoute // requests it sends itself
	calls   []string   // methods of impl it calls
	request string
	where   string
}

// readImplMethod reads a generated method: the a.client.Do calls with their
// method and path, and the calls of other methods on the receiver.
func readImplMethod(fd *ast.FuncDecl, pkg string) (*implMethod, error) {
	recv := fd.Recv.List[0]
	star, ok := recv.Type.(*ast.StarExpr)
	if !ok {
		return nil, fmt.Errorf("method %s: receiver is not a pointer", fd.Name.Name)
	}
	typ, ok := star.X.(*ast.Ident)
	if !ok || len(recv.Names) != 1 {
		return nil, fmt.Errorf("method %s: unexpected receiver", fd.Name.Name)
	}
	m := &implMethod{impl: typ.Name}
	if params := fd.Type.Params.List; len(params) >= 2 {
		if id, ok := params[1].Type.(*ast.Ident); ok {
			m.request = pkg + "." + id.Name
		}
	}
	self := recv.Names[0].Name
	var err error
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || err != nil {
			return err == nil
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		switch x := sel.X.(type) {
		case *ast.Ident: // a.otherMethod(...)
			if x.Name == self {
				m.calls = append(m.calls, typ.Name+"."+sel.Sel.Name)
			}
		case *ast.SelectorExpr: // a.client.Do(ctx, http.MethodX, path, ...)
			if id, ok := x.X.(*ast.Ident); ok && id.Name == self && x.Sel.Name == "client" && sel.Sel.Name == "Do" {
				var r apiRoute
				if r, err = generatedRequest(call, fd.Body); err == nil {
					m.routes = append(m.routes, r)
				}
			}
		}
		return true
	})
	return m, err
}

// generatedRequest reads the method and path of a generated a.client.Do call.
func generatedRequest(call *ast.CallExpr, body *ast.BlockStmt) (apiRoute, error) {
	if len(call.Args) < 3 {
		return apiRoute{}, fmt.Errorf("client.Do with %d arguments", len(call.Args))
	}
	sel, ok := call.Args[1].(*ast.SelectorExpr)
	if !ok || !strings.HasPrefix(sel.Sel.Name, "Method") {
		return apiRoute{}, fmt.Errorf("client.Do method is not an http.MethodX constant")
	}
	method := strings.ToUpper(strings.TrimPrefix(sel.Sel.Name, "Method"))
	id, ok := call.Args[2].(*ast.Ident)
	if !ok {
		return apiRoute{}, fmt.Errorf("client.Do path is not a variable")
	}
	var value ast.Expr
	ast.Inspect(body, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok && len(as.Lhs) == 1 && len(as.Rhs) == 1 {
			if lhs, ok := as.Lhs[0].(*ast.Ident); ok && lhs.Name == id.Name {
				value = as.Rhs[0]
			}
		}
		return true
	})
	switch v := value.(type) {
	case *ast.BasicLit:
		s, err := strconv.Unquote(v.Value)
		return apiRoute{method, s}, err
	case *ast.CallExpr: // fmt.Sprintf("...%v...", args)
		if lit, ok := v.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			format, err := strconv.Unquote(lit.Value)
			args := v.Args[1:]
			return apiRoute{method, sprintfPath(format, func(i int) bool { return i < len(args) && isMultiSegment(args[i]) })}, err
		}
	}
	return apiRoute{}, fmt.Errorf("cannot read the path %s is assigned", id.Name)
}

// implRoutes is every request the implementation method key sends, itself
// or through the methods it calls.
func implRoutes(methods map[string]*implMethod, key string, seen map[string]bool) []apiRoute {
	m := methods[key]
	if m == nil || seen[key] {
		return nil
	}
	seen[key] = true
	routes := slices.Clone(m.routes)
	for _, c := range m.calls {
		for _, r := range implRoutes(methods, c, seen) {
			if !slices.Contains(routes, r) {
				routes = append(routes, r)
			}
		}
	}
	return routes
}

// apiTypes maps a service's implementation types to the API types that
// embed them, from its api.go: "jobsImpl" → "JobsAPI".
func apiTypes(file string) (map[string]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, s := range gd.Specs {
			ts := s.(*ast.TypeSpec)
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, f := range st.Fields.List {
				if id, ok := f.Type.(*ast.Ident); ok && len(f.Names) == 0 && strings.HasSuffix(id.Name, "Impl") {
					out[id.Name] = ts.Name.Name
				}
			}
		}
	}
	return out, nil
}

// productCall is one place where the product sends a request.
type productCall struct {
	route apiRoute
	where string // file:line, from the repository root
	via   string // the SDK method called there, "" for a request the product builds
}

// requestFunc says where the method and the path (or the URL) are among the
// arguments of a function that sends a request.
type requestFunc struct {
	method, path int
	url          bool // path is a full URL: only host + "/path" is a workspace route
}

// requestFuncOf says whether the function funcKey names sends a request
// from a method and a path or URL given as arguments, and where they are.
func requestFuncOf(key string) (requestFunc, bool) {
	switch key {
	case sdkModule + "/client.DatabricksClient.Do", sdkModule + "/httpclient.ApiClient.Do":
		return requestFunc{method: 1, path: 2}, true
	case "net/http.NewRequest":
		return requestFunc{method: 0, path: 1, url: true}, true
	case "net/http.NewRequestWithContext":
		return requestFunc{method: 1, path: 2, url: true}, true
	}
	return requestFunc{}, false
}

// funcKey names a function or method across type-checker universes:
// "<pkg path>.<name>" or "<pkg path>.<receiver type>.<name>".
func funcKey(f *types.Func) string {
	f = f.Origin()
	if recv := f.Type().(*types.Signature).Recv(); recv != nil {
		t := recv.Type()
		if p, ok := t.(*types.Pointer); ok {
			t = p.Elem()
		}
		if n, ok := types.Unalias(t).(*types.Named); ok && n.Obj().Pkg() != nil {
			return n.Obj().Pkg().Path() + "." + n.Obj().Name() + "." + f.Name()
		}
		return "(" + t.String() + ")." + f.Name()
	}
	if f.Pkg() == nil {
		return f.Name()
	}
	return f.Pkg().Path() + "." + f.Name()
}

// keyPackage is the package path of a funcKey.
func keyPackage(key string) string {
	slash := strings.LastIndex(key, "/")
	name, _, _ := strings.Cut(key[slash+1:], ".")
	return key[:slash+1] + name
}

// sdkName is how SOURCES.md and messages name an SDK function:
// "jobs.JobsAPI.Submit" for a key under service/.
func sdkName(key string) string { return strings.TrimPrefix(key, sdkServices) }

// loadMode is what the analysis needs of a package: its syntax and types.
const loadMode = packages.NeedName | packages.NeedFiles | packages.NeedImports |
	packages.NeedTypes | packages.NeedSyntax | packages.NeedTypesInfo

// load loads packages from source, with types; their imports come from
// export data.
func load(t *testing.T, patterns ...string) []*packages.Package {
	t.Helper()
	pkgs, err := packages.Load(&packages.Config{Mode: loadMode, Dir: repoRoot}, patterns...)
	if err != nil {
		t.Fatalf("loading %v: %v", patterns, err)
	}
	for _, p := range pkgs {
		for _, e := range p.Errors {
			t.Errorf("%s: %v", p.PkgPath, e)
		}
	}
	return pkgs
}

// isProduct reports whether a package of this module is part of the
// shipped product: internal/ but the test world, and cmd/brickferry.
func isProduct(path string) bool {
	rest, ok := strings.CutPrefix(path, productModule+"/")
	return ok && (strings.HasPrefix(rest, "internal/") && !strings.HasPrefix(rest, "internal/testworld") ||
		rest == "cmd/brickferry" || strings.HasPrefix(rest, "cmd/brickferry/"))
}

// funcDecl is a function's declaration with its package's type information.
type funcDecl struct {
	decl *ast.FuncDecl
	pkg  *packages.Package
}

// declsOf indexes the function declarations of pkgs by funcKey.
func declsOf(pkgs []*packages.Package) map[string]funcDecl {
	out := map[string]funcDecl{}
	for _, p := range pkgs {
		for _, f := range p.Syntax {
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
					if fn, ok := p.TypesInfo.Defs[fd.Name].(*types.Func); ok {
						out[funcKey(fn)] = funcDecl{fd, p}
					}
				}
			}
		}
	}
	return out
}

// productRoutes finds every request the product sends to a workspace.
func productRoutes(t *testing.T) []productCall {
	t.Helper()
	listed, err := packages.Load(&packages.Config{Mode: packages.NeedName, Dir: repoRoot}, "./internal/...", "./cmd/...")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range listed {
		if isProduct(p.PkgPath) {
			paths = append(paths, p.PkgPath)
		}
	}
	if len(paths) == 0 {
		t.Fatal("no product packages found")
	}
	product := load(t, paths...)
	a := &routeScan{t: t, decls: declsOf(product), sdkRoutes: map[string][]apiRoute{}}

	// The SDK service packages the product's code sees, for the calls made
	// through interfaces: the SDK's (jobs.JobsInterface) or the product's
	// own (a jobsAPI interface that *jobs.JobsAPI has).
	services := map[string]*types.Package{}
	var visit func(p *types.Package)
	visit = func(p *types.Package) {
		if _, seen := services[p.Path()]; seen {
			return
		}
		services[p.Path()] = p
		for _, q := range p.Imports() {
			visit(q)
		}
	}
	for _, p := range product {
		visit(p.Types)
	}
	for path, p := range services {
		if strings.HasPrefix(path, sdkServices) {
			a.serviceTypes = append(a.serviceTypes, apiStructs(p)...)
		}
	}

	// First pass: the product's own requests, and the SDK functions it calls.
	type sdkCall struct{ key, where string }
	var calls []sdkCall
	for _, p := range product {
		for _, f := range p.Syntax {
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				ast.Inspect(fd.Body, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok {
						return true
					}
					where := a.where(p, call.Pos())
					fn, _ := typeutil.Callee(p.TypesInfo, call).(*types.Func)
					if fn == nil {
						return true
					}
					key := funcKey(fn)
					if rf, ok := requestFuncOf(key); ok {
						for _, r := range a.request(p, fd, call, rf, where) {
							a.calls = append(a.calls, productCall{route: r, where: where})
						}
						return true
					}
					for _, k := range a.sdkCallees(fn, key) {
						calls = append(calls, sdkCall{k, where})
					}
					return true
				})
			}
		}
	}

	// Second pass: follow the SDK functions through the SDK's source.
	var sdkPkgs []string
	for _, c := range calls {
		if pkg := keyPackage(c.key); !slices.Contains(sdkPkgs, pkg) {
			sdkPkgs = append(sdkPkgs, pkg)
		}
	}
	slices.Sort(sdkPkgs)
	a.sdkDecls = declsOf(load(t, sdkPkgs...))
	for _, c := range calls {
		routes := a.sdkFunc(c.key, map[string]bool{})
		for _, r := range routes {
			a.calls = append(a.calls, productCall{route: r, where: c.where, via: sdkName(c.key)})
		}
	}
	return a.calls
}

// apiStructs are the service API types of an SDK package (JobsAPI, ...).
func apiStructs(p *types.Package) []*types.Named {
	var out []*types.Named
	for _, name := range p.Scope().Names() {
		tn, ok := p.Scope().Lookup(name).(*types.TypeName)
		if !ok || !strings.HasSuffix(name, "API") || !tn.Exported() {
			continue
		}
		if n, ok := tn.Type().(*types.Named); ok {
			if _, isStruct := n.Underlying().(*types.Struct); isStruct {
				out = append(out, n)
			}
		}
	}
	return out
}

// routeScan is the state of productRoutes.
type routeScan struct {
	t            *testing.T
	decls        map[string]funcDecl // the product's functions
	sdkDecls     map[string]funcDecl // the SDK's functions the product reaches
	serviceTypes []*types.Named      // SDK API types, as the product sees them
	sdkRoutes    map[string][]apiRoute
	calls        []productCall
}

func (a *routeScan) where(p *packages.Package, pos token.Pos) string {
	position := p.Fset.Position(pos)
	if abs, err := filepath.Abs(repoRoot); err == nil {
		if rel, err := filepath.Rel(abs, position.Filename); err == nil {
			position.Filename = rel
		}
	}
	return fmt.Sprintf("%s:%d", position.Filename, position.Line)
}

// sdkCallees are the SDK service functions a call of fn runs: fn itself when
// it is one, the methods of the SDK API types that implement fn's interface
// when fn is an interface method, nothing otherwise.
func (a *routeScan) sdkCallees(fn *types.Func, key string) []string {
	recv := fn.Type().(*types.Signature).Recv()
	isInterface := recv != nil && types.IsInterface(recv.Type())
	if !isInterface {
		if strings.HasPrefix(key, sdkServices) {
			return []string{key}
		}
		return nil
	}
	iface := recv.Type().Underlying().(*types.Interface)
	var out []string
	for _, n := range a.serviceTypes {
		ptr := types.NewPointer(n)
		if !types.Implements(ptr, iface) {
			continue
		}
		obj, _, _ := types.LookupFieldOrMethod(ptr, true, n.Obj().Pkg(), fn.Name())
		if m, ok := obj.(*types.Func); ok {
			out = append(out, funcKey(m))
		}
	}
	return out
}

// sdkFunc is every request an SDK function sends: by client.Do itself, or
// through the SDK functions it calls and the methods of the SDK types it
// makes (a paginator's or waiter's methods run later, on the value).
func (a *routeScan) sdkFunc(key string, stack map[string]bool) []apiRoute {
	if routes, ok := a.sdkRoutes[key]; ok {
		return routes
	}
	d, ok := a.sdkDecls[key]
	if !ok || stack[key] {
		return nil
	}
	stack[key] = true
	defer delete(stack, key)
	var routes []apiRoute
	add := func(rs []apiRoute) {
		for _, r := range rs {
			if !slices.Contains(routes, r) {
				routes = append(routes, r)
			}
		}
	}
	info := d.pkg.TypesInfo
	ast.Inspect(d.decl.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			fn, _ := typeutil.Callee(info, n).(*types.Func)
			if fn == nil {
				return true
			}
			k := funcKey(fn)
			if rf, ok := requestFuncOf(k); ok {
				add(a.request(d.pkg, d.decl, n, rf, a.where(d.pkg, n.Pos())))
			} else if _, ok := a.sdkDecls[k]; ok {
				add(a.sdkFunc(k, stack))
			}
		case *ast.CompositeLit:
			// A paginator's or waiter's methods; not a service's API
			// type, which a constructor makes (NewJobs), whose methods
			// are the ones the product calls.
			named, _ := types.Unalias(derefType(info.TypeOf(n))).(*types.Named)
			if named == nil || named.Obj().Pkg() == nil || !strings.HasPrefix(named.Obj().Pkg().Path(), sdkServices) ||
				strings.HasSuffix(named.Obj().Name(), "API") || strings.HasSuffix(named.Obj().Name(), "Impl") {
				return true
			}
			ms := types.NewMethodSet(types.NewPointer(named.Origin()))
			for i := range ms.Len() {
				add(a.sdkFunc(funcKey(ms.At(i).Obj().(*types.Func)), stack))
			}
		}
		return true
	})
	if len(stack) == 1 {
		a.sdkRoutes[key] = routes
	}
	return routes
}

func derefType(t types.Type) types.Type {
	if p, ok := t.(*types.Pointer); ok {
		return p.Elem()
	}
	return t
}

// request reads the route of a call of a request function. A path it cannot
// tell is an error (the test cannot check what it cannot see); a URL that is
// not the workspace host joined with a path (a signed storage URL, Azure
// DevOps) is not a workspace request and is left out.
func (a *routeScan) request(p *packages.Package, fd *ast.FuncDecl, call *ast.CallExpr, rf requestFunc, where string) []apiRoute {
	r := pathResolver{info: p.TypesInfo, fn: fd, decls: a.decls}
	methods := r.values(call.Args[rf.method], 0)
	paths := r.values(call.Args[rf.path], 0)
	var out []apiRoute
	for _, m := range methods {
		if strings.Contains(m, "{}") {
			a.t.Errorf("%s: cannot tell the HTTP method of this request; use an http.MethodX constant", where)
			return nil
		}
		for _, path := range paths {
			if rf.url {
				rest, ok := strings.CutPrefix(path, "{}")
				if !ok || !strings.HasPrefix(rest, "/") {
					continue
				}
				path = rest
			}
			path, _, _ = strings.Cut(path, "?")
			if !strings.HasPrefix(path, "/") {
				a.t.Errorf("%s: cannot tell the path of this request (%q); build it from constants (see routescan_test.go)", where, path)
				continue
			}
			out = append(out, apiRoute{m, path})
		}
	}
	if len(paths) == 0 && !rf.url {
		a.t.Errorf("%s: cannot tell the path of this request; build it from constants (see routescan_test.go)", where)
	}
	return out
}

// pathResolver finds the strings an expression may hold, for the paths and
// methods of requests: constants, concatenations, fmt.Sprintf, the values
// a local variable is assigned in the function, and the results of the
// product's own functions. A part it cannot know (a name, an id) is "{}".
type pathResolver struct {
	info  *types.Info
	fn    *ast.FuncDecl
	decls map[string]funcDecl
}

func (r pathResolver) values(e ast.Expr, depth int) []string {
	if depth > 8 {
		return nil
	}
	if tv, ok := r.info.Types[e]; ok && tv.Value != nil && tv.Value.Kind() == constant.String {
		return []string{constant.StringVal(tv.Value)}
	}
	switch e := e.(type) {
	case *ast.ParenExpr:
		return r.values(e.X, depth+1)
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return nil
		}
		var out []string
		for _, x := range orUnknown(r.values(e.X, depth+1)) {
			for _, y := range orUnknown(r.values(e.Y, depth+1)) {
				out = append(out, x+y)
			}
		}
		return out
	case *ast.CallExpr:
		fn, _ := typeutil.Callee(r.info, e).(*types.Func)
		if fn == nil {
			return nil
		}
		if funcKey(fn) == "fmt.Sprintf" && len(e.Args) > 0 {
			if tv := r.info.Types[e.Args[0]]; tv.Value != nil {
				args := e.Args[1:]
				return []string{sprintfPath(constant.StringVal(tv.Value), func(i int) bool { return i < len(args) && isMultiSegment(args[i]) })}
			}
			return nil
		}
		d, ok := r.decls[funcKey(fn)]
		if !ok {
			return nil
		}
		inner := pathResolver{info: d.pkg.TypesInfo, fn: d.decl, decls: r.decls}
		var out []string
		ast.Inspect(d.decl.Body, func(n ast.Node) bool {
			if _, ok := n.(*ast.FuncLit); ok {
				return false
			}
			if ret, ok := n.(*ast.ReturnStmt); ok && len(ret.Results) > 0 {
				out = append(out, inner.values(ret.Results[0], depth+1)...)
			}
			return true
		})
		return out
	case *ast.Ident:
		v, ok := r.info.Uses[e].(*types.Var)
		if !ok || v.Parent() == nil || v.Parent() == v.Pkg().Scope() {
			return nil
		}
		var out []string
		ast.Inspect(r.fn, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				if len(n.Lhs) != len(n.Rhs) {
					return true
				}
				for i, lhs := range n.Lhs {
					if id, ok := lhs.(*ast.Ident); ok && r.info.ObjectOf(id) == v {
						out = append(out, r.values(n.Rhs[i], depth+1)...)
					}
				}
			case *ast.ValueSpec:
				for i, id := range n.Names {
					if r.info.Defs[id] == v && i < len(n.Values) {
						out = append(out, r.values(n.Values[i], depth+1)...)
					}
				}
			}
			return true
		})
		return out
	}
	return nil
}

// orUnknown is values, or "{}" when there are none.
func orUnknown(values []string) []string {
	if len(values) == 0 {
		return []string{"{}"}
	}
	return values
}
