package batchscore

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/examples/notebooks"
)

// TestNotebookParametersMatch: the task passes exactly the parameters the
// shipped notebook declares (its PARAMETERS tuple).
func TestNotebookParametersMatch(t *testing.T) {
	m := regexp.MustCompile(`(?s)PARAMETERS = \((.*?)\)`).FindSubmatch(notebooks.BatchScore)
	require.NotNil(t, m, "batch_score.py declares PARAMETERS")
	var declared []string
	for _, q := range regexp.MustCompile(`"([a-z_]+)"`).FindAllSubmatch(m[1], -1) {
		declared = append(declared, string(q[1]))
	}
	got := slices.Clone(taskParams)
	slices.Sort(got)
	slices.Sort(declared)
	assert.Equal(t, declared, got)
	assert.Regexp(t, `^# Databricks notebook source\n`, string(notebooks.BatchScore))
}

// TestNotebookPython compiles the shipped notebook and runs its standard
// library unit tests, when python3 is installed (it is in CI).
func TestNotebookPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	dir := filepath.Join("..", "..", "examples", "notebooks")
	tmp := t.TempDir()
	out, err := exec.Command(py, "-c", "import py_compile,sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)",
		filepath.Join(dir, "batch_score.py"), filepath.Join(tmp, "batch_score.pyc")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	cmd := exec.Command(py, "-B", "-m", "unittest", "discover", "-s", filepath.Join(dir, "tests"), "-p", "test_batch_score.py")
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
}
