package idempotency_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/brickops/brickops/internal/agent"
	"github.com/brickops/brickops/internal/idempotency"
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

func token(env agent.Env) (string, string) {
	var out bytes.Buffer
	tok := idempotency.Token(env, agent.NewLog(&out, agent.LogOptions{}), "train")
	return tok, out.String()
}

func TestToken(t *testing.T) {
	first, out := token(pipelineEnv())
	assert.Regexp(t, `^brickops-train-[0-9a-f]{40}$`, first)
	assert.LessOrEqual(t, len(first), 64)
	assert.Equal(t, "##vso[task.settaskvariable variable=brickops.try;]1\n", out, "the try is recorded for a retry")

	again, _ := token(pipelineEnv())
	assert.Equal(t, first, again, "a rerun of the same try")

	// A retry by retryCountOnTaskFailure sees the task variable of the try before.
	retry, out := token(pipelineEnv("VSTS_TASKVARIABLE_BRICKOPS_TRY", "1"))
	assert.NotEqual(t, first, retry)
	assert.Contains(t, out, "]2\n")
	third, _ := token(pipelineEnv("VSTS_TASKVARIABLE_BRICKOPS_TRY", "2"))
	assert.NotEqual(t, retry, third)

	for _, kv := range [][2]string{
		{"SYSTEM_JOBATTEMPT", "2"}, {"SYSTEM_STEPNAME", "score"}, {"BUILD_BUILDID", "1235"}, {"SYSTEM_JOBID", "x"},
	} {
		other, _ := token(pipelineEnv(kv[0], kv[1]))
		assert.NotEqual(t, first, other, kv[0])
	}

	var out2 bytes.Buffer
	assert.Empty(t, idempotency.Token(agent.Env{}, agent.NewLog(&out2, agent.LogOptions{}), "train"), "outside a pipeline")
	assert.Empty(t, out2.String())
}
