package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// repoRoot is the repository root (tests run in build/package).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

type taskJSON struct {
	ID                  string `json:"id"`
	Name                string `json:"name"`
	FriendlyName        string `json:"friendlyName"`
	MinimumAgentVersion string `json:"minimumAgentVersion"`
	Version             struct{ Major, Minor, Patch int }
	Execution           map[string]struct {
		Target string `json:"target"`
	} `json:"execution"`
}

func compileSchema(t *testing.T, path string) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	c := jsonschema.NewCompiler()
	url := "file://" + filepath.ToSlash(path)
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

func taskFolders(t *testing.T, root string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(root, "tasks", "*", "task.json"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no tasks/*/task.json: %v", err)
	}
	for i, d := range dirs {
		dirs[i] = filepath.Dir(d)
	}
	return dirs
}

// TestTaskJSONSchema validates every task.json against the task schema: our
// restatement in testdata, and tasks.schema.json from azure-pipelines-task-lib
// when the installed package ships it (5.281.0 does not).
func TestTaskJSONSchema(t *testing.T) {
	root := repoRoot(t)
	schemas := []string{filepath.Join(root, "build", "package", "testdata", "task.schema.json")}
	if p := filepath.Join(root, "build", "devtools", "node_modules", "azure-pipelines-task-lib", "tasks.schema.json"); fileExists(p) {
		schemas = append(schemas, p)
	}
	for _, sp := range schemas {
		s := compileSchema(t, sp)
		for _, dir := range taskFolders(t, root) {
			t.Run(filepath.Base(dir)+"/"+filepath.Base(sp), func(t *testing.T) {
				b, err := os.ReadFile(filepath.Join(dir, "task.json"))
				if err != nil {
					t.Fatal(err)
				}
				inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Validate(inst); err != nil {
					t.Errorf("%v", err)
				}
			})
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestTaskPolicy: unique GUIDs, folder = name + V + major, friendly names
// within 40 characters, the Node24 + Node20_1 handlers on the launcher, a
// 32×32 icon, and one contribution per task in vss-extension.json.
func TestTaskPolicy(t *testing.T) {
	root := repoRoot(t)
	ids := map[string]string{}
	names := map[string]string{}
	var folders []string
	for _, dir := range taskFolders(t, root) {
		folder := filepath.Base(dir)
		folders = append(folders, folder)
		b, err := os.ReadFile(filepath.Join(dir, "task.json"))
		if err != nil {
			t.Fatal(err)
		}
		var tj taskJSON
		if err := json.Unmarshal(b, &tj); err != nil {
			t.Fatalf("%s: %v", folder, err)
		}
		id := strings.ToLower(tj.ID)
		if other, dup := ids[id]; dup {
			t.Errorf("%s and %s share the id %s", folder, other, tj.ID)
		}
		ids[id] = folder
		if other, dup := names[strings.ToLower(tj.Name)]; dup {
			t.Errorf("%s and %s share the name %s", folder, other, tj.Name)
		}
		names[strings.ToLower(tj.Name)] = folder
		if want := fmt.Sprintf("%sV%d", tj.Name, tj.Version.Major); folder != want {
			t.Errorf("folder %s holds %s major %d: must be %s", folder, tj.Name, tj.Version.Major, want)
		}
		if n := len([]rune(tj.FriendlyName)); n == 0 || n > 40 {
			t.Errorf("%s: friendlyName %q has %d characters (1-40)", folder, tj.FriendlyName, n)
		}
		if tj.MinimumAgentVersion != "3.232.1" {
			t.Errorf("%s: minimumAgentVersion %q, want 3.232.1 (Node20_1/Node24 handlers)", folder, tj.MinimumAgentVersion)
		}
		for _, h := range []string{"Node24", "Node20_1"} {
			if tj.Execution[h].Target != "index.js" {
				t.Errorf("%s: execution.%s.target = %q, want index.js (the launcher copied in at package time)", folder, h, tj.Execution[h].Target)
			}
		}
		if len(tj.Execution) != 2 {
			t.Errorf("%s: execution has %d handlers, want exactly Node24 and Node20_1", folder, len(tj.Execution))
		}
		checkIcon(t, filepath.Join(dir, "icon.png"), 32)
	}
	// The handler target exists once packaged: index.js comes from these.
	for _, f := range []string{"launcher.js", "install.js"} {
		if !fileExists(filepath.Join(root, "build", "launcher", f)) {
			t.Errorf("build/launcher/%s is missing", f)
		}
	}
	checkIcon(t, filepath.Join(root, "build", "marketplace", "images", "extension-icon.png"), 128)

	var ext struct {
		Public        bool     `json:"public"`
		Categories    []string `json:"categories"`
		Contributions []struct {
			Type       string
			Properties struct{ Name string }
		}
	}
	b, err := os.ReadFile(filepath.Join(root, "vss-extension.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ext); err != nil {
		t.Fatal(err)
	}
	if ext.Public {
		t.Error("vss-extension.json: the extension must be private by default (public: false)")
	}
	contributed := map[string]bool{}
	for _, c := range ext.Contributions {
		if c.Type == "ms.vss-distributed-task.task" {
			contributed[c.Properties.Name] = true
		}
	}
	for _, f := range folders {
		if !contributed["tasks/"+f] {
			t.Errorf("vss-extension.json has no task contribution for tasks/%s", f)
		}
	}
	if len(contributed) != len(folders) {
		t.Errorf("vss-extension.json contributes %d tasks, tasks/ has %d", len(contributed), len(folders))
	}
}

func checkIcon(t *testing.T, path string, size int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer func() { _ = f.Close() }()
	img, err := png.Decode(f)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if b := img.Bounds(); b.Dx() != size || b.Dy() != size {
		t.Errorf("%s is %dx%d, want %dx%d", path, b.Dx(), b.Dy(), size, size)
	}
}

// TestIconsAreGenerated keeps the committed icons equal to what -icons draws.
// It compares pixels, not PNG bytes: image/png's compressed output changes
// between Go releases.
func TestIconsAreGenerated(t *testing.T) {
	root := repoRoot(t)
	want := brickIcon(32)
	for _, dir := range taskFolders(t, root) {
		f, err := os.Open(filepath.Join(dir, "icon.png"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		_ = f.Close()
		if err != nil {
			t.Fatalf("%s/icon.png: %v", filepath.Base(dir), err)
		}
		if !samePixels(img, want) {
			t.Errorf("%s/icon.png differs from the generated icon: run go run ./build/package -icons", filepath.Base(dir))
		}
	}
}

func samePixels(a image.Image, b *image.NRGBA) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := b.Rect.Min.Y; y < b.Rect.Max.Y; y++ {
		for x := b.Rect.Min.X; x < b.Rect.Max.X; x++ {
			if color.NRGBAModel.Convert(a.At(x, y)) != b.NRGBAAt(x, y) {
				return false
			}
		}
	}
	return true
}

// TestSchemaRejects shows the schema catches what the agent or the
// Marketplace would refuse.
func TestSchemaRejects(t *testing.T) {
	s := compileSchema(t, filepath.Join(repoRoot(t), "build", "package", "testdata", "task.schema.json"))
	base := `"id":"b270e2a7-15b3-4c74-b73d-494324b41029","name":"X","description":"d","helpMarkDown":"h","category":"Utility","author":"a","version":{"Major":1,"Minor":0,"Patch":0},"minimumAgentVersion":"3.232.1","instanceNameFormat":"x"`
	cases := map[string]string{
		"friendlyName over 40": `{` + base + `,"friendlyName":"` + strings.Repeat("n", 41) + `","execution":{"Node24":{"target":"index.js"}}}`,
		"bad input name":       `{` + base + `,"friendlyName":"f","inputs":[{"name":"my-input","label":"l","type":"string"}],"execution":{"Node24":{"target":"index.js"}}}`,
		"unknown handler":      `{` + base + `,"friendlyName":"f","execution":{"Node99":{"target":"index.js"}}}`,
		"bad output name":      `{` + base + `,"friendlyName":"f","outputVariables":[{"name":"run.id"}],"execution":{"Node24":{"target":"index.js"}}}`,
		"unknown property":     `{` + base + `,"friendlyName":"f","colour":"red","execution":{"Node24":{"target":"index.js"}}}`,
	}
	for name, doc := range cases {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := s.Validate(inst); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestExecutableLinksNoTestWorld checks what the depguard rule in
// .golangci.yml enforces, on the linked result: the shipped executable's
// dependencies contain no package of internal/testworld.
func TestExecutableLinksNoTestWorld(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/brickferry")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/brickferry: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %d packages: %q", len(deps), deps)
	}
	for _, d := range deps {
		if strings.Contains(d, "/internal/testworld") {
			t.Errorf("cmd/brickferry links the test-world package %s", d)
		}
	}
}
