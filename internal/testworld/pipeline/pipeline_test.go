package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
)

// The test binary stands in for brickferry: with PIPELINE_FAKE_TASK=1 it acts
// as a task that echoes its inputs and environment as logging commands.
func TestMain(m *testing.M) {
	if os.Getenv("PIPELINE_FAKE_TASK") == "1" {
		fakeTask(os.Args[1])
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func fakeTask(name string) {
	in := os.Getenv("INPUT_VALUE")
	switch name {
	case "Producer":
		fmt.Println("##vso[task.setsecret]minted-" + os.Getenv("SECRET_DATABRICKS-TOKEN"))
		fmt.Printf("##vso[task.setvariable variable=value;isOutput=true]%s-produced\n", in)
		fmt.Println("##vso[task.setvariable variable=plain]local")
		fmt.Println("token is " + os.Getenv("SECRET_DATABRICKS-TOKEN") + " minted-" + os.Getenv("SECRET_DATABRICKS-TOKEN"))
		fmt.Println("##vso[task.complete result=Succeeded]")
	case "Consumer":
		fmt.Printf("##vso[task.setvariable variable=value;isOutput=true]%s|%s|%s|%s\n", in, os.Getenv("INPUT_CONN"), os.Getenv("ENDPOINT_URL_"+os.Getenv("INPUT_CONN")), os.Getenv("DATABRICKS-HOST"))
		if in == "fail" {
			fmt.Println("##vso[task.issue type=error]asked to fail")
			fmt.Println("##vso[task.complete result=Failed]asked to fail")
			return
		}
		fmt.Println("##vso[task.complete result=Succeeded]")
	}
}

func definitions(name string) (agent.Definition, error) {
	return agent.ParseDefinition([]byte(`{"name": "` + name + `", "version": {"Major": 1}, "inputs": [
		{"name": "value", "type": "string", "defaultValue": "default"},
		{"name": "conn", "type": "connectedService:AzureRM"}]}`))
}

const yamlText = `
trigger: none
variables:
- group: databricks
- name: modelName
  value: churn
stages:
- stage: Train
  jobs:
  - job: A
    steps:
    - checkout: self
    - task: Tools@1
    - task: Producer@1
      name: produce
      inputs:
        value: $(modelName)
    - task: Consumer@1
      name: consume
      inputs:
        value: $(produce.value)/$(plain)/$(unknown)
  - job: B
    dependsOn: A
    variables:
      fromA: $[ dependencies.A.outputs['produce.value'] ]
    steps:
    - task: Consumer@1
      name: consume
      inputs:
        value: $(fromA)
        conn: my-azure
- stage: Deploy
  condition: and(succeeded(), eq(variables['modelName'], 'churn'), eq(dependencies.Train.outputs['A.produce.value'], 'churn-produced'))
  jobs:
  - deployment: Prod
    environment: production
    variables:
      fromTrain: $[ stageDependencies.Train.A.outputs['produce.value'] ]
    strategy:
      runOnce:
        deploy:
          steps:
          - task: Consumer@1
            name: deploy
            inputs:
              value: $(fromTrain)
          - task: Consumer@1
            name: broken
            inputs:
              value: fail
          - task: Consumer@1
            name: cleanup
            condition: failed()
          - task: Consumer@1
            name: skipped
- stage: Never
  jobs:
  - job: C
    steps:
    - task: Consumer@1
`

func TestRun(t *testing.T) {
	p, err := Parse([]byte(yamlText))
	require.NoError(t, err)
	var out bytes.Buffer
	r := &Runner{
		Exe:    os.Args[0],
		Groups: map[string]map[string]GroupVariable{"databricks": {"databricks-host": {Value: "https://adb-1.azuredatabricks.net"}, "databricks-token": {Value: "dapi-group-secret", Secret: true}}},
		Connections: map[string]agent.Endpoint{"my-azure": {ID: "6f1c", URL: "https://management.azure.com/", Scheme: "ServicePrincipal",
			Parameters: map[string]string{"serviceprincipalkey": "sp-secret-value"}}},
		BaseEnv:     map[string]string{"PIPELINE_FAKE_TASK": "1", "PATH": os.Getenv("PATH")},
		WorkDir:     t.TempDir(),
		Out:         &out,
		Definitions: definitions,
		Skip:        map[string]string{"Tools": "not needed here"},
	}
	res, err := r.Run(context.Background(), p)
	require.NoError(t, err, out.String())
	assert.Equal(t, "Failed", res.Result)
	a := res.Job("Train", "A")
	require.NotNil(t, a)
	assert.Equal(t, "churn-produced", a.Outputs["produce.value"])
	assert.Equal(t, "churn-produced/local/$(unknown)|||https://adb-1.azuredatabricks.net", a.Outputs["consume.value"])
	assert.Equal(t, "churn-produced|6f1c|https://management.azure.com/|https://adb-1.azuredatabricks.net", res.Job("Train", "B").Outputs["consume.value"])
	prod := res.Job("Deploy", "Prod")
	assert.Equal(t, "Failed", prod.Result)
	assert.Equal(t, "churn-produced|||https://adb-1.azuredatabricks.net", prod.Outputs["Prod.deploy.value"], "deployment outputs carry the job name")
	var names []string
	for _, s := range prod.Steps {
		names = append(names, s.Name+"="+s.Result)
	}
	assert.Equal(t, []string{"deploy=Succeeded", "broken=Failed", "cleanup=Succeeded"}, names)
	assert.Equal(t, "Skipped", res.Stages[2].Result)
	assert.Contains(t, out.String(), "skipped by the local runner: not needed here")
	assert.Equal(t, "Failed", res.Stages[1].Result, "the Deploy stage ran: its condition read the Train stage's outputs")
	for _, s := range []string{"dapi-group-secret", "minted-dapi-group-secret", "sp-secret-value"} {
		assert.NotContains(t, out.String(), s)
	}
	assert.Contains(t, out.String(), "token is *** ***")
}

func TestUnsupportedYAMLIsAnError(t *testing.T) {
	cases := map[string]string{
		"script step":  "stages:\n- stage: S\n  jobs:\n  - job: J\n    steps:\n    - script: echo hi\n",
		"unknown key":  "stages:\n- stage: S\n  jobs:\n  - job: J\n    bogus: 1\n    steps: []\n",
		"template":     "stages:\n- template: stages.yml\n",
		"compile expr": "variables:\n  x: ${{ parameters.y }}\nstages: []\n",
		"matrix":       "stages:\n- stage: S\n  jobs:\n  - job: J\n    strategy:\n      matrix: {}\n    steps: []\n",
		"no version":   "stages:\n- stage: S\n  jobs:\n  - job: J\n    steps:\n    - task: DatabricksTrain\n",
		"no stages":    "jobs:\n- job: J\n",
		"var template": "variables:\n- template: vars.yml\nstages:\n- stage: S\n  jobs: []\n",
	}
	for name, text := range cases {
		_, err := Parse([]byte(text))
		assert.Error(t, err, name)
	}
}

func TestExpressions(t *testing.T) {
	ctx := exprContext{
		variables:         map[string]string{"Env": "prod"},
		dependencies:      map[string]any{"A": map[string]any{"result": "Succeeded", "outputs": map[string]any{"s.v": "1"}}},
		dependencyResults: []string{"Succeeded"},
	}
	for src, want := range map[string]any{
		"eq(variables['env'], 'PROD')":                   true,
		"ne(variables.Env, 'prod')":                      false,
		"and(succeeded(), not(failed()))":                true,
		"or(false, in(variables['env'], 'dev', 'prod'))": true,
		"dependencies.A.outputs['s.v']":                  "1",
		"eq(dependencies.A.result, 'Succeeded')":         true,
		"coalesce(variables['missing'], 'x')":            "x",
		"startsWith('refs/heads/main', 'refs/heads/')":   true,
		"eq('it''s', 'IT''S')":                           true,
	} {
		got, err := evalExpression(src, ctx)
		require.NoError(t, err, src)
		assert.Equal(t, want, got, src)
	}
	for _, bad := range []string{"succeeded('A')", "unknownFn()", "eq(1)", "variables[", "'open"} {
		_, err := evalExpression(bad, ctx)
		assert.Error(t, err, bad)
	}
	ok, err := evalCondition("", exprContext{dependencyResults: []string{"Failed"}})
	require.NoError(t, err)
	assert.False(t, ok)
	assert.True(t, strings.HasPrefix(expand("$(a)-$(B)", map[string]GroupVariable{"A": {Value: "1"}, "b": {Value: "2"}}, nil), "1-2"))
	assert.Equal(t, "run 20261125.1 of $(Undefined.Name)", expand("run $(Build.BuildNumber) of $(Undefined.Name)", nil, map[string]string{"BUILD_BUILDNUMBER": "20261125.1"}),
		"predefined variables expand as the agent expands them; unknown macros stay")
}
