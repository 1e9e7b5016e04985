package azurestandin

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Visual Studio Marketplace and the organization's extension
// management, as far as publishing the extension privately and installing
// it take them, and the task download route of the organization that
// serves the tasks of an installed extension to the agent:
//
//   - marketplace.visualstudio.com, what `tfx extension publish --vsix X
//     --share-with ORG --service-url https://marketplace.visualstudio.com
//     --token PAT` calls (tfx-cli 0.23 exec/extension/_lib/publish.js
//     PackagePublisher and SharingManager, through azure-devops-node-api 14
//     GalleryApi): OPTIONS _apis/gallery (the location data), GET the
//     extension (404 → create), POST the .vsix (create) or PUT it (update),
//     GET it again with its versions until the new one is validated, then
//     POST the share with the organization;
//   - extmgmt.dev.azure.com, POST {org}/_apis/extensionmanagement/
//     installedextensionsbyname/{publisher}/{extension}[/{version}] (REST
//     API 7.1, Installed Extensions - Install Extension By Name);
//   - dev.azure.com, GET {org}/_apis/distributedtask/tasks/{id}/{version}
//     with Accept application/zip: the task folder of an installed
//     extension's task, the request the agent makes to download a task
//     (azure-pipelines-agent TaskManager.cs → TaskServer
//     GetTaskContentZipAsync) and the launcher makes without the
//     BrickferryTools step (build/launcher/download.js); GET
//     {org}/_apis/distributedtask/tasks/{id}?allversions=true lists its
//     versions.
//
// The Marketplace's own checks that a .vsix passes through are made at
// upload: it must be a zip with extension.vsixmanifest naming publisher,
// id and a numeric version; the publisher must be the one in the route (on
// update) and one the token may publish for; every asset the manifest
// lists must be in the package; and an update's version must be greater
// than the published one ("Version number must increase each time an
// extension is published. Extension: … Current version: … Updated version:
// …", the Marketplace's answer to tfx since 2016:
// devblogs.microsoft.com/devops/new-requirement-when-updating-team-services-extensions-on-the-marketplace).
// Validation, asynchronous at the Marketplace, is done at once: the version
// is answered "validated".

// Public names of the gallery stand-ins.
const (
	MarketplaceHost = "marketplace.visualstudio.com"
	ExtMgmtHost     = "extmgmt.dev.azure.com"
)

// Location ids of the gallery resources tfx-cli uses (azure-devops-node-api
// 14 GalleryApi.js createExtension, getExtension/updateExtension,
// shareExtension) and their route templates (microsoft/azure-devops-extension-api
// src/Gallery/GalleryClient.ts).
const (
	locGalleryExtensionsByID = "a41192c8-9525-4b58-bc86-179fa549d80d" // _apis/gallery/extensions/{extensionId}
	locGalleryExtension      = "e11ea35a-16fe-4b80-ab11-c4cab88a0966" // _apis/gallery/publishers/{publisherName}/extensions/{extensionName}
	locGalleryShareByName    = "a1e66d8f-f5de-4d16-8309-91a4e015ee46" // _apis/gallery/publisher/{publisherName}/extension/{extensionName}/accountsbyname/{accountName}
)

// taskContribution is the contribution type of a pipeline task in an
// extension manifest (vss-extension.json, extension.vsomanifest).
const taskContribution = "ms.vss-distributed-task.task"

// gallery holds the Marketplace's publishers and extensions and the
// organization's installed extensions.
type gallery struct {
	pat string // the personal access token every gallery and install call needs

	mu         sync.Mutex
	publishers map[string]bool              // lower-case names the token may publish for
	extensions map[string]*galleryExtension // by lower-case "publisher.id"
}

// galleryExtension is one extension at the Marketplace, and whether the
// stand-in's organization installed it.
type galleryExtension struct {
	Publisher, ID, DisplayName string
	ExtensionID                string            // the Marketplace's id of the extension
	Versions                   []*galleryVersion // newest first
	SharedWith                 []string
	Installed                  bool // in the stand-in's organization
	Published                  time.Time
}

