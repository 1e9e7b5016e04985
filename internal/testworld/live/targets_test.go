package live_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/demo"
	"github.com/brickferry/brickferry/internal/testworld/live"
	"github.com/brickferry/brickferry/internal/testworld/pipeline"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// complete is a valid live environment: a token for dev, a service
// principal for prod.
func complete() map[string]string {
	return map[string]string{
		"BRICKFERRY_LIVE":                          "1",
		"BRICKFERRY_LIVE_DEV_DATABRICKS_HOST":      "https://adb-1.1.azuredatabricks.net",
		"BRICKFERRY_LIVE_DEV_DATABRICKS_TOKEN":     "dapi-dev",
		"BRICKFERRY_LIVE_PROD_DATABRICKS_HOST":     "https://adb-2.2.azuredatabricks.net",
		"BRICKFERRY_LIVE_PROD_ARM_CLIENT_ID":       "11111111-1111-1111-1111-111111111111",
		"BRICKFERRY_LIVE_PROD_ARM_CLIENT_SECRET":   "s3cret",
		"BRICKFERRY_LIVE_PROD_ARM_TENANT_ID":       "22222222-2222-2222-2222-222222222222",
		"BRICKFERRY_LIVE_WAREHOUSE_ID":             "abc123",
		"BRICKFERRY_LIVE_TIMEOUT_MINUTES":          "20",
		"DATABRICKS_HOST":                          "https://not-this-one.azuredatabricks.net",
		"DATABRICKS_TOKEN":                         "not-this-token",
		"BRICKFERRY_LIVE_DEV_DATABRICKS_AUTH_TYPE": "",
	}
}

func TestFromEnvRefusesWithoutTheGate(t *testing.T) {
	for _, v := range []string{"", "0", "true", "yes"} {
		e := complete()
		e["BRICKFERRY_LIVE"] = v
		_, err := live.FromEnv(env(e))
		assert.ErrorIs(t, err, live.ErrNotEnabled, "BRICKFERRY_LIVE=%q", v)
	}
}

func TestFromEnvReadsEachWorkspaceUnderItsPrefix(t *testing.T) {
	got, err := live.FromEnv(env(complete()))
	require.NoError(t, err)
	assert.Equal(t, "https://adb-1.1.azuredatabricks.net", got.Dev.Host)
	assert.Equal(t, "dapi-dev", got.Dev.Token, "the prefixed token, not DATABRICKS_TOKEN")
	assert.Equal(t, "https://adb-2.2.azuredatabricks.net", got.Prod.Host)
	assert.Empty(t, got.Prod.Token, "DATABRICKS_TOKEN of the shell does not leak into prod")
	assert.Equal(t, "s3cret", got.Prod.AzureClientSecret)
	assert.Equal(t, "dev.ml", got.DevSchema)
	assert.Equal(t, "prod.ml.customer", got.InputTable)
	assert.Equal(t, "dev.ml.customer", got.TrainTable)
	assert.Equal(t, "bflive", got.Prefix)
	assert.Equal(t, 20.0, got.Timeout.Minutes())
	assert.Equal(t, []string{"uc", "workspace"}, got.Samples)
	assert.Empty(t, got.DevNodeType+got.ProdNodeType, "each workspace's smallest, asked later")

	e := complete()
	e["BRICKFERRY_LIVE_NODE_TYPE"] = "Standard_F8s"
	got, err = live.FromEnv(env(e))
	require.NoError(t, err)
	assert.Equal(t, []string{"Standard_F8s", "Standard_F8s"}, []string{got.DevNodeType, got.ProdNodeType})
}

func TestFromEnvNamesEveryBadSetting(t *testing.T) {
	e := complete()
	delete(e, "BRICKFERRY_LIVE_PROD_DATABRICKS_HOST")
	e["BRICKFERRY_LIVE_WAREHOUSE_ID"] = "not a warehouse"
	e["BRICKFERRY_LIVE_DEV_SCHEMA"] = "dev"
	e["BRICKFERRY_LIVE_PREFIX"] = "Bad-Prefix"
	e["BRICKFERRY_LIVE_TIMEOUT_MINUTES"] = "0"
	e["BRICKFERRY_LIVE_SAMPLES"] = "uc,mlflow4"
	_, err := live.FromEnv(env(e))
	require.Error(t, err)
	for _, want := range []string{
		"BRICKFERRY_LIVE_PROD_DATABRICKS_HOST is not set", "BRICKFERRY_LIVE_WAREHOUSE_ID=", "BRICKFERRY_LIVE_DEV_SCHEMA=\"dev\": give catalog.schema",
		"BRICKFERRY_LIVE_PREFIX=", "BRICKFERRY_LIVE_TIMEOUT_MINUTES=\"0\": minutes from 1 to 240", "uc and workspace",
	} {
		assert.Contains(t, err.Error(), want)
	}
}

