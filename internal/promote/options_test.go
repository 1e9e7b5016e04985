package promote_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// TestBadInputsFailBeforeAnyRemoteCall runs the task with one bad input at a
// time and checks the error names the input and the problem, and that the
// workspace saw no request at all.
func TestBadInputsFailBeforeAnyRemoteCall(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{})
	const run32 = "0123456789abcdef0123456789abcdef"
	reg := func(kv ...string) map[string]string {
		in := map[string]string{"command": "register", "modelName": "churn", "modelUri": "runs:/" + run32 + "/model"}
		for i := 0; i < len(kv); i += 2 {
			in[kv[i]] = kv[i+1]
		}
		return in
	}
	tr := func(kv ...string) map[string]string {
		in := map[string]string{"command": "transition", "modelName": "churn", "modelVersion": "3", "stage": "Production"}
		for i := 0; i < len(kv); i += 2 {
			in[kv[i]] = kv[i+1]
		}
		return in
	}
	gate := func(kv ...string) map[string]string {
		in := map[string]string{"command": "gate", "modelName": "churn", "modelVersion": "3", "stage": "Production", "metricName": "auc"}
		for i := 0; i < len(kv); i += 2 {
			in[kv[i]] = kv[i+1]
		}
		return in
	}
	cases := []struct {
		name   string
		inputs map[string]string
		want   string // in the single error
	}{
		{"unknown command", tr("command", "promote"), `input 'Command' (command): "promote" is not one of: approve, copy, gate, register, transition`},
		{"model URI without scheme", reg("modelUri", run32+"/model"), `is not a model URI: give the DatabricksTrain output modelUri (models:/m-<id> or runs:/<run id>/<artifact path>)`},
		{"runs URI without path", reg("modelUri", "runs:/"+run32), `names no artifact path: write runs:/` + run32 + `/<artifact path>`},
		{"runs URI with bad run id", reg("modelUri", "runs:/@@/model"), `"runs:/@@/model" is not a runs:/ URI`},
		{"models URI to register", reg("modelUri", "models:/churn/1"), `is a registry URI: register from the logged model (models:/m-<id>) or the run`},
		{"models URI of a name", reg("modelUri", "models:/churn"), `"models:/churn" is not a logged model URI: a logged model's id starts with m-`},
		{"unexpanded variable", reg("modelUri", "$(train.modelUri)"), "'Model URI' (modelUri): the macro $(train.modelUri) was not expanded: no variable train.modelUri is defined for this step"},
		{"register into UC from a dbfs folder", reg("modelName", "main.ml.churn", "modelUri", "dbfs:/models/churn"), `input 'Model URI' (modelUri): registering into Unity Catalog (main.ml.churn) needs a models:/m-<id> or runs:/<run id>/<artifact path> URI`},
		{"timeout not a number", reg("timeoutMinutes", "ten"), `input 'Timeout (minutes)' (timeoutMinutes): "ten" is not a number of minutes`},
		{"reserved tag", reg("versionTags", "brickferry_build_id=1"), `"brickferry_build_id": tags starting with "brickferry_" are set by the task itself`},
		{"tag line without =", reg("versionTags", "team"), `line 1 "team" is not name=value`},
		{"UC tag with a reserved character", reg("modelName", "main.ml.churn", "versionTags", "team=churn\nowner.name=ana"), `input 'Version tags' (versionTags): "owner.name": a Unity Catalog model version tag name may not contain any of . , - = / : (use _ instead), as main.ml.churn is a Unity Catalog model`},
		{"missing model name", tr("modelName", ""), `input 'Model name' (modelName): is required`},
		{"UC name with two parts", tr("modelName", "ml.churn"), `"ml.churn" has 2 dot-separated parts: a Unity Catalog model name has three (catalog.schema.model)`},
		{"UC name with four parts", tr("modelName", "a.b.c.d", "stage", "", "alias", "x"), `"a.b.c.d" has 4 dot-separated parts`},
		{"UC name with empty part", tr("modelName", "main..churn", "stage", "", "alias", "x"), `"main..churn" is not a Unity Catalog model name`},
		{"stage not one of the four", tr("stage", "Prod"), `input 'Stage (workspace model registry)' (stage): "Prod" is not one of: Archived, None, Production, Staging`},
		{"stage on a UC model", tr("modelName", "main.ml.churn"), `main.ml.churn is a Unity Catalog model: Unity Catalog has no stages; set an alias instead`},
		{"alias on a workspace model", tr("stage", "", "alias", "champion"), `churn is a workspace model registry model: it has stages (Staging, Production), not aliases`},
		{"alias with invalid characters", tr("modelName", "main.ml.churn", "stage", "", "alias", "champ ion!"), `"champ ion!" is not a valid alias: use 1 to 255 letters, digits, underscores (_) and dashes (-)`},
		{"alias that is a number", tr("modelName", "main.ml.churn", "stage", "", "alias", "42"), `"42" is a number: an alias must not be a version number`},
		{"alias latest", tr("modelName", "main.ml.churn", "stage", "", "alias", "latest"), `"latest" is reserved`},
		{"stage and alias", tr("modelName", "main.ml.churn", "alias", "champion"), `give a stage or an alias, not both`},
		{"neither stage nor alias", tr("stage", ""), `input 'Stage (workspace model registry)' (stage): is required for the workspace model registry model churn`},
		{"version not a number", tr("modelVersion", "v3"), `"v3" is not a version: give a number (3), latest, a stage (Staging) or an alias (@champion)`},
		{"version zero", tr("modelVersion", "0"), `"0" is not a version number (1, 2, ...)`},
		{"version missing", tr("modelVersion", ""), `input 'Model version' (modelVersion): is required`},
		{"version by alias on a workspace model", tr("modelVersion", "@champion"), `churn is a workspace model registry model, which has no aliases`},
		{"remove alias on a workspace model", tr("removeAlias", "challenger"), `churn is a workspace model registry model, which has no aliases`},
		{"gate without metric", gate("metricName", ""), `input 'Metric' (metricName): is required`},
		{"gate direction", gate("direction", "up"), `"up" is not one of: higher, lower`},
		{"gate negative improvement", gate("minImprovement", "-0.1"), `"-0.1" is not a number of 0 or more`},
		{"gate threshold not a number", gate("threshold", "high"), `"high" is not a number`},
		{"gate against Archived", gate("stage", "Archived"), `a gate compares with the version in Staging or Production, not Archived`},
		{"gate on-fail choice", gate("onGateFail", "ignore"), `"ignore" is not one of: fail, warn`},
	}
	require.GreaterOrEqual(t, len(cases), 15)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws.ResetRequests()
			res := run(t, ws, tc.inputs)
			require.Equal(t, agent.Failed, res.Result, res.Stdout)
			require.Len(t, res.Errors, 1, strings.Join(res.Errors, "\n"))
			assert.Contains(t, res.Errors[0], tc.want)
			assert.Empty(t, ws.Requests(), "no request may reach the workspace")
			assert.Zero(t, ws.Writes())
		})
	}
}

// TestAllProblemsAreReportedAtOnce: a user fixing inputs sees every problem
// in one run.
func TestAllProblemsAreReportedAtOnce(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{})
	res := run(t, ws, map[string]string{"command": "gate", "modelName": "a.b", "modelVersion": "x", "stage": "Sideways", "metricName": ""})
	require.Equal(t, agent.Failed, res.Result)
	assert.Len(t, res.Errors, 4, strings.Join(res.Errors, "\n"))
	assert.Equal(t, "4 problems, see the errors above", res.Message)
	assert.Empty(t, ws.Requests())
}
