package serve_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

func TestCreate(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{})
	res := w.run(map[string]string{
		"modelVersion":         "2",
		"workloadSize":         "Medium",
		"scaleToZero":          "false",
		"environmentVariables": "LOG_LEVEL=debug\nAPI_KEY={{secrets/churn/api-key}}",
		"tags":                 "team=mlops\nstage=prod",
	})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)

	creates := w.ws.RequestsTo(http.MethodPost, "/api/2.0/serving-endpoints")
	require.Len(t, creates, 1)
	body := creates[0].Body.(*serving.CreateServingEndpoint)
	assert.Equal(t, endpoint, body.Name)
	require.Len(t, body.Config.ServedEntities, 1)
	se := body.Config.ServedEntities[0]
	assert.Equal(t, "churn-2", se.Name)
	assert.Equal(t, "churn", se.EntityName)
	assert.Equal(t, "2", se.EntityVersion)
	assert.Equal(t, "Medium", se.WorkloadSize)
	assert.Equal(t, serving.ServingModelWorkloadTypeCpu, se.WorkloadType)
	assert.False(t, se.ScaleToZeroEnabled)
	assert.Contains(t, string(creates[0].Raw), `"scale_to_zero_enabled":false`)
	assert.Equal(t, map[string]string{"LOG_LEVEL": "debug", "API_KEY": "{{secrets/churn/api-key}}"}, se.EnvironmentVars)
	tags := map[string]string{}
	for _, tag := range body.Tags {
		tags[tag.Key] = tag.Value
	}
	assert.Equal(t, map[string]string{"team": "mlops", "stage": "prod"}, tags)

	assert.Equal(t, map[string]int{"churn-2": 100}, w.traffic())
	assert.Equal(t, endpoint, res.Outputs["endpointName"])
	assert.Equal(t, w.ws.URL()+"/serving-endpoints/"+endpoint+"/invocations", res.Outputs["endpointUrl"])
	assert.Equal(t, "2", res.Outputs["servedVersion"])
	assert.Equal(t, "100", res.Outputs["trafficPercent"])
	assert.Equal(t, "false", res.Outputs["rolledBack"])
	assert.NotEmpty(t, res.Outputs["smokeTestLatencyMs"])
	assert.Len(t, w.ws.RequestsTo(http.MethodPost, "/serving-endpoints/"+endpoint+"/invocations"), 1)

	assert.Contains(t, res.Stdout, "NOT_READY, config update IN_PROGRESS", "state changes are logged")
	assert.Contains(t, res.Stdout, "READY, config update NOT_UPDATING")
	summary := onlySummary(t, res.Summaries)
	assert.Contains(t, summary, "/ml/endpoints/"+endpoint+")")
	assert.Contains(t, summary, "| churn-2 | churn | 2 | 100 % |")
	assert.Contains(t, summary, "Smoke test: passed, HTTP 200, 2 prediction(s) for 2 row(s)")
}

// TestCreateWithoutAClearAnswer: the create got a 500. When the workspace
// did not carry it out, the look-up finds no endpoint (404) and the create is
// sent again; when it did (a 500 after the commit), the look-up finds the
// endpoint and the create is not sent again (Databricks would refuse it as
// RESOURCE_ALREADY_EXISTS). Either way there is one endpoint, serving.
func TestCreateWithoutAClearAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fault   emulator.FaultKind
		creates []int // the statuses the creates were answered
	}{
		{emulator.Fault500, []int{http.StatusInternalServerError, http.StatusOK}},
		{emulator.Fault500AfterCommit, []int{http.StatusInternalServerError}},
	} {
		t.Run(string(tc.fault), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, emulator.Options{})
			w.ws.SetFaults(emulator.FaultPlan{Rules: []emulator.FaultRule{
				{Prefix: "/api/2.0/serving-endpoints", Method: http.MethodPost, Rate: 1, Kinds: []emulator.FaultKind{tc.fault}, Limit: 1},
			}})
			res := w.run(nil)
			require.Equal(t, agent.Succeeded, res.Result, "ModelServe failed after a create without a clear answer (%s): %v\n%s", tc.fault, res.Errors, res.Stdout)
			var got []int
			for _, r := range w.ws.RequestsTo(http.MethodPost, "/api/2.0/serving-endpoints") {
				got = append(got, r.Status)
			}
			assert.Equal(t, tc.creates, got, "creates after a %s: sent again only when the look-up found no endpoint", tc.fault)
			assert.Equal(t, map[string]int{"churn-1": 100}, w.traffic())
		})
	}
}

