package suites_test

import (
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/fixtures"
)

// The agent-fidelity suite runs the built executable as the agent would on
// an agent configured the way its documentation describes: a client
// certificate (docs/design/clientcert.md), a cancel the workspace does not
// answer (ProcessInvoker.cs timings), and a Windows cancel, where the
// console's Ctrl+C reaches brickferry and the launcher forwards nothing
// (ProcessInvoker.Windows.cs).

const fidelityNotebook = "/Repos/mlops/churn/notebooks/train"

func trainingWorkspace(t *testing.T, opts emulator.Options) *emulator.Workspace {
	t.Helper()
	ws := startWorkspace(t, opts)
	ws.OnNotebook(fidelityNotebook, emulator.Behaviour{Duration: 50 * time.Millisecond, Train: &emulator.Train{
		Experiment: "/Shared/churn", ModelDir: fixtures.ChurnModel(t), Metrics: map[string]float64{"auc": 0.91},
	}})
	return ws
}

// TestClientCertificateReachesTheWorkspace: the workspace sits behind TLS
// that requires the agent's client certificate; the task uses it as the
// agent hands it over, a password-protected key or a .pfx archive.
func TestClientCertificateReachesTheWorkspace(t *testing.T) {
	exe := agenttest.Executable(t)
	cert := fixtures.ClientCert(t)
	caPEM, err := os.ReadFile(cert.CA)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	ws := trainingWorkspace(t, emulator.Options{ClientCAs: pool, RunPending: time.Millisecond, RunTerminating: time.Millisecond})
	in := map[string]string{"notebookPath": fidelityNotebook, "workers": "1"}

	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"encrypted PEM key and password", map[string]string{"AGENT_CLIENTCERT": cert.Cert, "AGENT_CLIENTCERTKEY": cert.Key}},
		{".pfx archive and password", map[string]string{"AGENT_CLIENTCERTARCHIVE": cert.Archive}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := agentRun(t, ws, "DatabricksTrain", in, tc.env)
			run.Secrets["Agent.ClientCertPassword"] = cert.Password // SECRET_AGENT_CLIENTCERTPASSWORD
			res := run.Exec(t, exe)
			require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
			assert.NotEmpty(t, res.Outputs["mlflowRunId"])
			assert.NotContains(t, res.Stdout, cert.Password)
		})
	}

	t.Run("without a client certificate the workspace refuses the connection", func(t *testing.T) {
		res := agentRun(t, ws, "DatabricksTrain", in, nil).Exec(t, exe)
		require.Equal(t, agent.Failed, res.Result, res.Stdout)
		assert.Contains(t, strings.Join(res.Errors, "\n"), "certificate required")
	})

	t.Run("without the password the task fails naming the agent setting, before any call", func(t *testing.T) {
		before := len(ws.Requests())
		res := agentRun(t, ws, "DatabricksTrain", in, map[string]string{"AGENT_CLIENTCERT": cert.Cert, "AGENT_CLIENTCERTKEY": cert.Key}).Exec(t, exe)
		require.Equal(t, agent.Failed, res.Result, res.Stdout)
		assert.Contains(t, strings.Join(res.Errors, "\n"), "Agent.ClientCertPassword")
		assert.Equal(t, before, len(ws.Requests()))
	})
}

