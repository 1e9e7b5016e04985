package auth_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/azurestandin"
)

// TestNamedGroupWinsOverTheJobsVariables: the job has databricks-host and
// databricks-token from the group `databricks` linked to the pipeline (the
// dev workspace), and the step names another group with the same variable
// names. The named group decides the workspace, or the task refuses; the
// job's variables are never used in its place.
func TestNamedGroupWinsOverTheJobsVariables(t *testing.T) {
	w := newWorld(t)
	w.addGroup(azurestandin.VariableGroup{Name: "databricks", Variables: map[string]azurestandin.Variable{
		"databricks-host": {Value: "https://" + devHost}, "databricks-token": {Value: devPAT, Secret: true},
	}})
	w.addGroup(azurestandin.VariableGroup{Name: "databricks-prod", Variables: map[string]azurestandin.Variable{
		"databricks-host": {Value: "https://" + prodHost}, "databricks-token": {Value: prodPAT, Secret: true},
	}})
	w.addGroup(azurestandin.VariableGroup{Name: "databricks-prod-plain", Variables: map[string]azurestandin.Variable{
		"databricks-host": {Value: "https://" + prodHost}, "databricks-token": {Value: prodPAT},
	}})
	w.addGroup(azurestandin.VariableGroup{Name: "databricks-prod-kv", KeyVault: &azurestandin.GroupVault{Vault: "kv-mlops"},
		Variables: map[string]azurestandin.Variable{"databricks-host": {}, "databricks-token": {}}})
	sp := secretEndpoint(secretClientID, spSecret)
	linked := func(inputs map[string]string) agenttest.Run {
		return agenttest.Run{
			Inputs:    inputs,
			Variables: map[string]string{"databricks-host": "https://" + devHost},
			Secrets:   map[string]string{"databricks-token": devPAT},
		}
	}

	t.Run("the group's token is secret: refused", func(t *testing.T) {
		w.dev.ResetRequests()
		w.prod.ResetRequests()
		res := w.run(t, "", linked(map[string]string{"variableGroup": "databricks-prod"}))
		require.Equal(t, agent.Failed, res.Result, res.Stdout)
		require.Len(t, res.Errors, 1)
		assert.Contains(t, res.Errors[0], `the job's secret variable databricks-token cannot be tied to variable group "databricks-prod": the group's databricks-host is https://`+prodHost+`, but the job has databricks-host = https://`+devHost)
		assert.Contains(t, res.Errors[0], "variableSuffix")
		assert.Empty(t, w.dev.Requests(), "no request to the job's workspace")
		assert.Empty(t, w.prod.Requests(), "no request with a token that is not the group's")
	})

	t.Run("the group is linked to Key Vault: the vault's values", func(t *testing.T) {
		res := w.run(t, "", agenttest.Run{
			Inputs: map[string]string{"variableGroup": "databricks-prod-kv", "azureSubscription": sp.ID}, Endpoints: []agent.Endpoint{sp},
			Variables: map[string]string{"databricks-host": "https://" + devHost}, Secrets: map[string]string{"databricks-token": devPAT},
		})
		require.Equal(t, agent.Succeeded, res.Result, "errors: %v", res.Errors)
		assert.Equal(t, "https://"+prodHost, res.Outputs["host"])
		assert.Contains(t, res.Stdout, "The job's variable databricks-host (https://"+devHost+") is not the one of group databricks-prod-kv")
		assert.Contains(t, res.Stdout, "The workspace is https://"+prodHost+": databricks-host (secret databricks-host of key vault kv-mlops, which group databricks-prod-kv is linked to)")
	})

	t.Run("the group's token is plain: the group's values", func(t *testing.T) {
		res := w.run(t, "", linked(map[string]string{"variableGroup": "databricks-prod-plain"}))
		require.Equal(t, agent.Succeeded, res.Result, "errors: %v", res.Errors)
		assert.Equal(t, "https://"+prodHost, res.Outputs["host"])
		assert.Equal(t, "variable databricks-token of group databricks-prod-plain", res.Outputs["principal"])
	})

	t.Run("the group linked to the pipeline: the job's token", func(t *testing.T) {
		res := w.run(t, "", linked(map[string]string{"variableGroup": "databricks"}))
		require.Equal(t, agent.Succeeded, res.Result, "errors: %v", res.Errors)
		assert.Equal(t, "https://"+devHost, res.Outputs["host"])
		assert.Contains(t, res.Stdout, "The workspace is https://"+devHost+": databricks-host (from variable group databricks, read through the Azure DevOps API); the token is the secret variable databricks-token of group databricks, as the job received it (the group is linked to the pipeline")
	})

	t.Run("outside a pipeline run: the run's variables, said so", func(t *testing.T) {
		r := linked(map[string]string{"variableGroup": "databricks-prod"})
		r.Env = map[string]string{"SYSTEM_TEAMFOUNDATIONCOLLECTIONURI": "", "ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN": ""}
		res := w.run(t, "", r)
		require.Equal(t, agent.Succeeded, res.Result, "errors: %v", res.Errors)
		assert.Equal(t, "https://"+devHost, res.Outputs["host"])
		assert.Contains(t, res.Stdout, "variable databricks-host given to this run: outside a pipeline run the group databricks-prod is not read")
	})

	reads := 0
	for _, r := range w.az.Requests() {
		if r.Host == azurestandin.DevOpsHost && strings.HasSuffix(r.Path, "/variablegroups") {
			reads++
		}
	}
	assert.Equal(t, 4, reads, "each run in a pipeline read its group by name, and the local one none")
}