func TestUpdateDropsTheOldVersion(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{})
	w.serveVersion(1, nil)
	w.ws.ResetRequests()

	// The endpoint's GET answers served_entities and served_models for the
	// same entity (databricks/cli PR 3880): the task reads one list.
	before := w.endpoint()
	require.Len(t, before.Config.ServedEntities, 1)
	require.Len(t, before.Config.ServedModels, 1)

	res := w.run(map[string]string{"modelVersion": "2"})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	assert.Contains(t, res.Stdout, "Served now: churn-1 (churn v1) 100%\n")
	puts := w.ws.RequestsTo(http.MethodPut, "/api/2.0/serving-endpoints/"+endpoint+"/config")
	require.Len(t, puts, 1)
	sent := puts[0].Body.(*serving.EndpointCoreConfigInput)
	assert.Len(t, sent.ServedEntities, 1)
	assert.Empty(t, sent.ServedModels, "one list is sent, never both")
	assert.Len(t, w.ws.RequestsTo(http.MethodPost, "/serving-endpoints/"+endpoint+"/invocations"), 1, "the smoke test ran")
	assert.Contains(t, res.Stdout, "Smoke test passed")
	assert.Empty(t, w.ws.RequestsTo(http.MethodPost, "/api/2.0/serving-endpoints"), "no second create")
	assert.Equal(t, map[string]int{"churn-2": 100}, w.traffic())
	assert.Equal(t, "2", res.Outputs["servedVersion"])
	assert.Equal(t, "100", res.Outputs["trafficPercent"])
	assert.Contains(t, res.Stdout, "Dropped:    churn-1")
}

func TestUnchangedSendsNoUpdate(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{})
	w.serveVersion(1, map[string]string{"environmentVariables": "A=1"})
	w.ws.ResetRequests()

	res := w.run(map[string]string{"environmentVariables": "A=1"})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	assert.Empty(t, w.configWrites(), "an endpoint that serves this config is left alone")
	assert.Contains(t, res.Stdout, "already serves exactly this config: no update sent")
	assert.Contains(t, onlySummary(t, res.Summaries), "endpoint unchanged")
	assert.Equal(t, "1", res.Outputs["servedVersion"])

	// A different setting is a change.
	res = w.run(map[string]string{"environmentVariables": "A=2"})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	assert.Len(t, w.configWrites(), 1)
}

func TestCanaryThenFullRollout(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{})
	w.serveVersion(1, nil)

	res := w.run(map[string]string{"modelVersion": "2", "trafficPercent": "10"})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	assert.Equal(t, map[string]int{"churn-1": 90, "churn-2": 10}, w.traffic())
	assert.Equal(t, "10", res.Outputs["trafficPercent"])
	assert.Contains(t, onlySummary(t, res.Summaries), "| churn-1 | churn | 1 | 90 % |")

	// The same canary again changes nothing; a bigger share shifts traffic.
	w.ws.ResetRequests()
	res = w.run(map[string]string{"modelVersion": "2", "trafficPercent": "10"})
	require.Equal(t, agent.Succeeded, res.Result)
	assert.Empty(t, w.configWrites())
	res = w.run(map[string]string{"modelVersion": "2", "trafficPercent": "50"})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	assert.Equal(t, map[string]int{"churn-1": 50, "churn-2": 50}, w.traffic())

	res = w.run(map[string]string{"modelVersion": "2", "trafficPercent": "100"})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	assert.Equal(t, map[string]int{"churn-2": 100}, w.traffic(), "the full rollout drops the old version")
	assert.Equal(t, "100", res.Outputs["trafficPercent"])
}

func TestCanaryOnANewEndpointServesAll(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{})
	res := w.run(map[string]string{"trafficPercent": "10"})
	require.Equal(t, agent.SucceededWithIssues, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	assert.Equal(t, map[string]int{"churn-1": 100}, w.traffic())
	require.Len(t, res.Warnings, 1)
	assert.Contains(t, res.Warnings[0], "the endpoint serves none")
	assert.Equal(t, "100", res.Outputs["trafficPercent"])
}