// TestCancelCompletesWhenTheWorkspaceDoesNotAnswer: after SIGINT the task
// tries to cancel the Databricks run, the workspace never answers, and the
// task still writes its one task.complete within 7 s of the signal, before
// the agent's SIGTERM (7.5 s) and kill (10 s).
func TestCancelCompletesWhenTheWorkspaceDoesNotAnswer(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT on Windows")
	}
	exe := agenttest.Executable(t)
	ws := startWorkspace(t, emulator.Options{RunPending: time.Millisecond, RunTerminating: time.Millisecond})
	ws.OnNotebook(fidelityNotebook, emulator.Behaviour{Duration: time.Hour})
	ws.SetFaults(emulator.FaultPlan{Rules: []emulator.FaultRule{
		{Prefix: "/api/2.2/jobs/runs/cancel", Rate: 1, Kinds: []emulator.FaultKind{emulator.FaultLatency}, Latency: time.Hour},
	}})
	p := agentRun(t, ws, "DatabricksTrain", map[string]string{"notebookPath": fidelityNotebook, "workers": "1"}, nil).Start(t, exe)
	require.Eventually(t, func() bool { return len(ws.RequestsTo(http.MethodGet, "/api/2.2/jobs/runs/get")) > 0 }, 30*time.Second, 5*time.Millisecond, p.Stdout())
	require.NoError(t, p.Cmd.Process.Signal(os.Interrupt))
	sent := time.Now()
	var completedAfter time.Duration
	require.Eventually(t, func() bool {
		if strings.Contains(p.Stdout(), "##vso[task.complete") {
			completedAfter = time.Since(sent)
			return true
		}
		return false
	}, 15*time.Second, 5*time.Millisecond, "no task.complete within 15 s of SIGINT:\n%s", p.Stdout())
	res := p.Finish(t)
	t.Logf("task.complete %s after SIGINT, with runs/cancel unanswered", completedAfter.Round(time.Millisecond))
	assert.Less(t, completedAfter, 7*time.Second)
	assert.Equal(t, 0, res.ExitCode)
	assert.Equal(t, agent.Canceled, res.Result, res.Stdout)
	assert.Equal(t, 1, res.Completions)
	assert.Regexp(t, `Cleaning up after the cancel \([\d.]+s left\): cancelling Databricks run \d+\.`, res.Stdout)
	assert.Contains(t, strings.Join(res.Warnings, "\n"), "cancel it by hand")
}

// TestWindowsCancelThroughTheLauncher: the agent on Windows sends Ctrl+C to
// the whole console. Here the launcher runs as it does on Windows (it
// forwards nothing) and the interrupt goes to the whole process group, as
// the console's does: brickferry receives it itself and cancels the run.
func TestWindowsCancelThroughTheLauncher(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("a process group stands in for the Windows console")
	}
	node, err := exec.LookPath("node")
	require.NoError(t, err, "node runs the launcher")
	exe := agenttest.Executable(t)
	_, self, _, _ := runtime.Caller(0)
	launcherDir := filepath.Join(filepath.Dir(self), "..", "..", "..", "build", "launcher")
	wrapper := filepath.Join(t.TempDir(), "windows-launcher.js")
	require.NoError(t, os.WriteFile(wrapper, []byte(`'use strict';
const { runTask } = require(`+jsString(filepath.Join(launcherDir, "launcher.js"))+`);
const { Writer } = require(`+jsString(filepath.Join(launcherDir, "vso.js"))+`);
runTask({ exe: process.argv[2], task: process.argv[3], env: process.env, w: new Writer(process.stdout), platform: 'win32' })
  .then((r) => { process.stdout.write('launcher: forwarded=' + r.forwarded + ' signalled=' + r.signalled + '\n'); });
`), 0o644))

	ws := startWorkspace(t, emulator.Options{RunPending: time.Millisecond, RunTerminating: time.Millisecond})
	ws.OnNotebook(fidelityNotebook, emulator.Behaviour{Duration: time.Hour})
	run := agentRun(t, ws, "DatabricksTrain", map[string]string{"notebookPath": fidelityNotebook, "workers": "1"}, nil)
	cmd := exec.Command(node, wrapper, exe, "DatabricksTrain")
	cmd.Env = run.Environ(t)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the "console": node and brickferry
	out, err := os.Create(filepath.Join(t.TempDir(), "output.txt"))
	require.NoError(t, err)
	defer func() { _ = out.Close() }()
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool { return len(ws.RequestsTo(http.MethodGet, "/api/2.2/jobs/runs/get")) > 0 }, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT), "Ctrl+C to the whole console")
	require.NoError(t, cmd.Wait())
	written, err := os.ReadFile(out.Name())
	require.NoError(t, err)
	stdout := string(written)
	assert.Contains(t, stdout, "launcher: forwarded=false signalled=SIGINT")
	assert.Equal(t, 1, strings.Count(stdout, "##vso[task.complete"), stdout)
	assert.Contains(t, stdout, "##vso[task.complete result=Canceled;]", stdout)
	cancels := ws.RequestsTo(http.MethodPost, "/api/2.2/jobs/runs/cancel")
	assert.Len(t, cancels, 1, "brickferry cancelled the Databricks run itself")
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
