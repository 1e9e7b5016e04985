package idempotency_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/databricks/databricks-sdk-go/listing"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/idempotency"
)

func pipelineEnv(extra ...string) agent.Env {
	env := agent.Env{
		"SYSTEM_TEAMFOUNDATIONCOLLECTIONURI": "https://dev.azure.com/contoso/",
		"SYSTEM_TEAMPROJECTID":               "6c1a5f3e",
		"SYSTEM_PLANID":                      "2f0e3c43",
		"BUILD_BUILDID":                      "1234",
		"SYSTEM_JOBID":                       "5d1a3f2c",
		"SYSTEM_JOBATTEMPT":                  "1",
		"SYSTEM_STEPNAME":                    "train",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

func TestToken(t *testing.T) {
	sys := pipelineEnv().System()
	first := idempotency.Token(sys, "train", 1)
	assert.Regexp(t, `^brickferry-train-[0-9a-f]{40}$`, first)
	assert.LessOrEqual(t, len(first), 64)
	assert.Equal(t, first, idempotency.Token(pipelineEnv().System(), "train", 1), "the same run of the same step")
	assert.NotEqual(t, first, idempotency.Token(sys, "train", 2))
	assert.NotEqual(t, idempotency.Token(sys, "train", 2), idempotency.Token(sys, "train", 3))
	assert.NotEqual(t, first, idempotency.Token(sys, "score", 1))
	assert.Equal(t, first, idempotency.Token(pipelineEnv("SYSTEM_JOBATTEMPT", "2").System(), "train", 1),
		"the job attempt is not part of the token: the next attempt finds the runs of the earlier ones")
	for _, kv := range [][2]string{
		{"SYSTEM_STEPNAME", "score"}, {"BUILD_BUILDID", "1235"}, {"SYSTEM_JOBID", "x"}, {"SYSTEM_PLANID", "y"},
	} {
		other := idempotency.Token(pipelineEnv(kv[0], kv[1]).System(), "train", 1)
		assert.NotEqual(t, first, other, kv[0])
	}
}

// fakeRuns is Databricks as far as Start sees it: a token it has seen
// answers the run it started. Its run ids go down as runs are started
// (Databricks documents them only as unique); start times go up.
type fakeRuns struct {
	byToken map[string]int64
	state   map[int64]jobs.RunLifeCycleState
	started map[int64]int64 // start time (ms) by run id
	newest  int64
	sent    []string
	// failAtOnce makes new runs end INTERNAL_ERROR before anyone reads them.
	failAtOnce bool
}

func newFakeRuns() *fakeRuns {
	return &fakeRuns{byToken: map[string]int64{}, state: map[int64]jobs.RunLifeCycleState{}, started: map[int64]int64{}}
}

func (f *fakeRuns) start(_ context.Context, token string) (int64, error) {
	f.sent = append(f.sent, token)
	if id, ok := f.byToken[token]; ok && token != "" {
		return id, nil
	}
	id := int64(1000 - len(f.state))
	f.byToken[token] = id
	f.started[id] = int64(1_700_000_000_000 + len(f.state))
	f.newest = id
	f.state[id] = jobs.RunLifeCycleStatePending
	if f.failAtOnce {
		f.state[id] = jobs.RunLifeCycleStateInternalError
	}
	return id, nil
}

func (f *fakeRuns) ListRuns(context.Context, jobs.ListRunsRequest) listing.Iterator[jobs.BaseRun] {
	var newest listing.SliceIterator[jobs.BaseRun]
	if f.newest != 0 {
		newest = append(newest, jobs.BaseRun{RunId: f.newest, StartTime: f.started[f.newest]})
	}
	return &newest
}

func (f *fakeRuns) GetRun(_ context.Context, r jobs.GetRunRequest) (*jobs.Run, error) {
	return &jobs.Run{RunId: r.RunId, StartTime: f.started[r.RunId], State: &jobs.RunState{LifeCycleState: f.state[r.RunId]}}, nil
}

func start(t *testing.T, f *fakeRuns, env agent.Env) (int64, string) {
	t.Helper()
	var out bytes.Buffer
	id, err := idempotency.Start(context.Background(), env, agent.NewLog(&out, agent.LogOptions{}), "train", f, f.start)
	require.NoError(t, err)
	return id, out.String()
}

func TestStart(t *testing.T) {
	f := newFakeRuns()
	sys := pipelineEnv().System()

	first, out := start(t, f, pipelineEnv())
	assert.Contains(t, out, "##vso[task.settaskvariable variable=brickferry.try;]1\n", "the try is recorded for a retry")
	assert.Equal(t, []string{idempotency.Token(sys, "train", 1)}, f.sent, "the first start sends token 1 once")

	again, _ := start(t, f, pipelineEnv())
	assert.Equal(t, first, again, "the same step started again with the same environment gets the same run")

	// A retry (retryCountOnTaskFailure) while the first run is still
	// running, e.g. after the step's process was killed: the run is taken
	// over, not duplicated.
	f.state[first] = jobs.RunLifeCycleStateRunning
	retry, out := start(t, f, pipelineEnv("VSTS_TASKVARIABLE_BRICKFERRY_TRY", "1"))
	assert.Equal(t, first, retry, "a retry takes over the run its first try left running instead of starting another")
	assert.Contains(t, out, "]2\n")
	assert.Contains(t, out, "is still RUNNING: waiting for it instead of starting another")

	// Once it has ended, a retry is a new run.
	f.state[first] = jobs.RunLifeCycleStateTerminated
	second, out := start(t, f, pipelineEnv("VSTS_TASKVARIABLE_BRICKFERRY_TRY", "2"))
	assert.NotEqual(t, first, second, "a retry after the first run ended starts a new run instead of reporting the ended one")
	assert.Contains(t, out, "has ended (TERMINATED): starting another")

	// The next job attempt walks the same tokens: it takes over run 2 while
	// it is active, and starts a third once it has ended.
	nextAttempt := pipelineEnv("SYSTEM_JOBATTEMPT", "2")
	taken, _ := start(t, f, nextAttempt)
	assert.Equal(t, second, taken, "the next job attempt takes over the active run of the previous attempt")
	f.state[second] = jobs.RunLifeCycleStateTerminating // being cancelled: not taken over
	third, _ := start(t, f, nextAttempt)
	assert.NotContains(t, []int64{first, second}, third, "an ended run is not handed back as new")
	assert.Len(t, f.state, 3, "three runs in all")

	// A new run that has already ended when it is read (it failed at once)
	// is this walk's run: it is taken, no further run is started.
	f.state[third] = jobs.RunLifeCycleStateTerminated
	f.failAtOnce = true
	fourth, _ := start(t, f, pipelineEnv("SYSTEM_JOBATTEMPT", "3"))
	assert.Equal(t, jobs.RunLifeCycleStateInternalError, f.state[fourth])
	assert.Len(t, f.state, 4, "one more run")

	// Outside a pipeline every start is a new run, with no token and no
	// task variable.
	local := newFakeRuns()
	a, out := start(t, local, agent.Env{})
	b, _ := start(t, local, agent.Env{})
	assert.NotEqual(t, a, b)
	assert.Equal(t, []string{"", ""}, local.sent)
	assert.Empty(t, out)
}
