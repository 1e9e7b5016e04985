package agent

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCleanupDeadlineCountsFromTheFirstSignal: every cleanup context made
// after the pipeline's signal ends GracePeriod after that signal, whatever
// its own limit, and says so in the log first.
func TestCleanupDeadlineCountsFromTheFirstSignal(t *testing.T) {
	var out bytes.Buffer
	log := NewLog(&out, LogOptions{})
	ctx, cancel := WithCancel(context.Background())
	cancel()
	at, ok := cancelledAt(ctx)
	require.True(t, ok)
	time.Sleep(50 * time.Millisecond)
	cctx, stop := Cleanup(ctx, log, 30*time.Second, "cancelling Databricks run 42")
	defer stop()
	deadline, ok := cctx.Deadline()
	require.True(t, ok)
	assert.Equal(t, at.Add(GracePeriod), deadline)
	assert.NoError(t, cctx.Err(), "the cleanup context is not the cancelled one")
	assert.True(t, Cancelled(cctx), "requests made with it are not retried")
	assert.Regexp(t, `Cleaning up after the cancel \(5\.[89]s left\): cancelling Databricks run 42\.`, out.String())

	// A second cleanup made later shares the same deadline.
	cctx2, stop2 := Cleanup(ctx, nil, time.Minute, "x")
	defer stop2()
	d2, _ := cctx2.Deadline()
	assert.Equal(t, deadline, d2)
}

// TestCleanupWithoutACancelKeepsItsLimit: after a task's own timeout the
// cleanup gets its limit and requests may be retried.
func TestCleanupWithoutACancelKeepsItsLimit(t *testing.T) {
	ctx, cancel := WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	cctx, stop := Cleanup(ctx, nil, 30*time.Second, "x")
	defer stop()
	deadline, _ := cctx.Deadline()
	assert.WithinDuration(t, start.Add(30*time.Second), deadline, time.Second)
	assert.False(t, Cancelled(cctx))
}

// TestRunCompletesWhenCleanupHangs: a task that does not return after the
// cancel still gets its single task.complete (Canceled) within 7 s of the
// signal, before the agent's SIGTERM at 7.5 s (ProcessInvoker.cs).
func TestRunCompletesWhenCleanupHangs(t *testing.T) {
	if testing.Short() {
		t.Skip("waits the grace period")
	}
	var out bytes.Buffer
	log := NewLog(&out, LogOptions{})
	ctx, cancel := WithCancel(context.Background())
	block := make(chan struct{})
	defer close(block)
	started := make(chan struct{})
	done := make(chan Result, 1)
	go func() {
		done <- Run(ctx, func(ctx context.Context, _ Env, _ *Log) error {
			close(started)
			<-block // a cleanup call the workspace never answers
			return ctx.Err()
		}, Env{}, log)
	}()
	<-started
	cancel()
	sent := time.Now()
	select {
	case r := <-done:
		took := time.Since(sent)
		t.Logf("task.complete %s after the signal", took.Round(time.Millisecond))
		assert.Equal(t, Canceled, r)
		assert.Less(t, took, 7*time.Second)
		assert.GreaterOrEqual(t, took, GracePeriod, "the cleanup had its grace period")
		assert.Equal(t, 1, strings.Count(out.String(), "##vso[task.complete"))
		assert.Contains(t, out.String(), "did not finish within 6s")
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of the signal")
	}
}

// TestRunReportsAPanicInTheTask: the panic is raised again in Run, which
// reports it as a failure.
func TestRunReportsAPanicInTheTask(t *testing.T) {
	var out bytes.Buffer
	r := Run(context.Background(), func(context.Context, Env, *Log) error { panic("boom") }, Env{}, NewLog(&out, LogOptions{}))
	assert.Equal(t, Failed, r)
	assert.Contains(t, out.String(), "internal error: boom")
}
