package live

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Publish is the extension make live-devops packages with a test
// publisher, publishes privately to the Marketplace, shares with the
// organization and installs there, so that its tasks (and BrickferryTools,
// which the launcher downloads from the organization) are what the
// organization's pipelines run. It uses the real tools: build/package (what
// `make package` runs), tfx-cli from build/devtools (`tfx extension
// publish --vsix --share-with`), and the extension management REST API to
// install (tfx-cli's `extension install` looks the organization up with a
// bare https.get, which no proxy setting reaches, so the stand-in could not
// test it).
type Publish struct {
	Root         string // the repository root: build/package and build/devtools
	Publisher    string // the Marketplace publisher id the .vsix is packaged under
	Version      string // the extension's version, greater than every published one
	Organization string // the Azure DevOps organization shared with and installed into
	// MarketplaceURL is tfx-cli's --service-url: https://marketplace.visualstudio.com.
	MarketplaceURL string
	// ExtMgmtURL is the organization's extension management,
	// https://extmgmt.dev.azure.com/<org> (the locationUrl of resource area
	// 6c2b0933-3600-42ae-bf8b-93d4f7e83594 of a dev.azure.com organization).
	ExtMgmtURL string
	// Token is a personal access token with the Marketplace (Publish) scope
	// for all accessible organizations and Extensions (Read & manage).
	Token string
	// Bin is the folder of <goos>-<goarch>/brickferry executables to carry
	// (default <Root>/dist/bin); Platforms the ones to carry.
	Bin       string
	Platforms []string
	// Cache is the packager's cache of compressed executables (default:
	// in the output folder), shared between packages of one executable.
	Cache string
	// Env is added to tfx-cli's environment (a proxy: HTTPS_PROXY; a CA:
	// NODE_EXTRA_CA_CERTS; HOME for its caches).
	Env  []string
	HTTP *http.Client // for the install call
	Log  io.Writer    // tfx-cli's and the packager's output, the token removed
}

// Environment variables of make live-devops's publishing.
const (
	EnvDevOpsPublisher = "BRICKFERRY_LIVE_DEVOPS_PUBLISHER" // a Marketplace publisher id for tests
	EnvDevOpsPAT       = "BRICKFERRY_LIVE_DEVOPS_PAT"       // a personal access token: Marketplace (Publish), Extensions (Read & manage)
)

// MarketplaceURL is the Visual Studio Marketplace, tfx-cli's default.
const MarketplaceURL = "https://marketplace.visualstudio.com"

// PublishFromEnv reads Publish for make live-devops: the organization from
// BRICKFERRY_LIVE_DEVOPS_URL (https://dev.azure.com/<org>), the publisher
// and the token from the variables above, and a version that increases
// with every run: VERSION's major and minor, the patch the current Unix
// time (the Marketplace refuses a version that is not greater; a task
// version's parts are 32-bit integers). It refuses without
// BRICKFERRY_LIVE=1 (ErrNotEnabled).
func PublishFromEnv(getenv func(string) string, root string, now time.Time) (Publish, error) {
	if getenv(EnvGate) != "1" {
		return Publish{}, ErrNotEnabled
	}
	p := Publish{Root: root, Publisher: getenv(EnvDevOpsPublisher), Token: getenv(EnvDevOpsPAT), MarketplaceURL: MarketplaceURL, HTTP: http.DefaultClient}
	var problems []string
	m := regexp.MustCompile(`^https://dev\.azure\.com/([^/\s]+)/?$`).FindStringSubmatch(getenv(EnvDevOpsURL))
	if m == nil {
		problems = append(problems, fmt.Sprintf("%s=%q: give the organization's URL, https://dev.azure.com/<org>", EnvDevOpsURL, getenv(EnvDevOpsURL)))
	} else {
		p.Organization = m[1]
		p.ExtMgmtURL = "https://extmgmt.dev.azure.com/" + m[1]
	}
	if p.Publisher == "" {
		problems = append(problems, EnvDevOpsPublisher+" is not set: give a Marketplace publisher id for test packages (not the production one)")
	}
	if p.Token == "" {
		problems = append(problems, EnvDevOpsPAT+" is not set: give a personal access token with the Marketplace (Publish) and Extensions (Read & manage) scopes")
	}
	raw, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		return Publish{}, fmt.Errorf("reading the extension's version: %w", err)
	}
	parts := strings.Split(strings.TrimSpace(string(raw)), ".")
	if len(parts) != 3 {
		return Publish{}, fmt.Errorf("VERSION %q is not MAJOR.MINOR.PATCH", strings.TrimSpace(string(raw)))
	}
	p.Version = parts[0] + "." + parts[1] + "." + strconv.FormatInt(now.Unix(), 10)
	if len(problems) > 0 {
		return Publish{}, fmt.Errorf("the live publishing settings:\n  %s", strings.Join(problems, "\n  "))
	}
	return p, nil
}

