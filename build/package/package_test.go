package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
)

// TestPackageVSIX builds a .vsix with the packaging program from the real
// executables in dist/bin (linux/amd64 from `make build-host` at least; all
// five after `make build`), then opens it and checks the files of every task.
// It uses a fast brotli setting; `make package` uses the best one.
func TestPackageVSIX(t *testing.T) {
	root := repoRoot(t)
	var platforms []string
	for _, p := range AllPlatforms {
		if fileExists(filepath.Join(root, "dist", "bin", p, exeFile(p))) {
			platforms = append(platforms, p)
		}
	}
	if len(platforms) == 0 {
		t.Skip("no executable in dist/bin: run make build-host (make test does)")
	}
	if !fileExists(filepath.Join(root, "build", "devtools", "node_modules", "tfx-cli")) {
		t.Skip("tfx-cli is not installed: run make devtools (make test does)")
	}
	out := t.TempDir()
	res, err := Build(context.Background(), Options{
		Root: root, Version: "1.4.2", Out: out, Platforms: platforms, Quality: 5, Workers: 2,
		Log: testWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(res.VSIX) != "brickferry-1.4.2.vsix" {
		t.Errorf("vsix name %s", res.VSIX)
	}
	if res.VSIXBytes > 50_000_000 {
		t.Errorf("vsix is %d bytes, over the 50 MB Marketplace guidance", res.VSIXBytes)
	}
	z, err := zip.OpenReader(res.VSIX)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = z.Close() }()
	files := map[string]*zip.File{}
	for _, f := range z.File {
		if !strings.HasSuffix(f.Name, "/") {
			files[f.Name] = f
		}
	}
	read := func(name string) []byte {
		t.Helper()
		f := files[name]
		if f == nil {
			t.Fatalf("%s is not in the vsix", name)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = rc.Close() }()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// the extension manifest tfx wrote carries the stamped version, is not
	// public (no Public gallery flag), and has the icon and the overview page
	vsixManifest := string(read("extension.vsixmanifest"))
	for _, want := range []string{
		`<Identity Language="en-US" Id="brickferry" Publisher="brickferry" Version="1.4.2"/>`,
		`<Categories>Azure Pipelines</Categories>`,
		`Type="Microsoft.VisualStudio.Services.Icons.Default" d:Source="File" Path="images/extension-icon.png"`,
		`Type="Microsoft.VisualStudio.Services.Content.Details" d:Source="File" Path="overview.md"`,
	} {
		if !strings.Contains(vsixManifest, want) {
			t.Errorf("extension.vsixmanifest lacks %s", want)
		}
	}
	if strings.Contains(vsixManifest, "Public") {
		t.Errorf("extension.vsixmanifest marks the extension public:\n%s", vsixManifest)
	}
	read("overview.md")
	read("images/extension-icon.png")

	// Without -repo-url the extension links to no repository and no page
	// outside it; the tasks keep no relative docs/ link either.
	for name := range files {
		if !strings.HasSuffix(name, ".json") && !strings.HasSuffix(name, ".md") && !strings.HasSuffix(name, ".vsixmanifest") && !strings.HasSuffix(name, ".js") {
			continue
		}
		text := string(read(name))
		if strings.Contains(text, "github.com") || strings.Contains(text, "](docs/") {
			t.Errorf("%s links to a repository or to docs/ without -repo-url", name)
		}
	}

	pins := map[string]string{}
	for _, p := range platforms {
		b, err := os.ReadFile(filepath.Join(root, "dist", "bin", p, exeFile(p)))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		pins[p] = hex.EncodeToString(sum[:])
	}

	tasks, err := ReadTasks(filepath.Join(root, "tasks"))
	if err != nil {
		t.Fatal(err)
	}
	var toolsID string
	for _, task := range tasks {
		if task.Name == ToolsTask {
			toolsID = task.ID
		}
	}
	thinModules := []string{"download.js", "platform.js", "toolcache.js", "vso.js", "zip.js"}
	toolsModules := []string{"platform.js", "toolcache.js", "vso.js"}
	for _, task := range tasks {
		t.Run(task.Folder, func(t *testing.T) {
			prefix := "tasks/" + task.Folder + "/"
			var got []string
			var size uint64
			for name, f := range files {
				if strings.HasPrefix(name, prefix) {
					got = append(got, strings.TrimPrefix(name, prefix))
					size += f.CompressedSize64
				}
			}
			sort.Strings(got)
			want := []string{"icon.png", "index.js", "task.json"}
			if task.Name == ToolsTask {
				want = append(want, toolsModules...)
				want = append(want, "bin/manifest.json")
				for _, p := range platforms {
					want = append(want, "bin/"+p+"/brickferry.br")
				}
			} else {
				want = append(want, thinModules...)
				want = append(want, "launcher.json")
				if size > 64<<10 {
					t.Errorf("thin task is %d bytes in the vsix, want a few kilobytes", size)
				}
			}
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("files:\n got %v\nwant %v", got, want)
			}

			var tj map[string]any
			if err := json.Unmarshal(read(prefix+"task.json"), &tj); err != nil {
				t.Fatal(err)
			}
			if v, _ := json.Marshal(tj["version"]); string(v) != `{"Major":1,"Minor":4,"Patch":2}` {
				t.Errorf("task version %s, want 1.4.2 from VERSION", v)
			}
			for h, e := range tj["execution"].(map[string]any) {
				target := e.(map[string]any)["target"].(string)
				if files[prefix+target] == nil {
					t.Errorf("execution.%s.target %s is not in the task", h, target)
				}
			}

			if task.Name == ToolsTask {
				var m ToolsManifest
				if err := json.Unmarshal(read(prefix+"bin/manifest.json"), &m); err != nil {
					t.Fatal(err)
				}
				if m.Version != "1.4.2" || len(m.Platforms) != len(platforms) {
					t.Errorf("manifest %+v", m)
				}
				for _, p := range platforms {
					e := m.Platforms[p]
					raw, err := io.ReadAll(brotli.NewReader(bytes.NewReader(read(prefix + e.File))))
					if err != nil {
						t.Fatalf("%s: %v", e.File, err)
					}
					sum := sha256.Sum256(raw)
					if got := hex.EncodeToString(sum[:]); got != pins[p] || e.SHA256 != pins[p] {
						t.Errorf("%s: decompressed sha256 %s, manifest %s, dist/bin %s", p, got, e.SHA256, pins[p])
					}
				}
				return
			}
			var cfg LauncherConfig
			if err := json.Unmarshal(read(prefix+"launcher.json"), &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.Task != task.Name || cfg.Version != "1.4.2" || cfg.Tools.ID != toolsID || cfg.Tools.Version != "1.4.2" || cfg.Tools.Name != ToolsTask {
				t.Errorf("launcher.json %+v", cfg)
			}
			for _, p := range platforms {
				if cfg.SHA256[p] != pins[p] {
					t.Errorf("launcher.json pins %s to %s, dist/bin has %s", p, cfg.SHA256[p], pins[p])
				}
			}
		})
	}
}

func TestRequiredModules(t *testing.T) {
	mods := map[string][]byte{
		"launcher.js": []byte("require('./a'); require('fs')"),
		"a.js":        []byte("const b = require('./b');"),
		"b.js":        []byte("require('./a')"),
		"c.js":        nil,
	}
	got, err := requiredModules(mods, "launcher.js")
	if err != nil || strings.Join(got, ",") != "a.js,b.js" {
		t.Errorf("got %v, %v", got, err)
	}
	mods["b.js"] = []byte("require('./missing')")
	if _, err := requiredModules(mods, "launcher.js"); err == nil {
		t.Error("a missing module was not reported")
	}
}

func TestVersionMustMatchTaskMajor(t *testing.T) {
	_, err := Build(context.Background(), Options{Root: repoRoot(t), Version: "2.0.0", Out: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "a new major needs new <Name>V<Major> task folders") {
		t.Errorf("got %v", err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
