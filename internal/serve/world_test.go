package serve_test

import (
	"context"
	"encoding/base64"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/files"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/cli"
	"github.com/brickferry/brickferry/internal/testworld"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

func TestMain(m *testing.M) { testworld.Main(m) }

// world is an emulated https workspace with the registered model "churn"
// (versions 1 to 3). Task runs are the built brickferry executable, started as
// the agent starts it and connected with the token method
// (agenttest.Run.WithToken), on the real clock with short
// serving timings.
type world struct {
	t      *testing.T
	ws     *emulator.Workspace
	caFile string // the CA of ws's certificate, for Agent.CAInfo
	c      *client.DatabricksClient
	api    *serving.ServingEndpointsAPI
	// inProcess runs the task in this process instead (production registry
	// and connection), so that go test -race sees the task's code.
	inProcess bool
	// registry, when set, runs the task in this process from it (a task
	// with injected dependencies, such as a simulated clock).
	registry cli.Registry
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
	ws, caFile := emulator.StartHTTPS(t, opts)
	c, err := client.New(ws.SDKConfig())
	require.NoError(t, err)
	w := &world{t: t, ws: ws, caFile: caFile, c: c, api: serving.NewServingEndpoints(c)}
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

// taskRun is a ModelServe run with sensible inputs, overridden by inputs.
func (w *world) taskRun(inputs map[string]string) agenttest.Run {
	in := map[string]string{
		"endpointName":     endpoint,
		"modelName":        "churn",
		"modelVersion":     "1",
		"smokeTestPayload": smallBody,
	}
	maps.Copy(in, inputs)
	return agenttest.Run{Task: "ModelServe", Inputs: in, Env: map[string]string{"AGENT_CAINFO": w.caFile}}.WithToken(w.ws.URL(), w.ws.Token)
}

// run runs ModelServe to the end and checks it reported one result.
func (w *world) run(inputs map[string]string) *agenttest.Result {
	w.t.Helper()
	var res *agenttest.Result
	switch {
	case w.registry != nil:
		res = w.taskRun(inputs).InProcess(w.t, w.registry)
	case w.inProcess:
		res = w.taskRun(inputs).InProcess(w.t, cli.Tasks())
	default:
		res = w.taskRun(inputs).Exec(w.t, agenttest.Executable(w.t))
		require.Equal(w.t, 0, res.ExitCode, "under the agent the executable exits 0: %s", res.Stderr)
	}
	require.Equal(w.t, 1, res.Completions, res.Stdout)
	return res
}

// start starts ModelServe with the built executable, for a test that acts
// while it runs.
func (w *world) start(inputs map[string]string) *agenttest.Process {
	w.t.Helper()
	return w.taskRun(inputs).Start(w.t, agenttest.Executable(w.t))
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

// registerUCModel registers version 1 of a Unity Catalog model the way
// MLflow's Unity Catalog client does (create, upload its files to the
// version's storage location with the temporary read-write SAS, finalize).
func (w *world) registerUCModel(fullName string, files map[string]string) {
	w.t.Helper()
	ctx := context.Background()
	parts := strings.Split(fullName, ".")
	require.Len(w.t, parts, 3)
	require.NoError(w.t, w.c.Do(ctx, http.MethodPost, "/api/2.1/unity-catalog/models", nil, nil,
		map[string]any{"catalog_name": parts[0], "schema_name": parts[1], "name": parts[2]}, nil))
	var created emulator.UCModelVersionResponse
	require.NoError(w.t, w.c.Do(ctx, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/create", nil, nil,
		emulator.CreateUCModelVersionRequest{Name: fullName, Source: "dbfs:/models/" + fullName}, &created))
	var creds emulator.GenerateTemporaryUCCredentialsResponse
	require.NoError(w.t, w.c.Do(ctx, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/generate-temporary-credentials", nil, nil,
		emulator.GenerateTemporaryUCCredentialsRequest{Name: fullName, Version: created.ModelVersion.Version, Operation: "MODEL_VERSION_OPERATION_READ_WRITE"}, &creds))
	all := map[string]string{"MLmodel": "artifact_path: model\nflavors:\n  python_function: {}\n"}
	maps.Copy(all, files)
	for name, content := range all {
		bc, err := blockblob.NewClientWithNoCredential(created.ModelVersion.StorageLocation+"/"+name+"?"+creds.Credentials.AzureUserDelegationSAS.SASToken, nil)
		require.NoError(w.t, err)
		_, err = bc.UploadBuffer(ctx, []byte(content), nil)
		require.NoError(w.t, err)
	}
	require.NoError(w.t, w.c.Do(ctx, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/finalize", nil, nil,
		emulator.FinalizeUCModelVersionRequest{Name: fullName, Version: created.ModelVersion.Version}, nil))
}
