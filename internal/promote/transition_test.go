package promote_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/registry"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// registered gives ws a workspace registry model "churn" with one READY
// version per metric value (version i+1 from a run with auc = aucs[i]),
// made with the SDK as a notebook would.
func registered(t *testing.T, ws *emulator.Workspace, aucs ...float64) {
	t.Helper()
	reg := ml.NewModelRegistry(sdk(t, ws))
	if _, err := reg.GetModel(ctx(t), ml.GetModelRequest{Name: "churn"}); err != nil {
		_, err := reg.CreateModel(ctx(t), ml.CreateModelRequest{Name: "churn"})
		require.NoError(t, err)
	}
	for _, auc := range aucs {
		runID := train(t, ws, map[string]float64{"auc": auc})
		r, _ := ws.MLflowRun(runID)
		created, err := reg.CreateModelVersion(ctx(t), ml.CreateModelVersionRequest{Name: "churn", Source: r.Info.ArtifactUri + "/model", RunId: runID})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			return modelVersion(t, ws, "churn", created.ModelVersion.Version).Status == ml.ModelVersionStatusReady
		}, 10*time.Second, 10*time.Millisecond)
	}
}

func transition(version, stage string) map[string]string {
	return map[string]string{"command": "transition", "modelName": "churn", "modelVersion": version, "stage": stage}
}

func stages(t *testing.T, ws *emulator.Workspace, n int) []string {
	t.Helper()
	var out []string
	for v := 1; v <= n; v++ {
		out = append(out, modelVersion(t, ws, "churn", itoa(v)).CurrentStage)
	}
	return out
}

func TestTransitionMovesThroughStagesAndArchives(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{})
	registered(t, ws, 0.90, 0.92)

	res := run(t, ws, transition("1", "staging")) // any case in the input
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "Staging", res.Outputs["stage"])
	assert.Equal(t, "", res.Outputs["previousVersion"])
	assert.Equal(t, "models:/churn/1", res.Outputs["modelUri"])
	tr := ws.RequestsTo(http.MethodPost, "/api/2.0/mlflow/databricks/model-versions/transition-stage")
	require.Len(t, tr, 1)
	assert.Equal(t, "Staging", tr[0].Body.(*ml.TransitionModelVersionStageDatabricks).Stage, "canonical spelling on the wire")

	// "the version in Staging" goes to Production.
	res = run(t, ws, transition("Staging", "Production"))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "1", res.Outputs["modelVersion"])
	assert.Equal(t, []string{"Production", "None"}, stages(t, ws, 2))

	// latest (2) to Production, with a comment: version 1 is archived.
	in := transition("latest", "Production")
	in["comment"] = "better AUC"
	res = run(t, ws, in)
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "2", res.Outputs["modelVersion"])
	assert.Equal(t, "1", res.Outputs["previousVersion"])
	assert.Equal(t, []string{"Archived", "Production"}, stages(t, ws, 2), "moving version 2 to Production with archiveExisting archives version 1")
	tr = ws.RequestsTo(http.MethodPost, "/api/2.0/mlflow/databricks/model-versions/transition-stage")
	last := tr[len(tr)-1].Body.(*ml.TransitionModelVersionStageDatabricks)
	assert.True(t, last.ArchiveExistingVersions)
	assert.Equal(t, "better AUC", last.Comment)
	assert.Equal(t, "transition to Production", tags(modelVersion(t, ws, "churn", "2"))["brickferry_action"])
	assert.Equal(t, "archived", tags(modelVersion(t, ws, "churn", "1"))["brickferry_action"], "the version the transition archived is tagged brickferry_action=archived")
	require.Len(t, res.Summaries, 1)
	for _, md := range res.Summaries {
		assert.Contains(t, md, "Moved version 2 from None to Production. Archived version 1.")
		assert.Contains(t, md, "| **[2]("+ws.URL()+"/ml/models/churn/versions/2)** | Production | READY |")
		assert.Contains(t, md, "| [1]("+ws.URL()+"/ml/models/churn/versions/1) | Archived | READY |")
	}

	// Again: nothing changes.
	ws.ResetRequests()
	res = run(t, ws, transition("2", "Production"))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Contains(t, res.Stdout, "Version 2 of churn is already in Production: nothing to change.")
	assert.Zero(t, ws.Writes())
}

func TestTransitionWithoutArchivingKeepsBothVersionsInTheStage(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{})
	registered(t, ws, 0.90, 0.92)
	require.Equal(t, agent.Succeeded, run(t, ws, transition("1", "Production")).Result)

	in := transition("2", "Production")
	in["archiveExisting"] = "false"
	res := run(t, ws, in)
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "1", res.Outputs["previousVersion"])
	assert.Equal(t, []string{"Production", "Production"}, stages(t, ws, 2))
	assert.Contains(t, res.Stdout, "Version 1 stays in Production as well (archiveExisting is false).")
}

