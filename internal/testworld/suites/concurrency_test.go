package suites_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// rounds is how often each race is run: which step gets where first
// changes from round to round (start order, seeded request latencies).
const rounds = 5

// tries bounds how often a round is run again because the two steps did
// not overlap at the workspace (one finished before the other began), which
// tests nothing about a race.
const tries = 4

// racers are the two pipeline runs that promote the same model at once.
var racers = [2]pipelineRun{
	{build: "2001", commit: "1111111111111111111111111111111111111111"},
	{build: "2002", commit: "2222222222222222222222222222222222222222"},
}

// racerClients are the OAuth service principals the racers connect as
// (their own Databricks service connections), so that the workspace's
// request log tells whose request each one is.
var racerClients = [2]struct{ id, secret string }{
	{"2001c0de-0000-4000-8000-000000002001", "racer-2001-oauth-secret"},
	{"2002c0de-0000-4000-8000-000000002002", "racer-2002-oauth-secret"},
}

// racingWorkspace starts a workspace on a manual clock that accepts the
// racers' service principals.
func racingWorkspace(t *testing.T) (*emulator.Workspace, *emulator.ManualClock) {
	clock := emulator.NewManualClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	clients := map[string]string{}
	for _, c := range racerClients {
		clients[c.id] = c.secret
	}
	return startWorkspace(t, emulator.Options{Clock: clock, OAuthClients: clients}), clock
}

// race starts one step of each pipeline run at once (in an order that
// alternates with the round) and waits for both. jitter delays a seeded
// half of the workspace's requests, so the two steps interleave
// differently each round. overlapped reports whether they did: whether the
// spans of the two steps' requests at the workspace intersect.
func race(t *testing.T, exe string, ws *emulator.Workspace, round int, seed uint64, steps [2]agenttest.Run) (res [2]*agenttest.Result, overlapped bool) {
	t.Helper()
	ws.SetFaults(emulator.FaultPlan{Seed: seed, Rules: []emulator.FaultRule{
		{Rate: 0.5, Kinds: []emulator.FaultKind{emulator.FaultLatency}, Latency: 10 * time.Millisecond},
	}})
	defer ws.SetFaults(emulator.FaultPlan{})
	first, second := round%2, 1-round%2
	var p [2]*agenttest.Process
	p[first] = steps[first].Start(t, exe)
	p[second] = steps[second].Start(t, exe)
	return [2]*agenttest.Result{p[0].Finish(t), p[1].Finish(t)}, interleaved(ws.Requests())
}

// interleaved reports whether the racers' requests overlap in time: each
// racer's first request came before the other's last.
func interleaved(reqs []emulator.Request) bool {
	first, last := [2]int{-1, -1}, [2]int{-1, -1}
	for i, r := range reqs {
		for k, c := range racerClients {
			if r.Principal != c.id {
				continue
			}
			if first[k] < 0 {
				first[k] = i
			}
			last[k] = i
		}
	}
	return first[0] >= 0 && first[1] >= 0 && first[0] < last[1] && first[1] < last[0]
}

// racerStep is a step of pipeline run i, connected to ws with its own
// Databricks service connection (OAuth M2M).
func racerStep(t *testing.T, ws *emulator.Workspace, i int, task string, in map[string]string) agenttest.Run {
	_, caFile := emulator.TestCA(t)
	conn := agent.Endpoint{ID: fmt.Sprintf("d0d0d0d0-0000-4000-8000-%012d", i+1), URL: ws.URL(), Scheme: "None",
		Parameters: map[string]string{"clientId": racerClients[i].id, "clientSecret": racerClients[i].secret}}
	inputs := map[string]string{"connectionMethod": "databricks", "databricksConnection": conn.ID}
	maps.Copy(inputs, in)
	env := map[string]string{"AGENT_CAINFO": caFile}
	maps.Copy(env, racers[i].env())
	return agenttest.Run{Task: task, Inputs: inputs, Env: env, Endpoints: []agent.Endpoint{conn}}
}