func TestUpdateInProgressIsWaitedFor(t *testing.T) {
	t.Parallel()
	// The other update must still run when the task reads the endpoint: 5 s
	// (real time) outlasts the start of the executable, also of the build
	// with the race detector on a loaded machine (1 s did not).
	w := newWorld(t, emulator.Options{ServingUpdate: 5 * time.Second})
	w.serveVersion(1, nil)
	// Someone else starts an update to version 2.
	_, err := w.api.UpdateConfig(context.Background(), serving.EndpointCoreConfigInput{Name: endpoint,
		ServedEntities: []serving.ServedEntityInput{{EntityName: "churn", EntityVersion: "2", WorkloadSize: "Small", ScaleToZeroEnabled: true}}})
	require.NoError(t, err)
	w.ws.ResetRequests()

	res := w.run(map[string]string{"modelVersion": "3"})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	assert.Contains(t, res.Stdout, "has a config update in progress since")
	puts := w.ws.RequestsTo(http.MethodPut, "/api/2.0/serving-endpoints/"+endpoint+"/config")
	require.Len(t, puts, 1, "the other update is not clobbered: one PUT, after it finished")
	assert.Equal(t, http.StatusOK, puts[0].Status)
	assert.Equal(t, map[string]int{"churn-3": 100}, w.traffic())
	assert.Contains(t, res.Stdout, "Served now: churn-2 (churn v2) 100%", "the plan starts from what the other update left")
}

func TestUpdateInProgressFailsWhenAsked(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{ServingUpdate: time.Minute})
	w.serveVersion(1, nil)
	_, err := w.api.UpdateConfig(context.Background(), serving.EndpointCoreConfigInput{Name: endpoint,
		ServedEntities: []serving.ServedEntityInput{{EntityName: "churn", EntityVersion: "2", WorkloadSize: "Small"}}})
	require.NoError(t, err)
	w.ws.ResetRequests()

	res := w.run(map[string]string{"modelVersion": "3", "ifUpdateInProgress": "fail"})
	require.Equal(t, agent.Failed, res.Result)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "has a config update in progress")
	assert.Empty(t, w.configWrites())
}

func TestUpdateFailedPrintsLogsAndKeepsThePreviousConfig(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{})
	w.serveVersion(1, nil)
	w.ws.OnServingEndpoint(endpoint, emulator.ServingBehaviour{FailUpdates: true,
		Message: "pip install failed ##vso[task.setvariable variable=pwned]yes"})
	w.ws.ResetRequests()

	res := w.run(map[string]string{"modelVersion": "2"})
	require.Equal(t, agent.Failed, res.Result)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "UPDATE_FAILED")
	assert.Contains(t, res.Errors[0], "still serves the previous config")
	assert.Equal(t, "true", res.Outputs["rolledBack"])
	// The emulator answers 404 for the failed entity's logs (it forgets the
	// entity of a failed update), so the scripted message with ##vso[ is not
	// printed yet; when it is, it must not become a command.
	assert.NotContains(t, res.Outputs, "pwned", "remote text cannot set variables")
	assert.Equal(t, map[string]int{"churn-1": 100}, w.traffic())

	assert.NotEmpty(t, w.ws.RequestsTo(http.MethodGet, "/api/2.0/serving-endpoints/"+endpoint+"/served-models/churn-2/build-logs"))
	assert.NotEmpty(t, w.ws.RequestsTo(http.MethodGet, "/api/2.0/serving-endpoints/"+endpoint+"/served-models/churn-2/logs"))
	assert.Contains(t, res.Stdout, "##[group]Build logs of served entity churn-2")
	assert.Len(t, w.ws.RequestsTo(http.MethodPut, "/api/2.0/serving-endpoints/"+endpoint+"/config"), 1,
		"Databricks kept the previous config: it is not sent again")
	assert.Empty(t, w.ws.RequestsTo(http.MethodPost, "/serving-endpoints/"+endpoint+"/invocations"), "no smoke test of a failed update")
	assert.Contains(t, onlySummary(t, res.Summaries), "failed, rolled back")
}

func TestSmokeTestFailureRollsBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{})
	w.serveVersion(1, nil)
	w.ws.ResetRequests()
	w.ws.SetFaults(emulator.FaultPlan{Rules: []emulator.FaultRule{
		{Prefix: "/serving-endpoints/" + endpoint + "/invocations", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault500}, Limit: 1},
	}})

	res := w.run(map[string]string{"modelVersion": "2"})
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "the smoke test failed: the endpoint answered HTTP 500")
	assert.Contains(t, res.Errors[0], "was rolled back to churn-1", "a failed smoke test after an update rolls the endpoint back to the config it served before")
	assert.Equal(t, "true", res.Outputs["rolledBack"])
	assert.Equal(t, map[string]int{"churn-1": 100}, w.traffic())

	puts := w.ws.RequestsTo(http.MethodPut, "/api/2.0/serving-endpoints/"+endpoint+"/config")
	require.Len(t, puts, 2, "the update, then the rollback")
	back := puts[1].Body.(*serving.EndpointCoreConfigInput)
	assert.Equal(t, http.StatusOK, puts[1].Status, "the rollback body is accepted")
	assert.Empty(t, back.ServedModels, "the rollback body has one list (GET answered both)")
	require.Len(t, back.ServedEntities, 1)
	assert.Equal(t, "churn-1", back.ServedEntities[0].Name)
	assert.Equal(t, "1", back.ServedEntities[0].EntityVersion)
	assert.NotContains(t, res.Outputs, "servedVersion")
	summary := onlySummary(t, res.Summaries)
	assert.Contains(t, summary, "failed, rolled back")
	assert.Contains(t, summary, "Smoke test: **failed**")
}

func TestSmokeTestFailureWithRollbackOff(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{})
	w.serveVersion(1, nil)
	w.ws.ResetRequests()
	w.ws.SetFaults(emulator.FaultPlan{Rules: []emulator.FaultRule{
		{Prefix: "/serving-endpoints/" + endpoint + "/invocations", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault500}},
	}})

	res := w.run(map[string]string{"modelVersion": "2", "rollback": "false"})
	require.Equal(t, agent.Failed, res.Result)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "rollback is turned off")
	assert.Equal(t, "false", res.Outputs["rolledBack"])
	assert.Equal(t, map[string]int{"churn-2": 100}, w.traffic())
	assert.Len(t, w.ws.RequestsTo(http.MethodPut, "/api/2.0/serving-endpoints/"+endpoint+"/config"), 1)
}

func TestSmokeTestOnANewEndpointCannotRollBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{})
	w.ws.SetFaults(emulator.FaultPlan{Rules: []emulator.FaultRule{
		{Prefix: "/serving-endpoints/" + endpoint + "/invocations", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault500}},
	}})
	res := w.run(nil)
	require.Equal(t, agent.Failed, res.Result)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "served nothing before this step")
	assert.Equal(t, "false", res.Outputs["rolledBack"])
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{ServingReady: time.Hour})
	start := time.Now()
	res := w.run(map[string]string{"timeoutMinutes": "0.03"}) // 1.8 s
	require.Equal(t, agent.Failed, res.Result)
	assert.Less(t, time.Since(start), 10*time.Second)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0], "was not ready within 1.8s")
	assert.Contains(t, res.Errors[0], "keeps running on Databricks")
	assert.Equal(t, "false", res.Outputs["rolledBack"])
}

// TestSIGINTLeavesTheUpdateRunning: the agent cancels a step with SIGINT
// (and kills it 10 s later); waiting stops at once and the config update,
// which Databricks cannot cancel, is neither cancelled nor rolled back.
func TestSIGINTLeavesTheUpdateRunning(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT on Windows")
	}
	t.Parallel()
	w := newWorld(t, emulator.Options{ServingUpdate: time.Minute})
	w.serveVersion(1, nil)
	w.ws.ResetRequests()

	p := w.start(map[string]string{"modelVersion": "2"})
	require.Eventually(t, func() bool {
		return len(w.ws.RequestsTo(http.MethodPut, "/api/2.0/serving-endpoints/"+endpoint+"/config")) == 1
	}, 20*time.Second, 10*time.Millisecond, p.Stdout())
	// Waiting for the update: the endpoint is read again after the PUT was
	// answered (a fixed pause is not enough on a loaded machine).
	gets := len(w.ws.RequestsTo(http.MethodGet, "/api/2.0/serving-endpoints/"+endpoint))
	require.Eventually(t, func() bool {
		return len(w.ws.RequestsTo(http.MethodGet, "/api/2.0/serving-endpoints/"+endpoint)) > gets
	}, 20*time.Second, 10*time.Millisecond, p.Stdout())
	cancelledAt := time.Now()
	require.NoError(t, p.Cmd.Process.Signal(os.Interrupt))
	res := p.Finish(t)
	assert.Less(t, time.Since(cancelledAt), 2*time.Second, "waiting stops promptly")
	assert.Equal(t, 0, res.ExitCode)
	require.Equal(t, agent.Canceled, res.Result, res.Stdout)
	assert.Equal(t, 1, res.Completions)
	assert.Len(t, w.ws.RequestsTo(http.MethodPut, "/api/2.0/serving-endpoints/"+endpoint+"/config"), 1, "no rollback is sent")
	assert.Contains(t, strings.Join(res.Warnings, "\n"), "keeps running on Databricks (a config update cannot be cancelled)")
	assert.Equal(t, serving.EndpointStateConfigUpdateInProgress, w.endpoint().State.ConfigUpdate)
}

