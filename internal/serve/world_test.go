package serve_test

import (
	"context"
	"encoding/base64"
	"maps"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/logger"
	"github.com/databricks/databricks-sdk-go/service/files"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/stretchr/testify/require"

	"github.com/brickops/brickops/internal/agent"
	"github.com/brickops/brickops/internal/agenttest"
	"github.com/brickops/brickops/internal/cli"
	"github.com/brickops/brickops/internal/emulator"
	"github.com/brickops/brickops/internal/serve"
	"github.com/brickops/brickops/tasks"
)

func TestMain(m *testing.M) {
	// The SDK logs INFO lines to stderr by default; keep test output clean.
	logger.DefaultLogger = &logger.SimpleLogger{Level: logger.LevelWarn}
	os.Exit(m.Run())
}

// world is an emulated workspace with the registered model "churn"
// (versions 1 to 3) and the ModelServe task wired to it.
type world struct {
	t   *testing.T
	ws  *emulator.Workspace
	c   *client.DatabricksClient
	api *serving.ServingEndpointsAPI
}

const endpoint = "churn-serving"

// smallBody is a valid smoke test request with two rows.
const smallBody = `{"dataframe_split": {"columns": ["tenure", "charges"], "data": [[12, 70.5], [3, 20.1]]}}`

func newWorld(t *testing.T, opts emulator.Options) *world {
	t.Helper()
	if opts.ServingReady == 0 {
		opts.ServingReady = 300 * time.Millisecond
	}
	if opts.ServingUpdate == 0 {
		opts.ServingUpdate = 300 * time.Millisecond
	}
	opts.RegistrationDelay = time.Millisecond
	ws := emulator.Start(t, opts)
	c, err := client.New(ws.SDKConfig())
	require.NoError(t, err)
	w := &world{t: t, ws: ws, c: c, api: serving.NewServingEndpoints(c)}
	w.registerModel("churn", 3, nil)
	ws.ResetRequests()
	return w
}

// registerModel registers versions 1..n of a workspace registry model from
// files put on DBFS.
func (w *world) registerModel(name string, n int, extra map[string]string) {
	w.t.Helper()
	ctx := context.Background()
	dbfs := files.NewDbfs(w.c)
	fileSet := map[string]string{"MLmodel": "artifact_path: model\nflavors:\n  python_function: {}\n", "requirements.txt": "mlflow\n"}
	maps.Copy(fileSet, extra)
	for f, content := range fileSet {
		require.NoError(w.t, dbfs.Put(ctx, files.Put{Path: "dbfs:/models/" + name + "/" + f, Contents: base64.StdEncoding.EncodeToString([]byte(content)), Overwrite: true}))
	}
	reg := ml.NewModelRegistry(w.c)
	_, err := reg.CreateModel(ctx, ml.CreateModelRequest{Name: name})
	require.NoError(w.t, err)
	for range n {
		_, err := reg.CreateModelVersion(ctx, ml.CreateModelVersionRequest{Name: name, Source: "dbfs:/models/" + name})
		require.NoError(w.t, err)
	}
}

// registry is the brickops registry with ModelServe connected to the
// emulator through the variable-group style variables the agent passes
// (databricks-host, secret databricks-token), standing in for internal/auth.
func (w *world) registry() cli.Registry {
	def, err := tasks.Definition("ModelServe")
	require.NoError(w.t, err)
	deps := serve.Deps{Connect: func(env agent.Env, in *agent.Inputs, log *agent.Log) serve.Connector {
		host, _, _ := env.Variable("databricks-host")
		token, _, _ := env.Variable("databricks-token")
		return func(context.Context) (*client.DatabricksClient, error) {
			return client.New(&config.Config{Host: host, Token: token, AuthType: "pat", Loaders: []config.Loader{emulator.NoEnvLoader{}}})
		}
	}}
	return cli.Registry{"ModelServe": cli.Task{Definition: def, Run: serve.Task(deps)}}
}

// taskRun is a ModelServe run with sensible inputs, overridden by inputs.
func (w *world) taskRun(inputs map[string]string) agenttest.Run {
	in := map[string]string{
		"endpointName":     endpoint,
		"modelName":        "churn",
		"modelVersion":     "1",
		"smokeTestPayload": smallBody,
	}
	maps.Copy(in, inputs)
	return agenttest.Run{
		Task:      "ModelServe",
		Inputs:    in,
		Variables: map[string]string{"databricks-host": w.ws.URL()},
		Secrets:   map[string]string{"databricks-token": w.ws.Token},
	}
}

func (w *world) run(inputs map[string]string) *agenttest.Result {
	w.t.Helper()
	return w.taskRun(inputs).InProcess(w.t, w.registry())
}

func (w *world) runContext(ctx context.Context, inputs map[string]string) *agenttest.Result {
	w.t.Helper()
	return w.taskRun(inputs).InProcessContext(ctx, w.t, w.registry())
}

// endpoint reads the endpoint as the API answers it.
func (w *world) endpoint() *serving.ServingEndpointDetailed {
	w.t.Helper()
	ep, err := w.api.Get(context.Background(), serving.GetServingEndpointRequest{Name: endpoint})
	require.NoError(w.t, err)
	return ep
}

// traffic is the endpoint's served entities with their traffic.
func (w *world) traffic() map[string]int {
	w.t.Helper()
	out := map[string]int{}
	ep := w.endpoint()
	require.NotNil(w.t, ep.Config, "the endpoint serves no config")
	for _, r := range ep.Config.TrafficConfig.Routes {
		out[r.ServedModelName+r.ServedEntityName] = r.TrafficPercentage
	}
	return out
}

// waitSettled waits until the endpoint has no update in progress.
func (w *world) waitSettled() {
	w.t.Helper()
	require.Eventually(w.t, func() bool {
		ep := w.endpoint()
		return ep.State.ConfigUpdate != serving.EndpointStateConfigUpdateInProgress
	}, 20*time.Second, 50*time.Millisecond)
}

// serveVersion deploys a version with the task and checks it worked.
func (w *world) serveVersion(version int, inputs map[string]string) {
	w.t.Helper()
	in := map[string]string{"modelVersion": strconv.Itoa(version)}
	maps.Copy(in, inputs)
	res := w.run(in)
	require.Equal(w.t, agent.Succeeded, res.Result, "errors: %v\n%s", res.Errors, res.Stdout)
}

// configWrites are the requests that create or change an endpoint config.
func (w *world) configWrites() []emulator.Request {
	var out []emulator.Request
	for _, r := range w.ws.Requests() {
		if r.IsWrite() && r.Path != "/serving-endpoints/"+endpoint+"/invocations" {
			out = append(out, r)
		}
	}
	return out
}