// PrintPublishPlan writes what Run will publish, share and install.
func PrintPublishPlan(w io.Writer, p Publish) {
	fmt.Fprintf(w, "Marketplace %s: publishes %s.brickferry %s privately (creates the extension on the first run, updates it after),\n", p.MarketplaceURL, p.Publisher, p.Version)
	fmt.Fprintf(w, "shares it with organization %s and installs it there (it stays installed: uninstall it in Organization settings → Extensions)\n", p.Organization)
}

// Run packages, publishes and shares, and installs; it returns the .vsix.
func (p Publish) Run(ctx context.Context, dir string) (string, error) {
	vsix, err := p.Package(ctx, dir)
	if err != nil {
		return "", err
	}
	if err := p.PublishAndShare(ctx, vsix); err != nil {
		return vsix, err
	}
	return vsix, p.Install(ctx)
}

// Package builds the .vsix in dir with build/package (as make package
// does), under p.Publisher and p.Version.
func (p Publish) Package(ctx context.Context, dir string) (string, error) {
	bin := p.Bin
	if bin == "" {
		bin = filepath.Join(p.Root, "dist", "bin")
	}
	platforms := p.Platforms
	if len(platforms) == 0 {
		platforms = []string{"linux-amd64"} // the Microsoft-hosted ubuntu agent
	}
	args := []string{"run", "./build/package", "-root", p.Root, "-version", p.Version, "-out", dir,
		"-bin", bin, "-platforms", strings.Join(platforms, ","), "-publisher", p.Publisher, "-quality", "5"}
	if p.Cache != "" {
		args = append(args, "-cache", p.Cache)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = p.Root
	if err := p.run(cmd); err != nil {
		return "", fmt.Errorf("packaging the extension: %w", err)
	}
	return filepath.Join(dir, "brickferry-"+p.Version+".vsix"), nil
}

// PublishAndShare runs `tfx extension publish --vsix --share-with` (tfx-cli
// from build/devtools): it creates or updates the extension, waits for the
// Marketplace to validate the new version and shares it with the organization.
func (p Publish) PublishAndShare(ctx context.Context, vsix string) error {
	tfx := filepath.Join(p.Root, "build", "devtools", "node_modules", "tfx-cli", "_build", "tfx-cli.js")
	if _, err := os.Stat(tfx); err != nil {
		return fmt.Errorf("tfx-cli is not installed (make devtools): %w", err)
	}
	cmd := exec.CommandContext(ctx, "node", tfx, "extension", "publish", "--vsix", vsix, "--share-with", p.Organization,
		"--service-url", p.MarketplaceURL, "--token", p.Token, "--no-prompt", "--no-color")
	cmd.Env = append(os.Environ(), p.Env...)
	if err := p.run(cmd); err != nil {
		return fmt.Errorf("tfx extension publish: %w", err)
	}
	return nil
}

// Install installs the shared extension in the organization (REST API
// 7.1, Installed Extensions - Install Extension By Name). An extension
// already installed (409) is left as it is: Azure DevOps moves an installed
// extension to a newly published version itself.
func (p Publish) Install(ctx context.Context) error {
	u := strings.TrimSuffix(p.ExtMgmtURL, "/") + "/_apis/extensionmanagement/installedextensionsbyname/" +
		url.PathEscape(p.Publisher) + "/brickferry?api-version=7.1-preview.1"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth("", p.Token)
	req.Header.Set("Accept", "application/json")
	res, err := p.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("installing %s.brickferry in %s: %w", p.Publisher, p.Organization, err)
	}
	defer func() { _ = res.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	switch res.StatusCode {
	case http.StatusOK:
		var got struct {
			Version string `json:"version"`
		}
		_ = json.Unmarshal(body, &got)
		p.logf("installed %s.brickferry %s in %s\n", p.Publisher, got.Version, p.Organization)
		return nil
	case http.StatusConflict:
		p.logf("%s.brickferry is already installed in %s\n", p.Publisher, p.Organization)
		return nil
	}
	var e struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &e)
	return fmt.Errorf("installing %s.brickferry in %s: HTTP %d: %s", p.Publisher, p.Organization, res.StatusCode, e.Message)
}

