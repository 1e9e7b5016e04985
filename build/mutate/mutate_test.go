package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWhy: the line that says why a test failed, from testify's and
// t.Fatal's output as go test -json passes it on.
func TestWhy(t *testing.T) {
	notEqual := []string{
		"    idempotency_test.go:120: \n",
		"        \tError Trace:\t/x/idempotency_test.go:120\n",
		"        \tError:      \tNot equal: \n",
		"        \t            \texpected: 1\n",
		"        \t            \tactual  : 2\n",
		"        \t            \t\n",
		"        \t            \tDiff:\n",
		"        \t            \t--- Expected\n",
		"        \tTest:       \tTestStart\n",
	}
	assert.Equal(t, "Not equal: expected: 1 actual : 2", why(notEqual))
	assert.Equal(t, "a retry takes over", why(append(notEqual, "        \tMessages:   \ta retry takes over\n")))
	// A message of several lines is read whole.
	assert.Equal(t, "the state differs: DUPLICATE: prod jobs: 2", why(append(notEqual,
		"        \tMessages:   \tthe state differs:\n", "        \t            \tDUPLICATE: prod jobs: 2\n", "    --- FAIL: TestFaults/seeds/seed=3\n")))
	assert.Equal(t, "gate not passed", why([]string{"=== RUN   TestX\n", "    gate_test.go:12: gate not passed\n"}))
	// The first failed assertion speaks, not a later one's message.
	second := []string{"    x_test.go:9: \n", "        \tError Trace:\t/x/x_test.go:9\n", "        \tError:      \tShould be true\n",
		"        \tTest:       \tTestX\n", "        \tMessages:   \ta later check\n"}
	assert.Equal(t, "Not equal: expected: 1 actual : 2", why(append(append([]string(nil), notEqual...), second...)))
	withMsg := append(append([]string(nil), notEqual...), "        \tMessages:   \tthe first\n")
	assert.Equal(t, "the first", why(append(withMsg, second...)))
}

// TestMutantsApplyExactlyOnce: a search text must be in its file exactly
// once; the list's own mistakes are errors, not survivors.
func TestMutantsApplyExactlyOnce(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "a"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "a", "x.go"), []byte("one\ntwo\ntwo\n"), 0o644))
	write := func(name, text string) {
		require.NoError(t, os.MkdirAll(filepath.Join(root, "m"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, "m", name+".txtar"), []byte(text), 0o644))
	}
	for name, tc := range map[string]struct{ text, err string }{
		"ok":        {"bug: b\ntest: ./a ^TestA$\n-- search a/x.go --\none\n-- replace a/x.go --\nzero\n", ""},
		"not found": {"bug: b\ntest: ./a\n-- search a/x.go --\nthree\n-- replace a/x.go --\nfour\n", "the search text is not in a/x.go"},
		"twice":     {"bug: b\ntest: ./a\n-- search a/x.go --\ntwo\n-- replace a/x.go --\n", "occurs 2 times"},
		"no bug":    {"test: ./a\n-- search a/x.go --\none\n-- replace a/x.go --\n", "no bug: line"},
		"no test":   {"bug: b\n-- search a/x.go --\none\n-- replace a/x.go --\n", "no test: line"},
		"unpaired":  {"bug: b\ntest: ./a\n-- search a/x.go --\none\n", "pairs of"},
		"same":      {"bug: b\ntest: ./a\n-- search a/x.go --\none\n-- replace a/x.go --\none\n", "the same text"},
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, os.RemoveAll(filepath.Join(root, "m")))
			write(strings.ReplaceAll(name, " ", "-"), tc.text)
			ms, err := loadMutants(root, "m", nil)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			require.Len(t, ms, 1)
			assert.Equal(t, []testCmd{{Package: "./a/", Run: "^TestA$"}}, ms[0].Tests)
			original, err := ms[0].plant(root, writeFile)
			require.NoError(t, err)
			data, _ := os.ReadFile(filepath.Join(root, "a", "x.go"))
			assert.Equal(t, "zero\ntwo\ntwo\n", string(data))
			require.NoError(t, restore(root, original))
			data, _ = os.ReadFile(filepath.Join(root, "a", "x.go"))
			assert.Equal(t, "one\ntwo\ntwo\n", string(data))
		})
	}
}
