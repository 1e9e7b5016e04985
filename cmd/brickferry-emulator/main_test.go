package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/agenttest"
)

// TestPrintedCommandsRun starts the emulator as a user would, takes the
// shell lines it prints and runs them with the real brickferry executable:
// train in dev, register the run's model, copy it to prod, gate it with an
// OAuth client, move it to Staging through DATABRICKS_HOST/DATABRICKS_TOKEN.
func TestPrintedCommandsRun(t *testing.T) {
	exe := agenttest.Executable(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut agenttest.SyncBuffer
	done := make(chan int)
	go func() { done <- run(ctx, options{dir: t.TempDir(), fast: true}, &out, &errOut) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(out.String(), "Press Ctrl+C") {
		select {
		case code := <-done:
			t.Fatalf("the emulator stopped with %d: %s", code, errOut.String())
		case <-time.After(50 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "the emulator printed no commands: %s", errOut.String())
	}
	printed := out.String()
	start := strings.Index(printed, "paste into a shell:\n\n")
	end := strings.Index(printed, "\nPress Ctrl+C")
	require.True(t, start >= 0 && end > start, printed)
	script := printed[start+len("paste into a shell:\n\n") : end]
	require.Contains(t, script, "command=copy", "Azurite is installed (npm ci), so the copy line is printed")

	work := t.TempDir()
	cmd := exec.Command("sh", "-e", "-c", script) //nolint:gosec // the lines under test
	cmd.Dir = work
	cmd.Env = []string{
		"PATH=" + filepath.Dir(exe) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + work, // no ~/.databrickscfg of the machine
	}
	if filepath.Base(exe) != "brickferry" {
		require.NoError(t, os.Symlink(exe, filepath.Join(work, "brickferry")))
		cmd.Env[0] = "PATH=" + work + string(os.PathListSeparator) + os.Getenv("PATH")
	}
	res, err := cmd.CombinedOutput()
	require.NoError(t, err, "the printed lines failed:\n%s\n%s", script, res)
	log := string(res)
	assert.Contains(t, log, "output modelUri = runs:/")
	assert.Contains(t, log, "Registered version 1 from")
	assert.Contains(t, log, "target workspace")
	assert.Contains(t, log, "OAuth client id and secret come from profile dev-oauth")
	assert.Equal(t, 5, strings.Count(log, "result: Succeeded"), log)
}
