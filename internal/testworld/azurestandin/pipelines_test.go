package azurestandin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/azurestandin"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/pipeline"
)

// devopsCall sends method path (under the organization) with body as the
// job, or with token when given, and returns the status and decoded JSON.
func devopsCall(t *testing.T, az *azurestandin.Azure, method, path, body, token string) (int, map[string]any) {
	t.Helper()
	tr := az.CA.Transport()
	tr.Proxy, tr.DialContext = nil, az.DialContext
	req, err := http.NewRequestWithContext(ctx(t), method, az.CollectionURI+path, strings.NewReader(body))
	require.NoError(t, err)
	if token == "" {
		token = az.JobToken
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if json.Unmarshal(raw, &out) != nil {
		out = map[string]any{"text": string(raw)}
	}
	return resp.StatusCode, out
}

// TestPipelinesAreStrict: what the Azure DevOps stand-in refuses of the
// build and pipelines APIs, with Azure DevOps' error body.
func TestPipelinesAreStrict(t *testing.T) {
	repo := t.TempDir()
	yml := "stages:\n- stage: Train\n  jobs:\n  - job: Train\n    steps:\n    - task: MLflowPromote@1\n"
	require.NoError(t, os.WriteFile(filepath.Join(repo, "p.yml"), []byte(yml), 0o644))
	ca, err := emulator.NewCA()
	require.NoError(t, err)
	az := azurestandin.Start(t, azurestandin.Options{CA: ca, Pipelines: azurestandin.PipelineOptions{Repositories: map[string]string{"churn": repo}}})
	p := az.ProjectID + "/_apis/"
	def := `{"name":"x","path":"\\f","process":{"type":2,"yamlFilename":"p.yml"},"repository":{"name":"churn","type":"TfsGit"}}`
	status, created := devopsCall(t, az, http.MethodPost, p+"build/definitions", def, "")
	require.Equal(t, http.StatusOK, status, created)
	assert.Equal(t, `\f`, created["path"])

	cases := []struct {
		name, method, path, body, token string
		status                          int
		typeKey, message                string // message: a part of it
	}{
		{"another token", http.MethodGet, p + "pipelines/1", "", "not-the-job-token", http.StatusUnauthorized, "UnauthorizedRequestException", "TF400813"},
		{"unknown pipeline", http.MethodGet, p + "pipelines/99", "", "", http.StatusNotFound, "DefinitionNotFoundException", "ID 99"},
		{"run of an unknown pipeline", http.MethodPost, p + "pipelines/99/runs", "{}", "", http.StatusNotFound, "PipelineNotFoundException", "ID 99"},
		{"unknown build", http.MethodGet, p + "build/builds/99/timeline", "", "", http.StatusNotFound, "BuildNotFoundException", "build 99"},
		{"a variable not settable at queue time", http.MethodPost, p + "pipelines/1/runs", `{"variables":{"devModel":{"value":"x"}}}`, "", http.StatusBadRequest, "PipelineValidationException", "(devModel)"},
		{"a branch the repository lacks", http.MethodPost, p + "pipelines/1/runs", `{"resources":{"repositories":{"self":{"refName":"refs/heads/other"}}}}`, "", http.StatusBadRequest, "PipelineValidationException", "refs/heads/other"},
		{"the same name in the same folder", http.MethodPost, p + "build/definitions", def, "", http.StatusConflict, "DefinitionExistsException", "already exists"},
		{"a stale revision", http.MethodPut, p + "build/definitions/1", strings.Replace(def, `"name"`, `"revision":0,"name"`, 1), "", http.StatusConflict, "DefinitionRevisionMismatchException", "revision 0"},
		{"an unknown repository", http.MethodPost, p + "build/definitions", strings.Replace(def, `"churn"`, `"other"`, 1), "", http.StatusNotFound, "GitRepositoryNotFoundException", "TF401019"},
		{"a designer pipeline", http.MethodPost, p + "build/definitions", strings.Replace(def, `"type":2`, `"type":1`, 1), "", http.StatusBadRequest, "DefinitionValidationException", "YAML"},
		{"a YAML file the repository lacks", http.MethodPost, p + "pipelines/2/runs", "{}", "", http.StatusBadRequest, "PipelineValidationException", "gone.yml not found"},
	}
	// Pipeline 2 runs a file that is not in the repository.
	status, _ = devopsCall(t, az, http.MethodPost, p+"build/definitions", strings.Replace(strings.Replace(def, `"x"`, `"y"`, 1), "p.yml", "gone.yml", 1), "")
	require.Equal(t, http.StatusOK, status)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := devopsCall(t, az, c.method, c.path, c.body, c.token)
			assert.Equal(t, c.status, status, body)
			assert.Equal(t, c.typeKey, body["typeKey"], body)
			assert.Contains(t, body["message"], c.message)
		})
	}
}

