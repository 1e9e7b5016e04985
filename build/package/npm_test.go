package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDemoInstallsOnlyAzurite: the root package.json (what `make demo`
// installs) holds Azurite alone, the packaging and schema tools are in
// build/devtools, and `make demo` runs the root install only, while `make
// test` runs both.
func TestDemoInstallsOnlyAzurite(t *testing.T) {
	root := repoRoot(t)
	deps := func(dir string) []string {
		t.Helper()
		var pkg struct {
			Dependencies    map[string]string `json:"dependencies"`
			DevDependencies map[string]string `json:"devDependencies"`
		}
		data, err := os.ReadFile(filepath.Join(dir, "package.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &pkg); err != nil {
			t.Fatal(err)
		}
		var names []string
		for n := range pkg.Dependencies {
			names = append(names, n)
		}
		for n := range pkg.DevDependencies {
			names = append(names, n)
		}
		slices.Sort(names)
		return names
	}
	if got := deps(root); !slices.Equal(got, []string{"azurite"}) {
		t.Errorf("package.json installs %v; make demo needs only azurite (the others belong in build/devtools/package.json)", got)
	}
	for _, tool := range []string{"tfx-cli", "azure-pipelines-task-lib", "azure-pipelines-language-service"} {
		if !slices.Contains(deps(filepath.Join(root, "build", "devtools")), tool) {
			t.Errorf("build/devtools/package.json lacks %s", tool)
		}
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make here")
	}
	installs := func(target string) []string {
		t.Helper()
		// -n: print what would run; -B: as on a fresh clone, nothing up to date.
		cmd := exec.Command("make", "-n", "-B", target)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make -n -B %s: %v\n%s", target, err, out)
		}
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "npm ci") {
				lines = append(lines, strings.TrimSpace(l))
			}
		}
		return lines
	}
	if got := installs("demo"); len(got) != 1 || strings.Contains(got[0], "devtools") {
		t.Errorf("make demo runs %q; want the root's npm ci alone", got)
	}
	// make test runs test-node in a second make after the others; make -n -B
	// prints that make's devtools install again, which a real run skips
	// (the install is up to date by then). Distinct commands are what count.
	got := installs("test")
	slices.Sort(got)
	if got = slices.Compact(got); len(got) != 2 || !strings.Contains(got[0], "devtools") || strings.Contains(got[1], "devtools") {
		t.Errorf("make test runs %q; want the root's and build/devtools' npm ci", got)
	}
}