// galleryVersion is one published version of an extension.
type galleryVersion struct {
	Version string
	Updated time.Time
	Tasks   []galleryTask
}

// galleryTask is one task of a published version: its task.json and its
// folder zipped (task.json at the root), as the organization serves it once
// the extension is installed.
type galleryTask struct {
	ID         string
	Version    string // MAJOR.MINOR.PATCH from task.json
	Definition map[string]any
	Zip        []byte
}

// ExtensionState is what the Marketplace and the organization hold of one
// extension, for tests.
type ExtensionState struct {
	Versions   []string // newest first
	SharedWith []string
	Installed  bool
}

// startGallery makes the gallery state and serves its hosts; New calls it.
func (a *Azure) startGallery() {
	a.gallery = &gallery{pat: randomHex(26), publishers: map[string]bool{}, extensions: map[string]*galleryExtension{}}
	a.hosts[MarketplaceHost] = http.HandlerFunc(a.marketplace)
	a.hosts[ExtMgmtHost] = http.HandlerFunc(a.extMgmt)
}

// PersonalAccessToken is the personal access token of the organization's
// user who publishes and installs the extension (Marketplace: Publish and
// Extensions: Read & manage scopes): the only credential the Marketplace
// and extension management stand-ins accept, as tfx-cli sends it (basic
// authentication, any user name: tfx-cli lib/tfcommand.js getCredentials).
func (a *Azure) PersonalAccessToken() string { return a.gallery.pat }

// AddPublisher creates a Marketplace publisher that the token's user is a
// member of; the Marketplace refuses a .vsix of any other publisher.
func (a *Azure) AddPublisher(name string) {
	a.gallery.mu.Lock()
	defer a.gallery.mu.Unlock()
	a.gallery.publishers[strings.ToLower(name)] = true
}

// Extension is the state of publisher.id, and false when it was never published.
func (a *Azure) Extension(publisher, id string) (ExtensionState, bool) {
	g := a.gallery
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.extensions[extensionKey(publisher, id)]
	if e == nil {
		return ExtensionState{}, false
	}
	s := ExtensionState{SharedWith: slices.Clone(e.SharedWith), Installed: e.Installed}
	for _, v := range e.Versions {
		s.Versions = append(s.Versions, v.Version)
	}
	return s, true
}

func extensionKey(publisher, id string) string { return strings.ToLower(publisher + "." + id) }

// authorizedPath answers 401 unless the request carries the token (basic
// authentication, any user name) and returns its path's segments.
func (g *gallery) authorizedPath(w http.ResponseWriter, r *http.Request) ([]string, bool) {
	if _, pass, ok := r.BasicAuth(); !ok || pass != g.pat {
		devopsError(w, http.StatusUnauthorized, "UnauthorizedRequestException", "TF400813: The user is not authorized to access this resource.")
		return nil, false
	}
	return strings.Split(strings.Trim(r.URL.Path, "/"), "/"), true
}