// overlapping runs a race's rounds; a round in which the two steps did not
// overlap is run again in a fresh workspace, up to tries times. The race
// must have overlapped in at least one round: two steps that ran one after
// the other have not raced, whatever state they leave.
func overlapping(t *testing.T, name string, seeds func() uint64, race func(t *testing.T, round int, seed uint64) bool) {
	t.Helper()
	overlapped := 0
	for round := range rounds {
		for try := 1; try <= tries; try++ {
			if race(t, round, seeds()) {
				overlapped++
				break
			}
			t.Logf("round %d, try %d: the two steps did not overlap at the workspace; running the round again", round, try)
		}
	}
	t.Logf("%s: the steps overlapped in %d of %d rounds", name, overlapped, rounds)
	require.Positive(t, overlapped, "%s: in no round did the two pipeline runs' steps overlap at the workspace (%d tries a round): the race was never tested", name, tries)
}

// finished checks that a racer's step ended well: Succeeded, or with a
// warning about the other pipeline run.
func finished(t *testing.T, res *agenttest.Result) {
	t.Helper()
	assert.Equal(t, 0, res.ExitCode, res.Stderr)
	assert.Contains(t, []agent.Result{agent.Succeeded, agent.SucceededWithIssues}, res.Result, "%v\n%s", res.Errors, res.Stdout)
}

// TestConcurrency runs two pipeline runs' MLflowPromote steps on the same
// model at the same moment, several rounds each, and checks that the
// registry ends consistent: one version per source run, one holder of a
// stage or alias, and every version's lineage tags those of one pipeline
// run.
func TestConcurrency(t *testing.T) {
	exe := agenttest.Executable(t)
	k := newKiller(t) // only its seeded randomness: nothing is killed here
	for _, r := range []struct {
		name string
		race func(t *testing.T, exe string, round int, seed uint64) bool
	}{
		{"register the same run", raceRegister},
		{"two versions to Production", raceStage},
		{"two versions to @champion", raceAlias},
	} {
		k := k.fork()
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			overlapping(t, r.name, k.faultSeed, func(t *testing.T, round int, seed uint64) bool {
				return r.race(t, exe, round, seed)
			})
		})
	}
}

// raceRegister: both pipeline runs register the model of the same training
// run; in odd rounds the registered model exists already, in even rounds
// both create it. One version must come out, and both must report it.
func raceRegister(t *testing.T, exe string, round int, seed uint64) bool {
	ws, clock := racingWorkspace(t)
	runID := trainedRun(t, ws, clock)
	reg := ml.NewModelRegistry(ws.Client(t))
	if round%2 == 1 {
		_, err := reg.CreateModel(context.Background(), ml.CreateModelRequest{Name: "churn"})
		require.NoError(t, err)
	}
	in := map[string]string{"command": "register", "modelName": "churn", "modelUri": "runs:/" + runID + "/model"}
	stop := tick(clock, time.Second)
	res, overlapped := race(t, exe, ws, round, seed, [2]agenttest.Run{racerStep(t, ws, 0, "MLflowPromote", in), racerStep(t, ws, 1, "MLflowPromote", in)})
	stop()

	all, err := reg.SearchModelVersionsAll(context.Background(), ml.SearchModelVersionsRequest{Filter: "name='churn'"})
	require.NoError(t, err)
	var got []string
	for _, v := range all {
		got = append(got, fmt.Sprintf("%s %s %s", v.Version, v.Status, v.RunId))
	}
	require.Len(t, got, 1, "round %d: one version of the run, none pending or failed beside it", round)
	v := all[0]
	assert.Equal(t, ml.ModelVersionStatusReady, v.Status)
	took := 0
	for i, r := range res {
		finished(t, r)
		assert.Equal(t, v.Version, r.Outputs["modelVersion"], "round %d: pipeline run %d reports the one version", round, i)
		if strings.Contains(r.Stdout, "registered at the same moment") {
			took++
		}
	}
	t.Logf("round %d: version %s; %d step(s) removed their own version and took it; overlapped: %v", round, v.Version, took, overlapped)
	assertOneRunLineage(t, lineageOf(registryTags(v.Tags)), []string{"register"}, racers[0], racers[1])
	return overlapped
}