// run runs cmd, its output to p.Log and kept for the error, the token
// replaced in both.
func (p Publish) run(cmd *exec.Cmd) error {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := out.String()
	if p.Token != "" {
		text = strings.ReplaceAll(text, p.Token, "<token>")
	}
	p.logf("%s", text)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("%s exited with %d:\n%s", filepath.Base(cmd.Args[0]), ee.ExitCode(), lastLines(text, 20))
	}
	return err
}

func (p Publish) logf(format string, args ...any) {
	if p.Log != nil {
		fmt.Fprintf(p.Log, format, args...)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Download is how CheckDownload reaches the organization: its collection
// URL and a bearer token for it (the job's access token in a pipeline; for
// make live-devops, the Entra ID access token of BRICKFERRY_LIVE_DEVOPS_TOKEN,
// which Azure DevOps takes as a bearer token too), and what the agent would
// add to the environment (AGENT_PROXYURL, AGENT_CAINFO).
type Download struct {
	CollectionURL string
	Token         string
	Env           []string
}

// downloaded is what the launcher writes when it took the executable from
// the BrickferryTools task of the organization (build/launcher/launcher.js).
const downloaded = "downloaded from the organization"

// CheckDownload runs the launcher of the thin task MLflowPromote from the
// .vsix (node index.js) as a job without the BrickferryTools step runs it,
// with an empty tool cache in dir: the launcher downloads BrickferryTools
// from the organization (build/launcher/download.js), verifies the
// executable's sha256 and starts it. The task itself then fails for want
// of inputs, which is not what is checked: CheckDownload returns the
// launcher's output, and an error unless it downloaded.
func CheckDownload(ctx context.Context, vsix, dir string, d Download) (string, error) {
	task, err := ExtractTask(vsix, "MLflowPromoteV1", filepath.Join(dir, "_tasks"))
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join(task, "index.js"))
	cmd.Env = append(os.Environ(),
		"SYSTEM_TEAMFOUNDATIONCOLLECTIONURI="+d.CollectionURL,
		"ENDPOINT_URL_SYSTEMVSSCONNECTION="+d.CollectionURL,
		"ENDPOINT_AUTH_SCHEME_SYSTEMVSSCONNECTION=OAuth",
		"ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN="+d.Token,
		"AGENT_TOOLSDIRECTORY="+filepath.Join(dir, "tools"),
		"AGENT_TEMPDIRECTORY="+filepath.Join(dir, "temp"),
		"TF_BUILD=True",
	)
	cmd.Env = append(cmd.Env, d.Env...)
	out, err := cmd.CombinedOutput()
	text := string(out)
	if d.Token != "" {
		text = strings.ReplaceAll(text, d.Token, "<token>")
	}
	if err != nil {
		return text, fmt.Errorf("node %s: %w", filepath.Join(task, "index.js"), err)
	}
	if !strings.Contains(text, downloaded) {
		return text, fmt.Errorf("the launcher did not download BrickferryTools from %s:\n%s", d.CollectionURL, lastLines(text, 20))
	}
	return text, nil
}

// ExtractTask writes the task folder (e.g. MLflowPromoteV1) of a .vsix to
// <dir>/<folder> and returns that folder.
func ExtractTask(vsix, folder, dir string) (string, error) {
	z, err := zip.OpenReader(vsix)
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", vsix, err)
	}
	defer func() { _ = z.Close() }()
	out := filepath.Join(dir, folder)
	prefix := "tasks/" + folder + "/"
	n := 0
	for _, f := range z.File {
		name, ok := strings.CutPrefix(f.Name, prefix)
		if !ok || name == "" || strings.HasSuffix(name, "/") || strings.Contains(name, "..") {
			continue
		}
		if err := extractFile(f, filepath.Join(out, filepath.FromSlash(name))); err != nil {
			return "", err
		}
		n++
	}
	if n == 0 {
		return "", fmt.Errorf("%s has no task folder %s", vsix, folder)
	}
	return out, nil
}

func extractFile(f *zip.File, to string) error {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	defer func() { _ = rc.Close() }()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o644)
}
