package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLinksSetAtPackageTime stamps the real task.json files and manifest
// with and without a repository.
func TestLinksSetAtPackageTime(t *testing.T) {
	root := repoRoot(t)
	tasks, err := ReadTasks(filepath.Join(root, "tasks"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		o         Options
		wantLinks map[string]any
		wantDocs  string // the prefix of every docs link; "" for none
	}{
		{"no repository", Options{}, nil, ""},
		{"GitHub repository", Options{Publisher: "contoso", RepoURL: "https://github.com/contoso/brickferry/"},
			map[string]any{"home": map[string]any{"uri": "https://github.com/contoso/brickferry"}, "support": map[string]any{"uri": "https://github.com/contoso/brickferry/issues"}},
			"https://github.com/contoso/brickferry/blob/main/docs/"},
		{"Azure Repos with a docs URL", Options{RepoURL: "https://dev.azure.com/contoso/mlops/_git/brickferry", DocsURL: "https://docs.contoso.example/brickferry"},
			map[string]any{"home": map[string]any{"uri": "https://dev.azure.com/contoso/mlops/_git/brickferry"}},
			"https://docs.contoso.example/brickferry/docs/"},
		{"Azure Repos without a docs URL", Options{RepoURL: "https://dev.azure.com/contoso/mlops/_git/brickferry"},
			map[string]any{"home": map[string]any{"uri": "https://dev.azure.com/contoso/mlops/_git/brickferry"}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := c.o
			o.Root, o.Version, o.Out = root, "1.4.2", t.TempDir()
			if err := o.defaults(); err != nil {
				t.Fatal(err)
			}
			raw, err := stampExtension(filepath.Join(root, "vss-extension.json"), o.Version, tasks, o.links())
			if err != nil {
				t.Fatal(err)
			}
			var ext map[string]any
			if err := json.Unmarshal(raw, &ext); err != nil {
				t.Fatal(err)
			}
			wantPublisher := "brickferry"
			if o.Publisher != "" {
				wantPublisher = o.Publisher
			}
			if ext["publisher"] != wantPublisher {
				t.Errorf("publisher %v, want %s", ext["publisher"], wantPublisher)
			}
			gotLinks, _ := json.Marshal(ext["links"])
			wantLinks, _ := json.Marshal(c.wantLinks)
			if c.wantLinks == nil {
				wantLinks = []byte("null")
			}
			if string(gotLinks) != string(wantLinks) {
				t.Errorf("links %s, want %s", gotLinks, wantLinks)
			}
			if (ext["repository"] != nil) != (o.RepoURL != "") {
				t.Errorf("repository %v with REPO_URL %q", ext["repository"], o.RepoURL)
			}
			texts := []string{string(raw)}
			for _, task := range tasks {
				b, err := stampTask(filepath.Join(root, "tasks", task.Folder, "task.json"), o.Version, o.DocsURL)
				if err != nil {
					t.Fatal(err)
				}
				texts = append(texts, string(b))
			}
			overview, err := os.ReadFile(filepath.Join(root, "build", "marketplace", "overview.md"))
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, linkDocs(string(overview), o.DocsURL))
			all := strings.Join(texts, "\n")
			if strings.Contains(all, "](docs/") {
				t.Error("a relative docs/ link is left")
			}
			if strings.Contains(all, "github.com/brickferry") {
				t.Error("a link to github.com/brickferry, which is not this project's")
			}
			learnMore := strings.Count(all, "[Learn more](")
			if c.wantDocs == "" && learnMore != 0 {
				t.Errorf("%d Learn more links without a docs URL", learnMore)
			}
			if c.wantDocs != "" {
				if learnMore != len(tasks) {
					t.Errorf("%d Learn more links, want one per task (%d)", learnMore, len(tasks))
				}
				if n := strings.Count(all, "]("+c.wantDocs); n < len(tasks) {
					t.Errorf("%d links under %s", n, c.wantDocs)
				}
			}
		})
	}
	if err := (&Options{Root: root, Version: "1.4.2", RepoURL: "http://example.com/x"}).defaults(); err == nil {
		t.Error("an http REPO_URL is accepted")
	}
}

func TestLinkDocs(t *testing.T) {
	const md = "Does things. [Learn more](docs/tasks/X.md) See [MLflow](https://mlflow.org)."
	if got := linkDocs(md, ""); got != "Does things. See [MLflow](https://mlflow.org)." {
		t.Errorf("without a docs URL: %q", got)
	}
	if got := linkDocs(md, "https://h/x/"); got != "Does things. [Learn more](https://h/x/docs/tasks/X.md) See [MLflow](https://mlflow.org)." {
		t.Errorf("with a docs URL: %q", got)
	}
}
