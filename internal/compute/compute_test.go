package compute_test

import (
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/compute"
	"github.com/brickferry/brickferry/tasks"
)

var def = agent.Definition{Name: "T", Inputs: []agent.InputDef{
	{Name: "compute", Type: "pickList", DefaultValue: "newCluster", Options: map[string]string{"newCluster": "", "existingCluster": "", "serverless": ""}},
	{Name: "sparkVersion", DefaultValue: "15.4.x-cpu-ml-scala2.12", Required: true, VisibleRule: "compute = newCluster"},
	{Name: "nodeType", DefaultValue: "Standard_DS3_v2"}, {Name: "workers"}, {Name: "autoscale"},
	{Name: "singleNode", Type: "boolean"}, {Name: "instancePoolId"}, {Name: "driverInstancePoolId"}, {Name: "policyId"},
	{Name: "sparkConf", Type: "multiLine"}, {Name: "customTags", Type: "multiLine"},
	{Name: "clusterId", Required: true, VisibleRule: "compute = existingCluster"},
}}

func read(kv ...string) (compute.Spec, error) {
	env := agent.Env{}
	for i := 0; i+1 < len(kv); i += 2 {
		env["INPUT_"+agent.VariableKey(kv[i])] = kv[i+1]
	}
	in := def.InputsFrom(env)
	s := compute.FromInputs(in, -1)
	return s, in.Err()
}

func TestSpecs(t *testing.T) {
	s, err := read("workers", "3", "sparkConf", "a=b", "policyId", "E0123456789ABCDEF")
	require.NoError(t, err)
	var task jobs.Task
	clusters := s.ApplyToJobTask(&task, "c")
	require.Len(t, clusters, 1)
	assert.Equal(t, "c", task.JobClusterKey)
	nc := clusters[0].NewCluster
	assert.Equal(t, 3, nc.NumWorkers)
	assert.Equal(t, "E0123456789ABCDEF", nc.PolicyId)
	assert.Equal(t, map[string]string{"a": "b"}, nc.SparkConf)

	s, err = read("autoscale", "2 - 2")
	require.NoError(t, err)
	var st jobs.SubmitTask
	s.ApplyToSubmitTask(&st)
	require.NotNil(t, st.NewCluster.Autoscale)
	assert.Equal(t, 2, st.NewCluster.Autoscale.MaxWorkers)

	s, err = read("singleNode", "true", "workers", "0")
	require.NoError(t, err)
	assert.Equal(t, "new job cluster 15.4.x-cpu-ml-scala2.12, Standard_DS3_v2, single node", s.String())

	s, err = read("compute", "existingCluster", "clusterId", "0101-120000-abcdefgh")
	require.NoError(t, err)
	task = jobs.Task{}
	assert.Nil(t, s.ApplyToJobTask(&task, "c"))
	assert.Equal(t, "0101-120000-abcdefgh", task.ExistingClusterId)

	s, err = read("compute", "serverless", "workers", "x")
	require.NoError(t, err, "hidden inputs are not read")
	st = jobs.SubmitTask{}
	s.ApplyToSubmitTask(&st)
	assert.Nil(t, st.NewCluster)
	assert.Empty(t, st.ExistingClusterId)
}

func TestBadSpecs(t *testing.T) {
	for _, tc := range [][]string{
		{"workers", "", "!problem", "is required: give a number of workers"},
		{"workers", "-1", "!problem", "not a number of workers"},
		{"autoscale", "0-4", "!problem", "not a range of workers"},
		{"workers", "2", "autoscale", "2-4", "!problem", "cannot be combined"},
		{"singleNode", "true", "workers", "2", "!problem", "has no workers"},
		{"workers", "1", "nodeType", "", "!problem", "is required unless the nodes come from an instance pool"},
		{"workers", "1", "driverInstancePoolId", "0101-pool-abc", "!problem", "needs an instance pool"},
		{"workers", "1", "sparkVersion", "latest", "!problem", "not a Databricks Runtime version key"},
		{"compute", "existingCluster", "clusterId", "a b", "!problem", "is not a cluster id"},
	} {
		i := len(tc) - 2
		_, err := read(tc[:i]...)
		if assert.Error(t, err, strings.Join(tc, " ")) {
			assert.Contains(t, err.Error(), tc[i+1])
		}
	}
}

// TestTaskJSONs: every task that reads its compute with FromInputs declares
// the compute inputs the same way, so a person sees the same fields with
// the same help in each task (only when they are shown may differ).
func TestTaskJSONs(t *testing.T) {
	var first *agent.Definition
	for _, name := range []string{"DatabricksTrain", "BatchScore"} {
		def, err := tasks.Definition(name)
		require.NoError(t, err)
		if first == nil {
			first = &def
			continue
		}
		for _, input := range compute.InputNames {
			want, ok := first.Input(input)
			require.True(t, ok, "%s declares no input %s", first.Name, input)
			got, ok := def.Input(input)
			require.True(t, ok, "%s declares no input %s", def.Name, input)
			want.VisibleRule, got.VisibleRule = "", ""
			assert.Equal(t, want, got, "input %s of %s and %s", input, first.Name, def.Name)
		}
	}
}