func TestTransitionNotFound(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{})
	registered(t, ws, 0.90)
	for name, tc := range map[string]struct {
		in   map[string]string
		want string
	}{
		"model":    {map[string]string{"modelName": "fraud"}, "registered model fraud not found in the workspace model registry of workspace " + ws.URL()},
		"version":  {map[string]string{"modelVersion": "7"}, "version 7 of churn not found in the workspace model registry of " + ws.URL()},
		"stage":    {map[string]string{"modelVersion": "Production"}, "no version of churn is in stage Production in workspace " + ws.URL()},
		"uc model": {map[string]string{"modelName": "main.ml.churn", "stage": "", "alias": "champion"}, "registered model main.ml.churn not found in Unity Catalog of workspace " + ws.URL()},
	} {
		t.Run(name, func(t *testing.T) {
			ws.ResetRequests()
			in := transition("1", "Staging")
			for k, v := range tc.in {
				in[k] = v
			}
			res := run(t, ws, in)
			require.Equal(t, agent.Failed, res.Result, res.Stdout)
			require.Len(t, res.Errors, 1, res.Stdout)
			assert.Equal(t, tc.want, res.Errors[0])
			assert.Zero(t, ws.Writes())
		})
	}
}

func aliasInputs(version, alias string) map[string]string {
	return map[string]string{"command": "transition", "modelName": "main.ml.churn", "modelVersion": version, "alias": alias}
}

func aliases(t *testing.T, ws *emulator.Workspace) map[string]int {
	t.Helper()
	m, err := catalog.NewRegisteredModels(sdk(t, ws)).Get(ctx(t), catalog.GetRegisteredModelRequest{FullName: "main.ml.churn", IncludeAliases: true})
	require.NoError(t, err)
	out := map[string]int{}
	for _, a := range m.Aliases {
		out[a.AliasName] = a.VersionNum
	}
	return out
}

func TestAliasMovesBetweenUnityCatalogVersions(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{})
	ucVersion(t, ws, "main.ml.churn", train(t, ws, map[string]float64{"auc": 0.90}))
	ucVersion(t, ws, "main.ml.churn", train(t, ws, map[string]float64{"auc": 0.92}))

	res := run(t, ws, aliasInputs("1", "champion"))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "champion", res.Outputs["alias"])
	assert.Equal(t, "", res.Outputs["previousVersion"])
	assert.Equal(t, "models:/main.ml.churn/1", res.Outputs["modelUri"])

	res = run(t, ws, aliasInputs("latest", "challenger"))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, map[string]int{"champion": 1, "challenger": 2}, aliases(t, ws))

	// The challenger becomes the champion and stops being the challenger.
	in := aliasInputs("@challenger", "champion")
	in["removeAlias"] = "challenger"
	res = run(t, ws, in)
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "2", res.Outputs["modelVersion"])
	assert.Equal(t, "1", res.Outputs["previousVersion"])
	assert.Equal(t, map[string]int{"champion": 2}, aliases(t, ws))
	require.Len(t, res.Summaries, 1)
	for _, md := range res.Summaries {
		assert.Contains(t, md, "Moved @champion from version 1 to version 2. Removed @challenger from it.")
		assert.Contains(t, md, "| **[2]("+ws.URL()+"/explore/data/models/main/ml/churn/version/2)** | @champion | READY |")
	}

	ws.ResetRequests()
	res = run(t, ws, aliasInputs("2", "champion"))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Contains(t, res.Stdout, "main.ml.churn@champion is already version 2: nothing to change.")
	assert.Zero(t, ws.Writes())

	res = run(t, ws, aliasInputs("@champion-old", "champion"))
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	assert.Equal(t, []string{"no version of main.ml.churn has the alias @champion-old in workspace " + ws.URL()}, res.Errors)
}

// A tag the workspace refuses leaves the alias where it was: the version
// is tagged before the alias moves. The rerun finishes the promotion.
func TestAliasNotMovedWhenTaggingIsRefused(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t, emulator.Options{})
	ucVersion(t, ws, "main.ml.churn", train(t, ws, map[string]float64{"auc": 0.90}))
	ucVersion(t, ws, "main.ml.churn", train(t, ws, map[string]float64{"auc": 0.92}))
	require.Equal(t, agent.Succeeded, run(t, ws, aliasInputs("1", "champion")).Result)

	ws.SetFaults(emulator.FaultPlan{Rules: []emulator.FaultRule{
		{Prefix: registry.UCRoute + "set-tag", Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault400}},
	}})
	ws.ResetRequests()
	res := run(t, ws, aliasInputs("2", "champion"))
	ws.SetFaults(emulator.FaultPlan{})
	require.Equal(t, agent.Failed, res.Result, res.Stdout)
	require.Len(t, res.Errors, 1, res.Stdout)
	assert.Contains(t, res.Errors[0], "tagging version 2 of main.ml.churn with brickferry_")
	assert.Contains(t, res.Errors[0], "@champion was not moved")
	assert.Equal(t, map[string]int{"champion": 1}, aliases(t, ws), "the alias stays on the version that held it")
	assert.Empty(t, ws.RequestsTo(http.MethodPut, "/api/2.1/unity-catalog/models/main.ml.churn/aliases/champion"))

	res = run(t, ws, aliasInputs("2", "champion"))
	require.Equal(t, agent.Succeeded, res.Result, res.Stdout)
	assert.Equal(t, "1", res.Outputs["previousVersion"])
	assert.Equal(t, map[string]int{"champion": 2}, aliases(t, ws))
	assert.Equal(t, "alias champion", ucVersionTags(t, ws, "2")["brickferry_action"])
	assert.NotEmpty(t, ws.RequestsTo(http.MethodPost, registry.UCRoute+"set-tag"), "tags go to set-tag")
	assert.Empty(t, ws.RequestsTo(http.MethodPost, registry.UCRoute+"tags"), "not to the old route")
}