// apiVersion is the api-version a request asks for, from the query or the
// Accept header (application/json;api-version=7.2-preview.2, as
// azure-devops-node-api sends it), and whether the server serves it: from
// 1.0 to 7.2, the maxVersion of the location data below.
func apiVersion(r *http.Request) (string, bool) {
	v := r.URL.Query().Get("api-version")
	if v == "" {
		for _, part := range strings.Split(r.Header.Get("Accept"), ";") {
			if k, val, ok := strings.Cut(strings.TrimSpace(part), "="); ok && strings.EqualFold(k, "api-version") {
				v = val
			}
		}
	}
	m := regexp.MustCompile(`^(\d+)\.(\d+)(-preview(\.\d+)?)?$`).FindStringSubmatch(v)
	if m == nil {
		return v, false
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return v, major >= 1 && (major < 7 || major == 7 && minor <= 2)
}

// checkAPIVersion answers 400 when the request asks for no api-version or
// one the server does not serve (Azure DevOps: VssVersionOutOfRangeException;
// the launcher then asks again with an older one).
func checkAPIVersion(w http.ResponseWriter, r *http.Request) bool {
	v, ok := apiVersion(r)
	switch {
	case v == "":
		devopsError(w, http.StatusBadRequest, "VssInvalidPreviewVersionException", "No api-version was supplied for the "+r.Method+" request.")
	case !ok:
		devopsError(w, http.StatusBadRequest, "VssVersionOutOfRangeException", "The requested REST API version of "+v+" is out of range for this server. The latest REST API version for this server is 7.2.")
	}
	return ok
}

// marketplace serves marketplace.visualstudio.com.
func (a *Azure) marketplace(w http.ResponseWriter, r *http.Request) {
	parts, ok := a.gallery.authorizedPath(w, r)
	if !ok {
		return
	}
	at := func(i int, s string) bool { return len(parts) > i && strings.EqualFold(parts[i], s) }
	switch {
	case r.Method == http.MethodOptions && len(parts) == 2 && at(0, "_apis") && at(1, "gallery"):
		loc := func(id, resource, route string, version int) map[string]any {
			return map[string]any{"id": id, "area": "gallery", "resourceName": resource, "routeTemplate": route,
				"resourceVersion": version, "minVersion": "1.0", "maxVersion": "7.2", "releasedVersion": "0.0"}
		}
		writeJSON(w, http.StatusOK, map[string]any{"count": 3, "value": []any{
			loc(locGalleryExtensionsByID, "extensions", "_apis/gallery/extensions/{extensionId}", 2),
			loc(locGalleryExtension, "extensions", "_apis/gallery/publishers/{publisherName}/extensions/{extensionName}", 2),
			loc(locGalleryShareByName, "accountsbyname", "_apis/gallery/publisher/{publisherName}/extension/{extensionName}/accountsbyname/{accountName}", 1),
		}})
	case !checkAPIVersion(w, r):
	case r.Method == http.MethodPost && len(parts) == 3 && at(0, "_apis") && at(1, "gallery") && at(2, "extensions"):
		a.publishExtension(w, r, "", "")
	case len(parts) == 6 && at(0, "_apis") && at(1, "gallery") && at(2, "publishers") && at(4, "extensions"):
		switch r.Method {
		case http.MethodGet:
			a.getExtension(w, r, parts[3], parts[5])
		case http.MethodPut:
			a.publishExtension(w, r, parts[3], parts[5])
		default:
			devopsError(w, http.StatusMethodNotAllowed, "NotSupportedException", r.Method+" is not supported here.")
		}
	case r.Method == http.MethodPost && len(parts) == 8 && at(0, "_apis") && at(1, "gallery") && at(2, "publisher") && at(4, "extension") && at(6, "accountsbyname"):
		a.shareExtension(w, parts[3], parts[5], parts[7])
	default:
		devopsError(w, http.StatusNotFound, "NotFoundException", "not found: "+r.Method+" "+r.URL.Path)
	}
}

// maxVSIX bounds what the stand-in reads of an upload; the Marketplace's
// guidance is 50 MB (docs/packaging.md).
const maxVSIX = 100 << 20

// publishExtension creates (publisher and id empty: POST) or updates (PUT
// to the extension's route) an extension from the .vsix in the body.
func (a *Azure) publishExtension(w http.ResponseWriter, r *http.Request, publisher, id string) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/octet-stream") {
		devopsError(w, http.StatusUnsupportedMediaType, "InvalidRequestException", "The package must be uploaded as application/octet-stream, not "+ct+".")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxVSIX+1))
	if err != nil || len(body) > maxVSIX {
		devopsError(w, http.StatusBadRequest, "InvalidPackageException", "The package could not be read or is too large.")
		return
	}
	pkg, err := readVSIX(body)
	if err != nil {
		devopsError(w, http.StatusBadRequest, "InvalidPackageException", "The extension package is not valid: "+err.Error())
		return
	}
	g := a.gallery
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.publishers[strings.ToLower(pkg.Publisher)] {
		devopsError(w, http.StatusForbidden, "AccessCheckException", "The user is not a member of publisher '"+pkg.Publisher+"' or the publisher does not exist.")
		return
	}
	key := extensionKey(pkg.Publisher, pkg.ID)
	e := g.extensions[key]
	now := a.clock.Now().UTC()
	v := &galleryVersion{Version: pkg.Version, Updated: now, Tasks: pkg.Tasks}
	if publisher == "" { // create
		if e != nil {
			devopsError(w, http.StatusConflict, "ExtensionAlreadyExistsException", "Extension "+key+" already exists; update it.")
			return
		}
		e = &galleryExtension{Publisher: pkg.Publisher, ID: pkg.ID, DisplayName: pkg.DisplayName, ExtensionID: newID(), Published: now}
		g.extensions[key] = e
	} else { // update
		if !strings.EqualFold(publisher, pkg.Publisher) || !strings.EqualFold(id, pkg.ID) {
			devopsError(w, http.StatusBadRequest, "InvalidPackageException", "The package is "+key+", not "+publisher+"."+id+".")
			return
		}
		if e == nil {
			devopsError(w, http.StatusNotFound, "ExtensionDoesNotExistException", "Extension "+key+" does not exist.")
			return
		}
		if cur := e.Versions[0].Version; compareVersions(pkg.Version, cur) <= 0 {
			devopsError(w, http.StatusBadRequest, "InvalidPackageException", fmt.Sprintf(
				"Version number must increase each time an extension is published. Extension: %s  Current version: %s  Updated version: %s", key, cur, pkg.Version))
			return
		}
		e.DisplayName = pkg.DisplayName
	}
	e.Versions = append([]*galleryVersion{v}, e.Versions...)
	writeJSON(w, http.StatusOK, e.json(1, ""))
}

