package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/modeluri"
	"github.com/brickferry/brickferry/internal/registry"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

func TestLineageTags(t *testing.T) {
	build := agent.System{CollectionURI: "https://dev.azure.com/org/", Project: "mlops", BuildID: "1234", SourceVersion: "abc", DefinitionName: "churn-ci"}
	kv := func(k, v string) agent.KeyValue { return agent.KeyValue{Key: k, Value: v} }
	cases := []struct {
		name  string
		sys   agent.System
		first []agent.KeyValue
		last  []agent.KeyValue
		want  []agent.KeyValue
	}{
		{
			name: "register: pipeline run, then the model's run and the action",
			sys:  build,
			last: []agent.KeyValue{kv(registry.TagModelRunID, "r1"), kv(registry.TagAction, "register")},
			want: []agent.KeyValue{
				kv("brickferry_build_id", "1234"), kv("brickferry_run_url", "https://dev.azure.com/org/mlops/_build/results?buildId=1234"),
				kv("brickferry_commit", "abc"), kv("brickferry_pipeline", "churn-ci"),
				kv("brickferry_model_run_id", "r1"), kv("brickferry_action", "register"),
			},
		},
		{
			name:  "copy: the source first; empty values left out",
			sys:   agent.System{ReleaseID: "7", ReleaseURI: "vstfs:///ReleaseManagement/Release/7"},
			first: []agent.KeyValue{kv(registry.TagSourceWorkspace, "https://adb-1.azuredatabricks.net"), kv(registry.TagSourceRunID, ""), kv(registry.TagAction, "copy")},
			want: []agent.KeyValue{
				kv("brickferry_source_workspace", "https://adb-1.azuredatabricks.net"), kv("brickferry_action", "copy"),
				kv("brickferry_build_id", "release-7"), kv("brickferry_run_url", "vstfs:///ReleaseManagement/Release/7"),
			},
		},
		{name: "outside a pipeline: nothing", sys: agent.System{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, registry.LineageOf(c.sys).Tags(c.first, c.last...))
		})
	}
}

func TestVersionURL(t *testing.T) {
	r := registry.New("https://adb-1.2.azuredatabricks.net/", nil)
	cases := []struct{ model, want string }{
		{"churn", "https://adb-1.2.azuredatabricks.net/ml/models/churn/versions/3"},
		{"churn model", "https://adb-1.2.azuredatabricks.net/ml/models/churn%20model/versions/3"},
		{"main.ml.churn", "https://adb-1.2.azuredatabricks.net/explore/data/models/main/ml/churn/version/3"},
	}
	for _, c := range cases {
		t.Run(c.model, func(t *testing.T) {
			name, err := modeluri.ParseName(c.model)
			require.NoError(t, err)
			assert.Equal(t, c.want, r.VersionURL(name, 3))
		})
	}
}

func TestUCTagKeys(t *testing.T) {
	assert.NoError(t, registry.CheckUCTagKey("brickferry_build_id"))
	for _, key := range []string{"owner.name", "a,b", "ml-team", "k=v", "a/b", "ns:key"} {
		assert.Error(t, registry.CheckUCTagKey(key), key)
	}
	got := registry.ToUCTags([]agent.KeyValue{{Key: "mlflow.source.git-commit", Value: "abc"}, {Key: "a,b=c/d:e", Value: "x"}, {Key: "team", Value: "churn"}})
	assert.Equal(t, []registry.UCTag{{Key: "mlflow_source_git_commit", Value: "abc"}, {Key: "a_b_c_d_e", Value: "x"}, {Key: "team", Value: "churn"}}, got)
}

// quietLog is a registry.Logger that keeps what it is told.
type quietLog struct{ lines []string }

func (l *quietLog) Info(format string, args ...any) {
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}
func (l *quietLog) Warning(format string, args ...any) {
	l.lines = append(l.lines, "warning: "+fmt.Sprintf(format, args...))
}

// TestEnsureModelAfterLostAnswer: the registered model's create is carried
// out but its answer is lost (500 after commit); the create sent again is
// refused because the model exists, which EnsureModel takes as done. The
// workspace registry refuses with 400 RESOURCE_ALREADY_EXISTS, Unity Catalog
// with 409 ALREADY_EXISTS: both mean "exists".
func TestEnsureModelAfterLostAnswer(t *testing.T) {
	cases := []struct{ model, route, code string }{
		{"churn", "/api/2.0/mlflow/registered-models/create", "RESOURCE_ALREADY_EXISTS"},
		{"main.ml.churn", "/api/2.1/unity-catalog/models", "ALREADY_EXISTS"},
	}
	for _, c := range cases {
		t.Run(c.code, func(t *testing.T) {
			ws := emulator.Start(t, emulator.Options{})
			ws.SetFaults(emulator.FaultPlan{Seed: 1, Rules: []emulator.FaultRule{
				{Prefix: c.route, Method: http.MethodPost, Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault500AfterCommit}, Limit: 1},
			}})
			name, err := modeluri.ParseName(c.model)
			require.NoError(t, err)
			r := registry.New(ws.URL(), ws.Client(t))
			log := &quietLog{}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			created, err := r.EnsureModel(ctx, name, log)
			require.NoError(t, err)
			assert.False(t, created, "made by the lost create: whose it was is unknown")
			creates := ws.RequestsTo(http.MethodPost, c.route)
			require.Len(t, creates, 2, "the create, then the create sent again")
			assert.Equal(t, emulator.Fault500AfterCommit, creates[0].Fault)
			assert.Equal(t, map[string]int{"RESOURCE_ALREADY_EXISTS": http.StatusBadRequest, "ALREADY_EXISTS": http.StatusConflict}[c.code], creates[1].Status)
		})
	}
}
