package serve_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

var gatewayPath = "/api/2.0/serving-endpoints/" + endpoint + "/ai-gateway"

// TestAIGatewayOnCreateKeptOnUpdate: an AI Gateway inference table, usage
// tracking and rate limits are put with PutAiGateway once the new endpoint
// is READY, never as a legacy auto_capture_config; a later deploy without
// AI Gateway inputs leaves them as they are, and one with the same inputs
// sends nothing.
func TestAIGatewayOnCreateKeptOnUpdate(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{})
	w.ws.CreateSchema("main", "serving_logs")
	gatewayInputs := map[string]string{
		"inferenceTableSchema": "main.serving_logs",
		"inferenceTablePrefix": "churn",
		"usageTracking":        "on",
		"rateLimits":           "endpoint=1000\nuser=60\nuser_group:analysts=200",
	}
	res := w.run(gatewayInputs)
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)

	creates := w.ws.RequestsTo(http.MethodPost, "/api/2.0/serving-endpoints")
	require.Len(t, creates, 1)
	assert.NotContains(t, string(creates[0].Raw), "auto_capture_config", "a legacy inference table is never sent on a new endpoint")
	puts := w.ws.RequestsTo(http.MethodPut, gatewayPath)
	require.Len(t, puts, 1)
	assert.Equal(t, http.StatusOK, puts[0].Status)
	assert.True(t, puts[0].Time.After(creates[0].Time))

	gw := w.endpoint().AiGateway
	require.NotNil(t, gw)
	it := *gw.InferenceTableConfig
	it.ForceSendFields = nil
	assert.Equal(t, serving.AiGatewayInferenceTableConfig{CatalogName: "main", SchemaName: "serving_logs", TableNamePrefix: "churn", Enabled: true}, it)
	require.NotNil(t, gw.UsageTrackingConfig)
	assert.True(t, gw.UsageTrackingConfig.Enabled)
	assert.Equal(t, []serving.AiGatewayRateLimit{
		{Key: "endpoint", Calls: 1000, RenewalPeriod: "minute"},
		{Key: "user", Calls: 60, RenewalPeriod: "minute"},
		{Key: "user_group", Principal: "analysts", Calls: 200, RenewalPeriod: "minute"},
	}, rateLimits(gw))
	assert.Contains(t, res.Stdout, "AI Gateway of endpoint "+endpoint+" set: inference table main.serving_logs (prefix churn), usage tracking on, rate limits endpoint 1000/min, user 60/min, user_group analysts 200/min.")
	assert.Contains(t, onlySummary(t, res.Summaries), "AI Gateway set: inference table main.serving_logs (prefix churn)")

	// A deploy without AI Gateway inputs keeps the gateway as it is.
	w.ws.ResetRequests()
	res = w.run(map[string]string{"modelVersion": "2"})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	assert.Len(t, w.ws.RequestsTo(http.MethodPut, "/api/2.0/serving-endpoints/"+endpoint+"/config"), 1)
	assert.Empty(t, w.ws.RequestsTo(http.MethodPut, gatewayPath), "no AI Gateway input: nothing sent")
	assert.Equal(t, gw, w.endpoint().AiGateway, "the AI Gateway config survives the config update")
	assert.Contains(t, res.Stdout, "the endpoint's AI Gateway config is kept as it is")
	for _, r := range w.ws.RequestsTo(http.MethodPut, "/api/2.0/serving-endpoints/"+endpoint+"/config") {
		assert.NotContains(t, string(r.Raw), "auto_capture_config")
	}

	// The same inputs again: the endpoint has them, nothing is sent.
	w.ws.ResetRequests()
	in := map[string]string{"modelVersion": "2"}
	for k, v := range gatewayInputs {
		in[k] = v
	}
	res = w.run(in)
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	assert.Empty(t, w.ws.RequestsTo(http.MethodPut, gatewayPath), "a rerun sends the same AI Gateway config again")
	assert.Contains(t, res.Stdout, "already has this config")
}

// TestAIGatewayMovesAnInferenceTable: Databricks refuses to change an
// enabled inference table's schema; the task disables it first.
func TestAIGatewayMovesAnInferenceTable(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{})
	w.ws.CreateSchema("main", "logs_a")
	w.ws.CreateSchema("main", "logs_b")
	w.serveVersion(1, map[string]string{"inferenceTableSchema": "main.logs_a", "rateLimits": "endpoint=10"})
	w.ws.ResetRequests()
	res := w.run(map[string]string{"inferenceTableSchema": "main.logs_b"})
	require.Equal(t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
	puts := w.ws.RequestsTo(http.MethodPut, gatewayPath)
	require.Len(t, puts, 2)
	first := puts[0].Body.(*serving.PutAiGatewayRequest)
	assert.False(t, first.InferenceTableConfig.Enabled, "disabled first")
	gw := w.endpoint().AiGateway
	assert.Equal(t, "logs_b", gw.InferenceTableConfig.SchemaName)
	assert.True(t, gw.InferenceTableConfig.Enabled)
	assert.Equal(t, []serving.AiGatewayRateLimit{{Key: "endpoint", Calls: 10, RenewalPeriod: "minute"}}, rateLimits(gw), "rate limits not asked for are kept")
}

// TestAIGatewayUnknownSchema: an inference table in a catalog or schema
// that does not exist is refused before anything is written.
func TestAIGatewayUnknownSchema(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Options{})
	w.ws.CreateSchema("main", "other")
	for _, tc := range []struct{ schema, want string }{
		{"nocatalog.logs", "Catalog 'nocatalog' does not exist"},
		{"main.nope", "Schema 'main.nope' does not exist"},
	} {
		t.Run(tc.schema, func(t *testing.T) {
			w.ws.ResetRequests()
			res := w.run(map[string]string{"inferenceTableSchema": tc.schema})
			require.Equal(t, agent.Failed, res.Result)
			require.Len(t, res.Errors, 1)
			assert.Contains(t, res.Errors[0], "inferenceTableSchema: "+tc.schema+": "+tc.want)
			assert.Contains(t, res.Errors[0], "nothing was changed")
			writes := slices.DeleteFunc(w.ws.Requests(), func(r emulator.Request) bool { return !r.IsWrite() })
			assert.Empty(t, writes, "no write before the schema is known to exist")
		})
	}
}

// rateLimits are the endpoint's rate limits as they compare (without the
// SDK's ForceSendFields bookkeeping).
func rateLimits(gw *serving.AiGatewayConfig) []serving.AiGatewayRateLimit {
	out := slices.Clone(gw.RateLimits)
	for i := range out {
		out[i].ForceSendFields = nil
	}
	return out
}