// getExtension answers GET .../publishers/{p}/extensions/{e}?version=&flags=.
func (a *Azure) getExtension(w http.ResponseWriter, r *http.Request, publisher, id string) {
	g := a.gallery
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.extensions[extensionKey(publisher, id)]
	if e == nil || !g.publishers[strings.ToLower(publisher)] {
		devopsError(w, http.StatusNotFound, "ExtensionDoesNotExistException", "Extension "+publisher+"."+id+" does not exist.")
		return
	}
	q := r.URL.Query()
	flags, err := strconv.Atoi(q.Get("flags"))
	if q.Get("flags") != "" && err != nil {
		devopsError(w, http.StatusBadRequest, "InvalidRequestException", "flags "+q.Get("flags")+" is not a number.")
		return
	}
	writeJSON(w, http.StatusOK, e.json(flags, q.Get("version")))
}

// json is the extension as the Marketplace answers it
// (GalleryInterfaces.PublishedExtension): all versions with
// IncludeVersions (flags 1), the newest otherwise, only the one asked for
// with version; shared accounts with IncludeSharedAccounts (8).
func (e *galleryExtension) json(flags int, version string) map[string]any {
	versions := []any{}
	for i, v := range e.Versions {
		if version != "" && v.Version != version || version == "" && flags&1 == 0 && i > 0 {
			continue
		}
		versions = append(versions, map[string]any{"version": v.Version, "flags": "validated", "lastUpdated": v.Updated.Format(time.RFC3339)})
	}
	out := map[string]any{
		"publisher":   map[string]any{"publisherName": e.Publisher, "displayName": e.Publisher, "flags": "none"},
		"extensionId": e.ExtensionID, "extensionName": e.ID, "displayName": e.DisplayName, "flags": "validated",
		"lastUpdated": e.Versions[0].Updated.Format(time.RFC3339), "publishedDate": e.Published.Format(time.RFC3339),
		"versions": versions,
	}
	if flags&8 != 0 {
		shared := []any{}
		for _, s := range e.SharedWith {
			shared = append(shared, map[string]any{"name": s})
		}
		out["sharedWith"] = shared
	}
	return out
}