// raceStage: version 1 is in Production; one pipeline run moves version 2
// there, the other version 3, both archiving what holds it. Exactly one
// version must end in Production; the others are Archived and say so.
func raceStage(t *testing.T, exe string, round int, seed uint64) bool {
	ws, clock := racingWorkspace(t)
	c := ws.Client(t)
	registerChurn(t, c, clock, 3)
	moveToStage(t, c, "1", "Production", olderRun)
	promote := func(i int, version string) agenttest.Run {
		return racerStep(t, ws, i, "MLflowPromote", map[string]string{"command": "transition", "modelName": "churn", "modelVersion": version, "stage": "Production"})
	}
	res, overlapped := race(t, exe, ws, round, seed, [2]agenttest.Run{promote(0, "2"), promote(1, "3")})

	st := stages(t, c)
	assert.Equal(t, "Archived", st["1"], "round %d", round)
	winner := -1
	for i, r := range res {
		finished(t, r)
		assert.Equal(t, itoa(int64(i+2)), r.Outputs["modelVersion"])
		if st[itoa(int64(i+2))] == "Production" {
			winner = i
		}
	}
	require.NotEqual(t, -1, winner, "round %d: one of versions 2 and 3 is in Production: %v", round, st)
	loser := 1 - winner
	t.Logf("round %d: pipeline run %s's version %d holds Production; the other step warned: %v; overlapped: %v", round, racers[winner].build, winner+2, res[loser].Warnings, overlapped)
	assert.Equal(t, "Archived", st[itoa(int64(loser+2))], "round %d: exactly one version in Production: %v", round, st)
	tags := versionTags(t, c)
	assert.Equal(t, olderRun.lineage("", "archived"), tags["1"], "round %d: version 1 keeps the lineage of the run that promoted it, archived", round)
	assert.Equal(t, racers[winner].lineage("", "transition to Production"), tags[itoa(int64(winner+2))], "round %d: the holder", round)
	assert.Equal(t, racers[loser].lineage("", "archived"), tags[itoa(int64(loser+2))], "round %d: the version the other run archived", round)
	return overlapped
}

// raceAlias: @champion is on version 1; one pipeline run moves it to
// version 2, the other to version 3. Exactly one holds it, and each
// version's lineage names the one pipeline run that acted on it.
func raceAlias(t *testing.T, exe string, round int, seed uint64) bool {
	ws, _ := racingWorkspace(t)
	c := ws.Client(t)
	ucVersions(t, c, 3)
	setAlias(t, c, "champion", 1, olderRun)
	promote := func(i int, version string) agenttest.Run {
		return racerStep(t, ws, i, "MLflowPromote", map[string]string{"command": "transition", "modelName": ucModel, "modelVersion": version, "alias": "champion"})
	}
	res, overlapped := race(t, exe, ws, round, seed, [2]agenttest.Run{promote(0, "2"), promote(1, "3")})

	for i, r := range res {
		finished(t, r)
		assert.Equal(t, itoa(int64(i+2)), r.Outputs["modelVersion"])
	}
	held := aliases(t, c)
	require.Len(t, held, 1, "round %d: %v", round, held)
	assert.Contains(t, []int{2, 3}, held["champion"], "round %d: @champion is on version 2 or 3", round)
	t.Logf("round %d: @champion is on version %d; overlapped: %v", round, held["champion"], overlapped)
	assert.Equal(t, olderRun.lineage("", "alias champion"), ucLineage(t, c, 1), "round %d: the previous holder is left as it was", round)
	for i := range racers {
		assert.Equal(t, racers[i].lineage("", "alias champion"), ucLineage(t, c, i+2), "round %d: version %d", round, i+2)
	}
	return overlapped
}
