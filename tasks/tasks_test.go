package tasks

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the generated sections of docs/tasks/*.md")

// TestReferenceDocsAreCurrent checks that the inputs and outputs tables of
// docs/tasks/<Name>.md match task.json. Run `go test ./tasks -update` after
// changing a task.json.
func TestReferenceDocsAreCurrent(t *testing.T) {
	defs, err := All()
	require.NoError(t, err)
	for folder, def := range defs {
		if def.Name == "BrickferryTools" {
			continue // documented in docs/packaging.md
		}
		t.Run(def.Name, func(t *testing.T) {
			data, err := files.ReadFile(folder + "/task.json")
			require.NoError(t, err)
			ref, err := Reference(data)
			require.NoError(t, err)
			path := filepath.Join("..", "docs", "tasks", def.Name+".md")
			doc, err := os.ReadFile(path)
			if os.IsNotExist(err) && *update {
				doc = []byte("# " + def.FriendlyName + " (`" + def.Name + "@1`)\n")
			} else {
				require.NoError(t, err, "docs/tasks/%s.md is missing; run go test ./tasks -update", def.Name)
			}
			want := SpliceReference(string(doc), ref)
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
				return
			}
			assert.Equal(t, want, string(doc), "docs/tasks/%s.md is stale: run go test ./tasks -update", def.Name)
		})
	}
}

func TestSpliceReference(t *testing.T) {
	doc := "# T\n\nprose\n"
	once := SpliceReference(doc, "table v1\n")
	assert.True(t, strings.HasPrefix(once, "# T\n\nprose\n\n## Reference\n\n"+BeginReference))
	twice := SpliceReference(once+"\nmore prose\n", "table v2\n")
	assert.Contains(t, twice, "table v2\n"+EndReference+"\n\nmore prose\n")
	assert.NotContains(t, twice, "table v1")
}