// shareExtension shares a private extension with an organization. Only the
// stand-in's own organization exists.
func (a *Azure) shareExtension(w http.ResponseWriter, publisher, id, account string) {
	g := a.gallery
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.extensions[extensionKey(publisher, id)]
	switch {
	case !g.publishers[strings.ToLower(publisher)]:
		devopsError(w, http.StatusForbidden, "AccessCheckException", "The user is not a member of publisher '"+publisher+"'.")
	case e == nil:
		devopsError(w, http.StatusNotFound, "ExtensionDoesNotExistException", "Extension "+publisher+"."+id+" does not exist.")
	case !strings.EqualFold(account, a.Organization):
		devopsError(w, http.StatusNotFound, "AccountDoesNotExistException", "The organization '"+account+"' does not exist.")
	default:
		if !slices.ContainsFunc(e.SharedWith, func(s string) bool { return strings.EqualFold(s, account) }) {
			e.SharedWith = append(e.SharedWith, a.Organization)
		}
		w.WriteHeader(http.StatusOK)
	}
}

// extMgmt serves extmgmt.dev.azure.com: installing an extension shared with
// the organization by name, with the user's personal access token.
func (a *Azure) extMgmt(w http.ResponseWriter, r *http.Request) {
	parts, ok := a.gallery.authorizedPath(w, r)
	if !ok {
		return
	}
	if len(parts) == 0 || !strings.EqualFold(parts[0], a.Organization) {
		devopsError(w, http.StatusNotFound, "OrganizationNotFoundException", "The organization '"+parts[0]+"' was not found.")
		return
	}
	parts = parts[1:]
	if !(r.Method == http.MethodPost && (len(parts) == 5 || len(parts) == 6) && parts[0] == "_apis" &&
		strings.EqualFold(parts[1], "extensionmanagement") && strings.EqualFold(parts[2], "installedextensionsbyname")) {
		devopsError(w, http.StatusNotFound, "NotFoundException", "not found: "+r.Method+" "+r.URL.Path)
		return
	}
	if !checkAPIVersion(w, r) {
		return
	}
	publisher, id := parts[3], parts[4]
	g := a.gallery
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.extensions[extensionKey(publisher, id)]
	if e == nil || !slices.ContainsFunc(e.SharedWith, func(s string) bool { return strings.EqualFold(s, a.Organization) }) {
		devopsError(w, http.StatusNotFound, "ExtensionDoesNotExistException", "Extension "+publisher+"."+id+" does not exist or is not shared with organization "+a.Organization+".")
		return
	}
	v := e.Versions[0]
	if len(parts) == 6 {
		i := slices.IndexFunc(e.Versions, func(v *galleryVersion) bool { return v.Version == parts[5] })
		if i < 0 {
			devopsError(w, http.StatusNotFound, "ExtensionVersionNotFoundException", "Extension "+publisher+"."+id+" has no version "+parts[5]+".")
			return
		}
		v = e.Versions[i]
	}
	if e.Installed {
		// tfx-cli exec/extension/install.js takes TF1590010 as "already installed".
		devopsError(w, http.StatusConflict, "ExtensionAlreadyInstalledException", "TF1590010: Extension "+publisher+"."+id+" is already installed in this organization.")
		return
	}
	e.Installed = true
	writeJSON(w, http.StatusOK, map[string]any{
		"extensionId": e.ID, "extensionName": e.DisplayName, "publisherId": e.Publisher, "publisherName": e.Publisher,
		"version": v.Version, "installState": map[string]any{"flags": "none", "installationIssues": []any{}, "lastUpdated": v.Updated.Format(time.RFC3339)},
	})
}