// TestRewrite checks that a plan gives each sample pipeline the run's names
// (no name of the shipped sample is left in an input or variable) and the
// cost guard, and fails on a pipeline that lost a name.
func TestRewrite(t *testing.T) {
	root, err := azurite.RepoRoot()
	require.NoError(t, err)
	targets, err := live.FromEnv(env(complete()))
	require.NoError(t, err)
	targets.DevNodeType, targets.ProdNodeType = "Standard_DEV", "Standard_PROD"
	for key, sample := range demo.Samples() {
		t.Run(key, func(t *testing.T) {
			plan, err := live.NewPlan(targets, key, "a1b2c3")
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(plan.Name, "bflive-a1b2c3-"), plan.Name)
			pl, err := pipeline.Load(filepath.Join(root, filepath.FromSlash(sample.File)))
			require.NoError(t, err)
			require.NoError(t, plan.Rewrite(pl, targets))
			// The names of what the run creates (the input table it only reads).
			shipped := []string{sample.DevModel, sample.ProdModel, sample.OutputTable, sample.Endpoint, demo.TrainNotebook, demo.Experiment}
			runs := func(v string) bool { return strings.Contains(strings.ReplaceAll(v, "_", "-"), plan.Name) }
			clusters := 0
			for _, v := range pl.Variables {
				if strings.HasSuffix(v.Name, "odel") {
					assert.True(t, runs(v.Value), "variable %s=%q has the run's name", v.Name, v.Value)
				}
			}
			for _, st := range pl.Stages {
				for _, job := range st.Jobs {
					for _, step := range job.AllSteps() {
						for k, v := range step.Inputs {
							assert.NotContains(t, shipped, string(v), "%s input %s", step.Name, k)
							switch k {
							case "modelName", "targetModelName", "outputTable", "endpointName", "notebookPath", "mlflowExperiment", "targetExperiment", "jobName", "notebookFolder":
								if !strings.HasPrefix(string(v), "$(") {
									assert.True(t, runs(string(v)), "%s input %s=%q has the run's name", step.Name, k, v)
								}
							}
						}
						if step.Inputs["compute"] == "newCluster" {
							clusters++
							assert.Equal(t, "true", string(step.Inputs["singleNode"]), step.Name)
							assert.Empty(t, step.Inputs["workers"], step.Name)
							want := "Standard_DEV" // training, in dev
							if strings.HasPrefix(step.Task, "BatchScore") {
								want = "Standard_PROD" // scoring, in prod
							}
							assert.Equal(t, want, string(step.Inputs["nodeType"]), step.Name)
							assert.Equal(t, "20", string(step.Inputs["timeoutMinutes"]), step.Name)
						}
						if strings.HasPrefix(step.Task, "ModelServe") {
							assert.Equal(t, "20", string(step.Inputs["timeoutMinutes"]))
							assert.Equal(t, plan.Sample.Endpoint, string(step.Inputs["endpointName"]))
						}
					}
				}
			}
			assert.Equal(t, 2, clusters, "training and scoring each start one cluster")
		})
	}
	t.Run("a pipeline without one of the names", func(t *testing.T) {
		plan, err := live.NewPlan(targets, "uc", "a1b2c3")
		require.NoError(t, err)
		pl, err := pipeline.Load(filepath.Join(root, filepath.FromSlash(demo.UnityCatalog().File)))
		require.NoError(t, err)
		pl.Stages = pl.Stages[:1] // no scoring, no serving
		err = plan.Rewrite(pl, targets)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "prod.ml.churn_predictions")
		assert.Contains(t, err.Error(), "the endpoint churn")
	})
}
