package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AllPlatforms are the executables `make build` writes to dist/bin.
var AllPlatforms = []string{"linux-amd64", "linux-arm64", "windows-amd64", "darwin-amd64", "darwin-arm64"}

// ToolsTask is the task that carries the executables.
const ToolsTask = "BrickferryTools"

// Options of one build.
type Options struct {
	Root      string
	Version   string
	Out       string
	Bin       string
	Platforms []string
	Quality   int
	Window    int
	Workers   int
	CacheDir  string
	Log       io.Writer

	// Publisher replaces the manifest's publisher (the Marketplace publisher
	// id the extension is uploaded under); empty keeps vss-extension.json's.
	Publisher string
	// RepoURL is the extension's repository: the Marketplace home and
	// repository links (and support: <RepoURL>/issues on GitHub). Empty: the
	// extension links to no repository.
	RepoURL string
	// DocsURL is where docs/ is browsed: the tasks' and the connection's
	// "Learn more" links (docs/...) become <DocsURL>/docs/.... Empty: from
	// RepoURL on GitHub (<RepoURL>/blob/main), else the links are left out.
	DocsURL string
}

// Result says what was written.
type Result struct {
	VSIX      string
	VSIXBytes int64
	Stage     string
	Tasks     []TaskInfo
}

// TaskInfo is one task of the extension.
type TaskInfo struct {
	Folder  string // e.g. DatabricksTrainV1
	ID      string
	Name    string
	Major   int
	Version string // stamped
}

// Executable is one platform's brickferry.
type Executable struct {
	Platform   string
	Raw        string // path
	Size       int64
	SHA256     string
	Compressed []byte
}

// LauncherConfig is launcher.json in every thin task (build/launcher/launcher.js).
type LauncherConfig struct {
	Task    string            `json:"task"`
	Version string            `json:"version"`
	Tools   ToolsRef          `json:"tools"`
	SHA256  map[string]string `json:"sha256"`
}

// ToolsRef pins the BrickferryTools task a thin task falls back to.
type ToolsRef struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

// ToolsManifest is bin/manifest.json in BrickferryTools.
type ToolsManifest struct {
	Tool      string                   `json:"tool"`
	Version   string                   `json:"version"`
	Platforms map[string]ToolsPlatform `json:"platforms"`
}

// ToolsPlatform is one executable in ToolsManifest.
type ToolsPlatform struct {
	File           string `json:"file"`
	SHA256         string `json:"sha256"` // of the decompressed executable
	Size           int64  `json:"size"`
	CompressedSize int64  `json:"compressedSize"`
}