func onlySummary(t *testing.T, summaries map[string]string) string {
	t.Helper()
	require.Len(t, summaries, 1)
	for _, s := range summaries {
		return s
	}
	return ""
}

// TestCanaryNextToAServedModelKeepsItsSettings runs in this process
// (production registry and connection), so that go test -race sees the
// task's code: planning, update, waiting and the smoke test. The other tests
// run the built executable.
func TestCanaryNextToAServedModelKeepsItsSettings(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{})
	w.inProcess = true
	// An endpoint made elsewhere with the older served_models field.
	_, err := w.api.Create(context.Background(), serving.CreateServingEndpoint{Name: endpoint, Config: &serving.EndpointCoreConfigInput{
		ServedModels: []serving.ServedModelInput{{Name: "legacy", ModelName: "churn", ModelVersion: "1", WorkloadSize: "Large",
			ScaleToZeroEnabled: false, EnvironmentVars: map[string]string{"MODE": "prod"}}},
	}})
	require.NoError(t, err)
	w.waitSettled()
	w.ws.ResetRequests()

	res := w.run(map[string]string{"modelVersion": "2", "trafficPercent": "25"})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	assert.Equal(t, map[string]int{"legacy": 75, "churn-2": 25}, w.traffic())
	puts := w.ws.RequestsTo(http.MethodPut, "/api/2.0/serving-endpoints/"+endpoint+"/config")
	require.Len(t, puts, 1)
	sent := puts[0].Body.(*serving.EndpointCoreConfigInput)
	require.Len(t, sent.ServedEntities, 2)
	kept := sent.ServedEntities[0]
	assert.Equal(t, "legacy", kept.Name)
	assert.Equal(t, "Large", kept.WorkloadSize)
	assert.False(t, kept.ScaleToZeroEnabled)
	assert.Equal(t, map[string]string{"MODE": "prod"}, kept.EnvironmentVars)
}

// TestTagsOfAnExistingEndpoint adds a tag to an endpoint that serves the
// wanted config already, then changes the value of one: each time one PATCH
// of the tags route with only what differs, no config update, and the
// endpoint then carries the tags asked for.
func TestTagsOfAnExistingEndpoint(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{})
	w.serveVersion(1, map[string]string{"tags": "team=mlops"})
	w.ws.ResetRequests()

	res := w.run(map[string]string{"tags": "team=mlops\nstage=prod"})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	patches := w.ws.RequestsTo(http.MethodPatch, "/api/2.0/serving-endpoints/"+endpoint+"/tags")
	require.Len(t, patches, 1, "one PATCH of the endpoint's tags")
	assert.Equal(t, map[string]string{"stage": "prod"}, tagMap(patches[0].Body.(*serving.PatchServingEndpointTags).AddTags),
		"the PATCH adds only the tag the endpoint lacks")
	assert.Empty(t, w.ws.RequestsTo(http.MethodPut, "/api/2.0/serving-endpoints/"+endpoint+"/config"), "tags alone are not a config change")
	assert.Equal(t, map[string]string{"team": "mlops", "stage": "prod"}, tagMap(w.endpoint().Tags), "the endpoint's tags after the update")
	assert.Contains(t, onlySummary(t, res.Summaries), "endpoint tags updated")

	w.ws.ResetRequests()
	res = w.run(map[string]string{"tags": "team=ml-platform\nstage=prod"})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	patches = w.ws.RequestsTo(http.MethodPatch, "/api/2.0/serving-endpoints/"+endpoint+"/tags")
	require.Len(t, patches, 1, "a tag whose value changed is updated on the existing endpoint")
	assert.Equal(t, map[string]string{"team": "ml-platform"}, tagMap(patches[0].Body.(*serving.PatchServingEndpointTags).AddTags))
	assert.Equal(t, map[string]string{"team": "ml-platform", "stage": "prod"}, tagMap(w.endpoint().Tags), "the endpoint's tags after the second update")
}