// TestPipelineRunIsRecorded: a queued run goes to the agent hook, and what
// it returns is served as the agent and server record it: Task records
// with the step's result, the step's log with the processed commands
// traced under system.debug and secrets masked, and the summary as a
// Distributedtask.Core.Summary attachment of the step's record.
func TestPipelineRunIsRecorded(t *testing.T) {
	repo := t.TempDir()
	yml := "stages:\n- stage: Train\n  jobs:\n  - job: Train\n    steps:\n    - task: MLflowPromote@1\n      name: register\n      displayName: Register\n"
	require.NoError(t, os.WriteFile(filepath.Join(repo, "p.yml"), []byte(yml), 0o644))
	summary := filepath.Join(t.TempDir(), "Register.md")
	require.NoError(t, os.WriteFile(summary, []byte("# Registered with s3cr3t-value\n"), 0o644))
	got := make(chan azurestandin.AgentJob, 1)
	agentRun := func(_ context.Context, _ *azurestandin.Azure, job azurestandin.AgentJob) (azurestandin.AgentResult, error) {
		got <- job
		step := &pipeline.StepResult{Name: "register", DisplayName: "Register", Task: "MLflowPromote", Result: "Succeeded",
			Stdout: "token is s3cr3t-value\n##vso[task.setvariable variable=modelVersion;isOutput=true]3\n##vso[task.debug]quiet\n", Summaries: []string{summary}}
		res := &pipeline.Result{Result: "Succeeded", Stages: []*pipeline.StageResult{{Name: "__default", Result: "Succeeded",
			Jobs: []*pipeline.JobResult{{Name: "Job", Result: "Succeeded", Steps: []*pipeline.StepResult{step}}}}}}
		return azurestandin.AgentResult{Result: res, Secrets: []string{"s3cr3t-value"}}, nil
	}
	ca, err := emulator.NewCA()
	require.NoError(t, err)
	az := azurestandin.Start(t, azurestandin.Options{CA: ca, Pipelines: azurestandin.PipelineOptions{Repositories: map[string]string{"churn": repo}, Agent: agentRun}})
	p := az.ProjectID + "/_apis/"
	status, _ := devopsCall(t, az, http.MethodPost, p+"build/definitions", `{"name":"x","process":{"type":2,"yamlFilename":"/p.yml"},"repository":{"id":"`+az.RepositoryID("churn")+`","type":"TfsGit"}}`, "")
	require.Equal(t, http.StatusOK, status)
	status, run := devopsCall(t, az, http.MethodPost, p+"pipelines/1/runs", `{"variables":{"system.debug":{"value":"true"}}}`, "")
	require.Equal(t, http.StatusOK, status, run)
	assert.Equal(t, "inProgress", run["state"])
	job := <-got
	assert.Equal(t, map[string]string{"system.debug": "true"}, job.Variables)
	assert.Equal(t, repo, job.Sources)
	require.Eventually(t, func() bool {
		_, run = devopsCall(t, az, http.MethodGet, p+"pipelines/1/runs/1", "", "")
		return run["state"] == "completed"
	}, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, "succeeded", run["result"])

	_, timeline := devopsCall(t, az, http.MethodGet, p+"build/builds/1/timeline", "", "")
	records, _ := timeline["records"].([]any)
	require.Len(t, records, 3, "stage, job, task")
	task, _ := records[2].(map[string]any)
	assert.Equal(t, []any{"Task", "Register", "succeeded"}, []any{task["type"], task["name"], task["result"]})
	logRef, _ := task["log"].(map[string]any)
	_, lines := devopsCall(t, az, http.MethodGet, p+"build/builds/1/logs/"+jsonNumber(logRef["id"]), "", "")
	var text []string
	for _, l := range lines["value"].([]any) {
		_, after, _ := strings.Cut(l.(string), " ") // the time first
		text = append(text, after)
	}
	assert.Equal(t, []string{"##[section]Starting: Register", "token is ***",
		"##[debug]Processed: ##vso[task.setvariable variable=modelVersion;isOutput=true]3", "##[section]Finishing: Register"}, text)

	_, list := devopsCall(t, az, http.MethodGet, p+"build/builds/1/attachments/"+azurestandin.SummaryAttachmentType, "", "")
	items, _ := list["value"].([]any)
	require.Len(t, items, 1)
	href := items[0].(map[string]any)["_links"].(map[string]any)["self"].(map[string]any)["href"].(string)
	assert.Contains(t, href, "/"+task["id"].(string)+"/attachments/"+azurestandin.SummaryAttachmentType+"/Register.md", "the link names the step's record")
	status, content := devopsCall(t, az, http.MethodGet, strings.TrimPrefix(href, az.CollectionURI), "", "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "# Registered with ***\n", content["text"])
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
