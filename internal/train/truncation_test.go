package train_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
)

// TestNotebookOutputIsCutOnACharacterBoundary: an exit value over 32 KiB is
// cut for the notebookOutput variable; a cut through a multi-byte character
// would hand later steps invalid UTF-8.
func TestNotebookOutputIsCutOnACharacterBoundary(t *testing.T) {
	w := newWorld(t)
	b := trainBehaviour(t, 0)
	// 32767 ASCII bytes then "é" (2 bytes): byte 32768 is the middle of "é".
	b.NotebookOutput = strings.Repeat("a", 32<<10-1) + "é" + strings.Repeat("b", 100)
	w.ws.OnNotebook(nb, b)
	res := w.run(map[string]string{"notebookPath": nb, "singleNode": "true", "mlflowExperiment": "/Shared/churn"})
	require.Equal(t, agent.SucceededWithIssues, res.Result, res.Stdout)
	out := res.Outputs["notebookOutput"]
	assert.True(t, utf8.ValidString(out), "notebookOutput is valid UTF-8")
	assert.Equal(t, strings.Repeat("a", 32<<10-1), out)
}

// TestATruncatedExitValueIsNotCalledEmpty: when Databricks cut the exit
// value, the error says so instead of claiming it names no run.
func TestATruncatedExitValueIsNotCalledEmpty(t *testing.T) {
	w := newWorld(t)
	b := trainBehaviour(t, 0)
	b.NotebookOutput = `{"mlflow_run_id": "0123456789abcdef", "history": [1, 2, 3`
	b.Truncated = true
	w.ws.OnNotebook(nb, b)
	res := w.run(map[string]string{"notebookPath": nb, "singleNode": "true"})
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	errs := strings.Join(res.Errors, "\n")
	assert.Contains(t, errs, "truncated by Databricks")
	assert.NotContains(t, errs, "names none")
}