// tagMap is endpoint tags by key (the SDK's ForceSendFields left out).
func tagMap(tags []serving.EndpointTag) map[string]string {
	out := map[string]string{}
	for _, t := range tags {
		out[t.Key] = t.Value
	}
	return out
}

// TestBadInputs checks that each bad input fails the task with a message
// naming the input, before any request reaches the workspace.
func TestBadInputs(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{})
	notJSON := filepath.Join(t.TempDir(), "body.json")
	require.NoError(t, os.WriteFile(notJSON, []byte("{not json"), 0o644))

	cases := []struct {
		name   string
		inputs map[string]string
		want   string // in the error issue
	}{
		{"endpoint name with a dot", map[string]string{"endpointName": "churn.serving"}, "'Endpoint name' (endpointName): \"churn.serving\" is not a valid endpoint name"},
		{"endpoint name with a space", map[string]string{"endpointName": "churn serving"}, "is not a valid endpoint name"},
		{"endpoint name too long", map[string]string{"endpointName": strings.Repeat("e", 64)}, "1 to 63 letters"},
		{"endpoint name missing", map[string]string{"endpointName": ""}, "'Endpoint name' (endpointName): is required"},
		{"traffic 0", map[string]string{"trafficPercent": "0"}, "'Traffic to the new version (%)' (trafficPercent): \"0\" is not a whole number from 1 to 100"},
		{"traffic 101", map[string]string{"trafficPercent": "101"}, "\"101\" is not a whole number from 1 to 100"},
		{"traffic not a number", map[string]string{"trafficPercent": "half"}, "is not a whole number from 1 to 100"},
		{"version not a number", map[string]string{"modelVersion": "latest"}, "'Model version' (modelVersion): \"latest\" is not a model version number"},
		{"version zero", map[string]string{"modelVersion": "0"}, "is not a model version number"},
		{"version missing", map[string]string{"modelVersion": ""}, "(modelVersion): is required"},
		{"unknown workload size", map[string]string{"workloadSize": "Huge"}, "'Workload size' (workloadSize): \"Huge\" is not one of: Large, Medium, Small"},
		{"unknown workload type", map[string]string{"workloadType": "TPU"}, "(workloadType): \"TPU\" is not one of"},
		{"payload not JSON", map[string]string{"smokeTestPayload": "{rows: 1}"}, "'Request body (JSON)' (smokeTestPayload): is not valid JSON"},
		{"payload of an unknown shape", map[string]string{"smokeTestPayload": `{"rows": [[1, 2]]}`}, "has an unexpected key \"rows\""},
		{"payload with two shapes", map[string]string{"smokeTestPayload": `{"inputs": [1], "instances": [1]}`}, "must have exactly one of"},
		{"payload with no rows", map[string]string{"smokeTestPayload": `{"dataframe_split": {"columns": ["a"], "data": []}}`}, "dataframe_split: has no rows"},
		{"payload records not a list", map[string]string{"smokeTestPayload": `{"dataframe_records": {"a": 1}}`}, "dataframe_records: must be a list of records"},
		{"payload a list", map[string]string{"smokeTestPayload": `[1, 2]`}, "must be a JSON object"},
		{"payload file not JSON", map[string]string{"smokeTestPayload": "", "smokeTestPayloadFile": notJSON}, "(smokeTestPayloadFile): " + notJSON + ": is not valid JSON"},
		{"payload file missing", map[string]string{"smokeTestPayload": "", "smokeTestPayloadFile": notJSON + ".missing"}, "cannot read"},
		{"payload inline and file", map[string]string{"smokeTestPayloadFile": notJSON}, "give either a request body file or an inline request body"},
		{"timeout not a number", map[string]string{"timeoutMinutes": "soon"}, "(timeoutMinutes): \"soon\" is not a number of minutes"},
		{"timeout negative", map[string]string{"timeoutMinutes": "-5"}, "is not a number of minutes"},
		{"bad environment variable name", map[string]string{"environmentVariables": "1X=a"}, "\"1X\" is not an environment variable name"},
		{"broken secret reference", map[string]string{"environmentVariables": "KEY={{secrets/scope}}"}, "KEY: a secret reference must be the whole value"},
		{"tag line without =", map[string]string{"tags": "team"}, "(tags): line 1 \"team\" is not name=value"},
		{"rollback not a boolean", map[string]string{"rollback": "maybe"}, "(rollback): \"maybe\" is not a boolean"},
		{"inference table schema of one part", map[string]string{"inferenceTableSchema": "main"}, "(inferenceTableSchema): \"main\" is not a Unity Catalog schema: give catalog.schema"},
		{"inference table prefix without schema", map[string]string{"inferenceTablePrefix": "churn"}, "(inferenceTablePrefix): a table name prefix needs an inference table schema"},
		{"unknown usage tracking", map[string]string{"usageTracking": "maybe"}, "(usageTracking): \"maybe\" is not one of"},
		{"unknown rate limit key", map[string]string{"rateLimits": "users=5"}, "(rateLimits): \"users=5\": \"users\" is not a rate limit key: use one of endpoint, user, user_group, service_principal"},
		{"group rate limit without group", map[string]string{"rateLimits": "user_group=5"}, "a user_group limit names its principal"},
		{"rate limit of no calls", map[string]string{"rateLimits": "endpoint=0"}, "is not a number of calls per minute"},
		{"canary with all traffic", map[string]string{"canaryMinutes": "10"}, "(canaryMinutes): a canary is watched only when trafficPercent is below 100, and it is 100"},
		{"canary error rate above 100", map[string]string{"trafficPercent": "10", "canaryMinutes": "10", "canaryMaxErrorRate": "150"}, "(canaryMaxErrorRate): \"150\" is not a percentage from 0 to 100"},
		{"canary error rate negative", map[string]string{"canaryMaxErrorRate": "-1"}, "is not a percentage from 0 to 100"},
		{"canary latency ratio below 1", map[string]string{"canaryMaxLatencyRatio": "0.5"}, "(canaryMaxLatencyRatio): \"0.5\" is not a ratio from 1 to 100"},
		{"canary latency ratio not a number", map[string]string{"canaryMaxLatencyRatio": "NaN"}, "is not a ratio from 1 to 100"},
		{"canary minimum requests zero", map[string]string{"canaryMinRequests": "0"}, "(canaryMinRequests): \"0\" is not a whole number from 1 to 1000000000"},
		{"canary too-little-traffic choice", map[string]string{"canaryTooLittleTraffic": "ignore"}, "(canaryTooLittleTraffic): \"ignore\" is not one of"},
		{"canary minutes not a number", map[string]string{"trafficPercent": "10", "canaryMinutes": "soon"}, "(canaryMinutes): \"soon\" is not a number of minutes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := w.run(tc.inputs)
			require.Equal(t, agent.Failed, res.Result, "%s: the bad input was accepted", tc.name)
			require.Len(t, res.Errors, 1, "one problem, one issue: %v", res.Errors)
			assert.Contains(t, res.Errors[0], tc.want)
			assert.Empty(t, w.ws.Requests(), "no request before the inputs are valid")
		})
	}

	t.Run("every problem at once", func(t *testing.T) {
		res := w.run(map[string]string{"endpointName": "a b", "trafficPercent": "0", "modelVersion": "x", "smokeTestPayload": "{"})
		require.Equal(t, agent.Failed, res.Result)
		assert.Len(t, res.Errors, 4)
		assert.Equal(t, "4 problems, see the errors above", res.Message)
		assert.Empty(t, w.ws.Requests())
	})

	t.Run("no payload check when the smoke test is off", func(t *testing.T) {
		res := w.run(map[string]string{"smokeTest": "false", "smokeTestPayload": "{", "endpointName": "a b"})
		require.Len(t, res.Errors, 1)
		assert.Contains(t, res.Errors[0], "endpointName")
	})
}