// installedTask finds the task of an installed extension. The organization
// serves the tasks of the extension's newest version: organizations that
// installed an extension get a newly published version on their own
// (docs/setup.md, "Azure DevOps Services"), the agents then take the new
// task version, and the older one is gone (why the launcher falls back on
// a 404: build/launcher/download.js). The real switch takes a while; here
// it is at once.
func (a *Azure) installedTask(id string) (galleryTask, bool) {
	g := a.gallery
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, e := range g.extensions {
		if !e.Installed {
			continue
		}
		for _, t := range e.Versions[0].Tasks {
			if strings.EqualFold(t.ID, id) {
				return t, true
			}
		}
	}
	return galleryTask{}, false
}

// taskContent answers GET {org}/_apis/distributedtask/tasks/{id}[/{version}]
// (rest: the path after tasks/): the task folder zipped with Accept
// application/zip and a version, the task's definitions otherwise. The
// job token was checked by the router.
func (a *Azure) taskContent(w http.ResponseWriter, r *http.Request, rest []string) {
	if !checkAPIVersion(w, r) {
		return
	}
	t, ok := a.installedTask(rest[0])
	if len(rest) == 1 {
		list := []any{}
		if ok {
			list = append(list, t.Definition)
		}
		writeJSON(w, http.StatusOK, map[string]any{"count": len(list), "value": list})
		return
	}
	if !ok || len(rest) != 2 || rest[1] != t.Version {
		devopsError(w, http.StatusNotFound, "TaskDefinitionNotFoundException", "Task "+strings.Join(rest, " version ")+" was not found in the organization.")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Accept"), "application/zip") {
		writeJSON(w, http.StatusOK, t.Definition)
		return
	}
	w.Header().Set("Content-Type", "application/zip")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(t.Zip)
}

// vsixPackage is what the Marketplace reads of a .vsix.
type vsixPackage struct {
	Publisher, ID, Version, DisplayName string
	Tasks                               []galleryTask
}

// vsixManifest is extension.vsixmanifest (the VSIX 2.0 schema tfx-cli
// writes: exec/extension/_lib/vsix-manifest-builder.js).
type vsixManifest struct {
	Metadata struct {
		Identity struct {
			ID        string `xml:"Id,attr"`
			Publisher string `xml:"Publisher,attr"`
			Version   string `xml:"Version,attr"`
		} `xml:"Identity"`
		DisplayName string `xml:"DisplayName"`
	} `xml:"Metadata"`
	Assets struct {
		Asset []struct {
			Type string `xml:"Type,attr"`
			Path string `xml:"Path,attr"`
		} `xml:"Asset"`
	} `xml:"Assets"`
}

var (
	extensionVersion = regexp.MustCompile(`^\d+(\.\d+){1,3}$`)
	galleryName      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
)