var semver = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)$`)

// Build assembles the extension folder and writes the .vsix.
func Build(ctx context.Context, o Options) (Result, error) {
	if err := o.defaults(); err != nil {
		return Result{}, err
	}
	m := semver.FindStringSubmatch(o.Version)
	if m == nil {
		return Result{}, fmt.Errorf("version %q is not MAJOR.MINOR.PATCH", o.Version)
	}
	major, _ := strconv.Atoi(m[1])

	tasks, err := ReadTasks(filepath.Join(o.Root, "tasks"))
	if err != nil {
		return Result{}, err
	}
	var tools *TaskInfo
	for i := range tasks {
		t := &tasks[i]
		if t.Major != major {
			return Result{}, fmt.Errorf("%s is major %d but VERSION is %s: a new major needs new <Name>V<Major> task folders (docs/packaging.md)", t.Folder, t.Major, o.Version)
		}
		t.Version = o.Version
		if t.Name == ToolsTask {
			tools = t
		}
	}
	if tools == nil {
		return Result{}, fmt.Errorf("no %s task under tasks/", ToolsTask)
	}

	start := time.Now()
	exes, err := o.compressAll(ctx)
	if err != nil {
		return Result{}, err
	}
	fmt.Fprintf(o.Log, "compressed %d executables in %s (brotli q%d lgwin %d)\n", len(exes), time.Since(start).Round(time.Millisecond), o.Quality, o.Window)

	stage := filepath.Join(o.Out, "extension")
	if err := os.RemoveAll(stage); err != nil {
		return Result{}, err
	}
	if err := o.stageExtension(stage, tasks, *tools, exes); err != nil {
		return Result{}, err
	}
	vsix := filepath.Join(o.Out, fmt.Sprintf("brickferry-%s.vsix", o.Version))
	if err := o.tfx(ctx, stage, vsix); err != nil {
		return Result{}, err
	}
	st, err := os.Stat(vsix)
	if err != nil {
		return Result{}, err
	}
	return Result{VSIX: vsix, VSIXBytes: st.Size(), Stage: stage, Tasks: tasks}, nil
}

func (o *Options) defaults() error {
	if o.Root == "" {
		o.Root = "."
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return err
	}
	o.Root = root
	if o.Version == "" {
		v, err := os.ReadFile(filepath.Join(o.Root, "VERSION"))
		if err != nil {
			return fmt.Errorf("no -version and no VERSION file: %w", err)
		}
		o.Version = strings.TrimSpace(string(v))
	}
	if o.Out == "" {
		o.Out = filepath.Join(o.Root, "dist")
	}
	if o.Out, err = filepath.Abs(o.Out); err != nil {
		return err
	}
	if o.Bin == "" {
		o.Bin = filepath.Join(o.Root, "dist", "bin")
	}
	if len(o.Platforms) == 0 {
		o.Platforms = AllPlatforms
	}
	for _, p := range o.Platforms {
		if !contains(AllPlatforms, p) {
			return fmt.Errorf("unknown platform %q (known: %s)", p, strings.Join(AllPlatforms, ", "))
		}
	}
	if o.Quality < 0 || o.Quality > 11 {
		return fmt.Errorf("brotli quality %d is not 0-11", o.Quality)
	}
	if o.Window == 0 {
		o.Window = 24
	}
	if o.Workers < 1 {
		o.Workers = 1
	}
	if o.CacheDir == "" {
		o.CacheDir = filepath.Join(o.Out, "cache", "brotli")
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.RepoURL != "" {
		u, err := url.Parse(o.RepoURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("REPO_URL %q is not an https URL", o.RepoURL)
		}
		o.RepoURL = strings.TrimSuffix(o.RepoURL, "/")
		if o.DocsURL == "" && isGitHub(o.RepoURL) {
			o.DocsURL = o.RepoURL + "/blob/main"
		}
	}
	if o.DocsURL != "" {
		if u, err := url.Parse(o.DocsURL); err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("DOCS_URL %q is not an https URL", o.DocsURL)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ReadTasks reads every tasks/<Folder>/task.json.
func ReadTasks(dir string) ([]TaskInfo, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []TaskInfo
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), "task.json"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var t struct {
			ID      string `json:"id"`
			Name    string `json:"name"`
			Version struct {
				Major int `json:"Major"`
			} `json:"version"`
		}
		if err := json.Unmarshal(data, &t); err != nil {
			return nil, fmt.Errorf("%s/task.json: %w", e.Name(), err)
		}
		if want := fmt.Sprintf("%sV%d", t.Name, t.Version.Major); e.Name() != want {
			return nil, fmt.Errorf("tasks/%s holds task %s major %d: the folder must be %s", e.Name(), t.Name, t.Version.Major, want)
		}
		out = append(out, TaskInfo{Folder: e.Name(), ID: strings.ToLower(t.ID), Name: t.Name, Major: t.Version.Major})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Folder < out[j].Folder })
	return out, nil
}

func exeFile(platform string) string {
	if strings.HasPrefix(platform, "windows-") {
		return "brickferry.exe"
	}
	return "brickferry"
}

// compressAll hashes and compresses every platform's executable, a few at a
// time. Compressed files are cached by the executable's sha256 and the
// settings, so a repeated `make package` of the same build is quick.
func (o *Options) compressAll(ctx context.Context) ([]Executable, error) {
	exes := make([]Executable, len(o.Platforms))
	errs := make([]error, len(o.Platforms))
	sem := make(chan struct{}, o.Workers)
	var wg sync.WaitGroup
	for i, p := range o.Platforms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			exes[i], errs[i] = o.compressOne(ctx, p)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return exes, nil
}

func (o *Options) compressOne(ctx context.Context, platform string) (Executable, error) {
	raw := filepath.Join(o.Bin, platform, exeFile(platform))
	data, err := os.ReadFile(raw)
	if err != nil {
		return Executable{}, fmt.Errorf("%s executable: %w (run `make build`)", platform, err)
	}
	sum := sha256.Sum256(data)
	e := Executable{Platform: platform, Raw: raw, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	cached := filepath.Join(o.CacheDir, fmt.Sprintf("%s-q%d-w%d.br", e.SHA256, o.Quality, o.Window))
	if b, err := os.ReadFile(cached); err == nil {
		e.Compressed = b
		return e, nil
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return Executable{}, err
	}
	script := filepath.Join(o.Root, "build", "package", "brotli.js")
	cmd := exec.CommandContext(ctx, "node", script, raw, cached, strconv.Itoa(o.Quality), strconv.Itoa(o.Window))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return Executable{}, fmt.Errorf("brotli %s: %w: %s", platform, err, stderr.String())
	}
	if e.Compressed, err = os.ReadFile(cached); err != nil {
		return Executable{}, err
	}
	return e, nil
}

// launcherModules are the files of build/launcher copied into every task;
// launcher.js and install.js become index.js of thin tasks and BrickferryTools.
func (o *Options) launcherModules() (map[string][]byte, error) {
	dir := filepath.Join(o.Root, "build", "launcher")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".js") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files[e.Name()] = b
	}
	for _, need := range []string{"launcher.js", "install.js"} {
		if files[need] == nil {
			return nil, fmt.Errorf("build/launcher/%s is missing", need)
		}
	}
	return files, nil
}

func (o *Options) stageExtension(stage string, tasks []TaskInfo, tools TaskInfo, exes []Executable) error {
	modules, err := o.launcherModules()
	if err != nil {
		return err
	}
	pins := map[string]string{}
	manifest := ToolsManifest{Tool: "brickferry", Version: o.Version, Platforms: map[string]ToolsPlatform{}}
	for _, e := range exes {
		pins[e.Platform] = e.SHA256
		manifest.Platforms[e.Platform] = ToolsPlatform{
			File: fmt.Sprintf("bin/%s/brickferry.br", e.Platform), SHA256: e.SHA256,
			Size: e.Size, CompressedSize: int64(len(e.Compressed)),
		}
	}
	for _, t := range tasks {
		src := filepath.Join(o.Root, "tasks", t.Folder)
		dst := filepath.Join(stage, "tasks", t.Folder)
		files := map[string][]byte{}
		taskJSON, err := stampTask(filepath.Join(src, "task.json"), o.Version, o.DocsURL)
		if err != nil {
			return err
		}
		files["task.json"] = taskJSON
		if files["icon.png"], err = os.ReadFile(filepath.Join(src, "icon.png")); err != nil {
			return fmt.Errorf("%s: %w", t.Folder, err)
		}
		entry := "launcher.js"
		if t.Name == ToolsTask {
			entry = "install.js"
		}
		needed, err := requiredModules(modules, entry)
		if err != nil {
			return err
		}
		files["index.js"] = modules[entry]
		for _, name := range needed {
			files[name] = modules[name]
		}
		if t.Name == ToolsTask {
			for _, e := range exes {
				files[manifest.Platforms[e.Platform].File] = e.Compressed
			}
			if files["bin/manifest.json"], err = json.MarshalIndent(manifest, "", "  "); err != nil {
				return err
			}
		} else {
			cfg := LauncherConfig{
				Task: t.Name, Version: o.Version,
				Tools:  ToolsRef{ID: tools.ID, Name: tools.Name, Version: tools.Version},
				SHA256: pins,
			}
			if files["launcher.json"], err = json.MarshalIndent(cfg, "", "  "); err != nil {
				return err
			}
		}
		if err := writeFiles(dst, files); err != nil {
			return err
		}
	}
	ext, err := stampExtension(filepath.Join(o.Root, "vss-extension.json"), o.Version, tasks, o.links())
	if err != nil {
		return err
	}
	market := filepath.Join(o.Root, "build", "marketplace")
	overview, err := os.ReadFile(filepath.Join(market, "overview.md"))
	if err != nil {
		return err
	}
	icon, err := os.ReadFile(filepath.Join(market, "images", "extension-icon.png"))
	if err != nil {
		return err
	}
	return writeFiles(stage, map[string][]byte{
		"vss-extension.json":        ext,
		"overview.md":               []byte(linkDocs(string(overview), o.DocsURL)),
		"images/extension-icon.png": icon,
	})
}

var requireRe = regexp.MustCompile(`require\('\./([A-Za-z0-9_-]+)'\)`)

// requiredModules follows require('./x') from entry and returns the module
// files it needs (entry itself excluded), so each task carries only its code.
func requiredModules(modules map[string][]byte, entry string) ([]string, error) {
	seen := map[string]bool{entry: true}
	queue := []string{entry}
	var out []string
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		for _, m := range requireRe.FindAllSubmatch(modules[name], -1) {
			dep := string(m[1]) + ".js"
			if seen[dep] {
				continue
			}
			if modules[dep] == nil {
				return nil, fmt.Errorf("build/launcher/%s requires ./%s, which is missing", name, m[1])
			}
			seen[dep] = true
			out = append(out, dep)
			queue = append(queue, dep)
		}
	}
	sort.Strings(out)
	return out, nil
}

func writeFiles(dir string, files map[string][]byte) error {
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// readJSONObject reads a JSON object file (a task.json, the manifest).
func readJSONObject(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// stampTask sets the task version to VERSION (its major already matches)
// and makes its docs/ links absolute against docsURL (or leaves them out).
func stampTask(path, version, docsURL string) ([]byte, error) {
	t, err := readJSONObject(path)
	if err != nil {
		return nil, err
	}
	linkAll(t, docsURL)
	m := semver.FindStringSubmatch(version)
	v := map[string]int{}
	for i, k := range []string{"Major", "Minor", "Patch"} {
		v[k], _ = strconv.Atoi(m[i+1])
	}
	t["version"] = v
	delete(t, "$schema")
	return json.MarshalIndent(t, "", "  ")
}

// extensionLinks are the links set at package time.
type extensionLinks struct {
	Publisher, RepoURL, DocsURL string
}

func (o *Options) links() extensionLinks {
	return extensionLinks{Publisher: o.Publisher, RepoURL: o.RepoURL, DocsURL: o.DocsURL}
}

// stampExtension sets the extension version, the publisher and the links
// (none to a repository unless one is given), and checks that every task
// folder is both a file entry and a task contribution of the manifest.
func stampExtension(path, version string, tasks []TaskInfo, links extensionLinks) ([]byte, error) {
	ext, err := readJSONObject(path)
	if err != nil {
		return nil, err
	}
	ext["version"] = version
	if links.Publisher != "" {
		ext["publisher"] = links.Publisher
	}
	delete(ext, "links")
	delete(ext, "repository")
	if links.RepoURL != "" {
		l := map[string]any{"home": map[string]string{"uri": links.RepoURL}}
		if isGitHub(links.RepoURL) {
			l["support"] = map[string]string{"uri": links.RepoURL + "/issues"}
		}
		ext["links"] = l
		ext["repository"] = map[string]string{"type": "git", "uri": links.RepoURL}
	}
	linkAll(ext, links.DocsURL)
	files, contributed := map[string]bool{}, map[string]bool{}
	for _, f := range asList(ext["files"]) {
		if m, ok := f.(map[string]any); ok {
			files[fmt.Sprint(m["path"])] = true
		}
	}
	for _, c := range asList(ext["contributions"]) {
		m, _ := c.(map[string]any)
		if m["type"] != "ms.vss-distributed-task.task" {
			continue
		}
		props, _ := m["properties"].(map[string]any)
		contributed[fmt.Sprint(props["name"])] = true
	}
	for _, t := range tasks {
		p := "tasks/" + t.Folder
		if !files[p] || !contributed[p] {
			return nil, fmt.Errorf("vss-extension.json: %s needs a files entry and a ms.vss-distributed-task.task contribution", p)
		}
	}
	if len(contributed) != len(tasks) {
		return nil, fmt.Errorf("vss-extension.json contributes %d tasks, tasks/ has %d", len(contributed), len(tasks))
	}
	return json.MarshalIndent(ext, "", "  ")
}

// docsLink is a Markdown link to a page of the project's docs/ folder,
// with the space before it.
var docsLink = regexp.MustCompile(`\s*\[([^\]]*)\]\((docs/[^)\s]*)\)`)

// linkDocs makes the docs/ links of Markdown text absolute against docsURL,
// or, without one, leaves them out (a relative link means nothing in the
// pipeline editor or on the Marketplace).
func linkDocs(markdown, docsURL string) string {
	return docsLink.ReplaceAllStringFunc(markdown, func(m string) string {
		if docsURL == "" {
			return ""
		}
		p := docsLink.FindStringSubmatch(m)
		lead := m[:strings.Index(m, "[")]
		return lead + "[" + p[1] + "](" + strings.TrimSuffix(docsURL, "/") + "/" + p[2] + ")"
	})
}

// linkAll applies linkDocs to every string of a JSON document.
func linkAll(v any, docsURL string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok {
				x[k] = linkDocs(s, docsURL)
			} else {
				linkAll(e, docsURL)
			}
		}
	case []any:
		for i, e := range x {
			if s, ok := e.(string); ok {
				x[i] = linkDocs(s, docsURL)
			} else {
				linkAll(e, docsURL)
			}
		}
	}
}

func isGitHub(repoURL string) bool {
	u, err := url.Parse(repoURL)
	return err == nil && strings.EqualFold(u.Hostname(), "github.com")
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// tfx runs tfx-cli from build/devtools/node_modules (`npm ci` in
// build/devtools, the Makefile's devtools target, installs the pinned version).
func (o *Options) tfx(ctx context.Context, stage, vsix string) error {
	cli := filepath.Join(o.Root, "build", "devtools", "node_modules", "tfx-cli", "_build", "tfx-cli.js")
	if _, err := os.Stat(cli); err != nil {
		return fmt.Errorf("tfx-cli is not installed (run make devtools): %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(vsix), 0o755); err != nil {
		return err
	}
	_ = os.Remove(vsix)
	cmd := exec.CommandContext(ctx, "node", cli, "extension", "create",
		"--root", stage, "--manifest-globs", "vss-extension.json",
		"--output-path", vsix, "--no-prompt", "--no-color")
	cmd.Dir = stage
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("tfx extension create: %w\n%s", err, out.String())
	}
	if _, err := os.Stat(vsix); err != nil {
		return fmt.Errorf("tfx extension create wrote no %s:\n%s", vsix, out.String())
	}
	return nil
}

// ReadVSIX lists a .vsix (a zip): name → compressed and raw size.
func ReadVSIX(path string) (*zip.ReadCloser, error) {
	return zip.OpenReader(path)
}