// readVSIX opens a .vsix and reads its identity and its tasks.
func readVSIX(data []byte) (*vsixPackage, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("not a zip: %w", err)
	}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[f.Name] = f
	}
	read := func(name string) ([]byte, error) {
		f := files[name]
		if f == nil {
			return nil, fmt.Errorf("%s is not in the package", name)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		defer func() { _ = rc.Close() }()
		return io.ReadAll(io.LimitReader(rc, maxVSIX))
	}
	raw, err := read("extension.vsixmanifest")
	if err != nil {
		return nil, err
	}
	var m vsixManifest
	if err := xml.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("extension.vsixmanifest: %w", err)
	}
	id := m.Metadata.Identity
	switch {
	case !galleryName.MatchString(id.Publisher):
		return nil, fmt.Errorf("the manifest's publisher %q is not a publisher id", id.Publisher)
	case !galleryName.MatchString(id.ID):
		return nil, fmt.Errorf("the manifest's extension id %q is not valid", id.ID)
	case !extensionVersion.MatchString(id.Version):
		return nil, fmt.Errorf("the manifest's version %q is not numeric (1.2.3)", id.Version)
	}
	pkg := &vsixPackage{Publisher: id.Publisher, ID: id.ID, Version: id.Version, DisplayName: m.Metadata.DisplayName}
	var contributions string
	for _, as := range m.Assets.Asset {
		if files[as.Path] == nil {
			return nil, fmt.Errorf("asset %s (%s) is not in the package", as.Path, as.Type)
		}
		if as.Type == "Microsoft.VisualStudio.Services.Manifest" {
			contributions = as.Path
		}
	}
	if contributions == "" {
		return nil, errors.New("the manifest lists no Microsoft.VisualStudio.Services.Manifest asset")
	}
	raw, err = read(contributions)
	if err != nil {
		return nil, err
	}
	var vso struct {
		Contributions []struct {
			ID         string         `json:"id"`
			Type       string         `json:"type"`
			Properties map[string]any `json:"properties"`
		} `json:"contributions"`
	}
	if err := json.Unmarshal(raw, &vso); err != nil {
		return nil, fmt.Errorf("%s: %w", contributions, err)
	}
	for _, c := range vso.Contributions {
		if c.Type != taskContribution {
			continue
		}
		folder, _ := c.Properties["name"].(string)
		t, err := readTask(zr, strings.Trim(path.Clean(folder), "/"), read)
		if err != nil {
			return nil, fmt.Errorf("contribution %s: %w", c.ID, err)
		}
		pkg.Tasks = append(pkg.Tasks, t)
	}
	return pkg, nil
}

// readTask reads a task contribution's folder: task.json's id and version,
// and the folder zipped with its files at the root.
func readTask(zr *zip.Reader, folder string, read func(string) ([]byte, error)) (galleryTask, error) {
	raw, err := read(folder + "/task.json")
	if err != nil {
		return galleryTask{}, err
	}
	var def map[string]any
	if err := json.Unmarshal(raw, &def); err != nil {
		return galleryTask{}, fmt.Errorf("%s/task.json: %w", folder, err)
	}
	id, _ := def["id"].(string)
	ver, _ := def["version"].(map[string]any)
	var parts []string
	for _, k := range []string{"Major", "Minor", "Patch"} {
		switch n := ver[k].(type) {
		case float64:
			parts = append(parts, strconv.Itoa(int(n)))
		case string: // tfx-cli accepts strings too
			parts = append(parts, n)
		default:
			return galleryTask{}, fmt.Errorf("%s/task.json: version.%s is missing", folder, k)
		}
	}
	if id == "" {
		return galleryTask{}, fmt.Errorf("%s/task.json has no id", folder)
	}
	// The REST API answers a TaskDefinition, camelCase: task.json's
	// version {Major, Minor, Patch} becomes {major, minor, patch, isTest}
	// (azure-devops-go-api distributedtaskcommon.TaskVersion).
	major, _ := strconv.Atoi(parts[0])
	minor, _ := strconv.Atoi(parts[1])
	patch, _ := strconv.Atoi(parts[2])
	def = maps.Clone(def)
	def["version"] = map[string]any{"major": major, "minor": minor, "patch": patch, "isTest": false}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	prefix := folder + "/"
	for _, f := range zr.File {
		name, ok := strings.CutPrefix(f.Name, prefix)
		if !ok || name == "" || strings.HasSuffix(name, "/") {
			continue
		}
		data, err := read(f.Name)
		if err != nil {
			return galleryTask{}, err
		}
		fw, err := zw.Create(name)
		if err != nil {
			return galleryTask{}, err
		}
		if _, err := fw.Write(data); err != nil {
			return galleryTask{}, err
		}
	}
	if err := zw.Close(); err != nil {
		return galleryTask{}, err
	}
	return galleryTask{ID: id, Version: strings.Join(parts, "."), Definition: def, Zip: buf.Bytes()}, nil
}

// compareVersions compares dotted numeric versions (missing parts are 0).
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(pa), len(pb)) {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}
