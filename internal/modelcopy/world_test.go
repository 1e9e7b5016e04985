package modelcopy_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/httpclient"
	"github.com/brickferry/brickferry/internal/modelcopy"
	"github.com/brickferry/brickferry/internal/modeluri"
	"github.com/brickferry/brickferry/internal/registry"
	"github.com/brickferry/brickferry/internal/testworld/artifactstest"
	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/tasks"
)

func TestMain(m *testing.M) {
	auth.QuietSDKLogger()
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// definition is MLflowPromote's task.json, which declares the copy inputs.
func definition(t testing.TB) agent.Definition {
	t.Helper()
	def, err := tasks.Definition("MLflowPromote")
	require.NoError(t, err)
	return def
}

type world struct {
	blob       *azurite.Server
	acct       *emulator.BlobAccount
	dev, prd   *emulator.Workspace
	devC, prdC *client.DatabricksClient
	blobHost   string
}

func newWorld(t testing.TB) *world {
	return newWorldWith(t, func(*emulator.Options) {}, func(*emulator.Options) {})
}

// newWorldWith is newWorld with the two workspaces' options changed by dev
// and prd (the type of signed URL they hand out, say).
func newWorldWith(t testing.TB, dev, prd func(*emulator.Options)) *world {
	t.Helper()
	az := azurite.Start(t)
	acct := &emulator.BlobAccount{Endpoint: az.BlobEndpoint, AccountName: az.AccountName, AccountKey: az.AccountKey}
	// Two files a page: the source version's listing is read page by page.
	devOpts := emulator.Options{Name: "dev", Blob: acct, RegistrationDelay: 100 * time.Millisecond, ArtifactListPageSize: 2}
	prdOpts := emulator.Options{Name: "prod", Blob: acct, RegistrationDelay: 100 * time.Millisecond}
	dev(&devOpts)
	prd(&prdOpts)
	w := &world{blob: az, acct: acct, dev: emulator.Start(t, devOpts), prd: emulator.Start(t, prdOpts)}
	var err error
	w.devC, err = artifactstest.Client(w.dev)
	require.NoError(t, err)
	w.prdC, err = artifactstest.Client(w.prd)
	require.NoError(t, err)
	w.blobHost = strings.TrimPrefix(strings.SplitN(strings.TrimPrefix(az.BlobEndpoint, "http://"), "/", 2)[0], "")
	return w
}

// retryingClient is a client of ws arranged as the task's (auth's Resolve):
// databricks-sdk-go's own retry loop turned down to one try (its first wait
// is at least 1 s), and below it the retrying transport with the policy auth
// wires (httpclient.Retry, converge.Idempotent: 429 and 503 are sent again,
// other failures only when the request is idempotent). Its waits are
// milliseconds instead of 250 ms doubling to 8 s, so a test of API faults
// does not wait on real backoff: the SDK's own retries, which the other
// clients of these tests use, wait 1 s and more per fault.
func retryingClient(t testing.TB, ws *emulator.Workspace) *client.DatabricksClient {
	t.Helper()
	cfg := ws.SDKConfig()
	cfg.RateLimitPerSecond = 1000
	cfg.RetryTimeoutSeconds = 1
	cfg.HTTPTransport = httpclient.Retrying(http.DefaultTransport, httpclient.Retry{
		Idempotent: converge.Idempotent, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond,
	})
	c, err := client.New(cfg)
	require.NoError(t, err)
	return c
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var sourceParams = map[string]string{"max_depth": "6", "eta": "0.3"}
var sourceMetrics = map[string]float64{"auc": 0.91, "logloss": 0.27}

// registerSource seeds a run with files in dev and registers it as a
// workspace registry version of name.
func (w *world) registerSource(t testing.TB, ctx context.Context, name string, files []artifactstest.Source) (runID string, version int) {
	t.Helper()
	run, err := artifactstest.SeedRun(ctx, w.devC, "/Shared/churn", "model", files, sourceParams, sourceMetrics, map[string]string{"team": "churn", "mlflow.source.type": "JOB"})
	require.NoError(t, err)
	return run.ID, w.registerRun(t, ctx, name, run.ID)
}

// registerRun registers the model of run runID in dev as a workspace
// registry version of name and waits until it is READY.
func (w *world) registerRun(t testing.TB, ctx context.Context, name, runID string) int {
	t.Helper()
	reg := ml.NewModelRegistry(w.devC)
	if _, err := reg.GetModel(ctx, ml.GetModelRequest{Name: name}); err != nil {
		_, err := reg.CreateModel(ctx, ml.CreateModelRequest{Name: name})
		require.NoError(t, err)
	}
	mv, err := reg.CreateModelVersion(ctx, ml.CreateModelVersionRequest{Name: name, Source: "runs:/" + runID + "/model", RunId: runID})
	require.NoError(t, err)
	v, _ := strconv.Atoi(mv.ModelVersion.Version)
	require.Eventually(t, func() bool {
		got, err := reg.GetModelVersion(ctx, ml.GetModelVersionRequest{Name: name, Version: mv.ModelVersion.Version})
		return err == nil && got.ModelVersion.Status == ml.ModelVersionStatusReady
	}, 10*time.Second, 50*time.Millisecond)
	return v
}

// registerUCSource creates a Unity Catalog version in ws the way the MLflow
// client does (create, upload to the storage location, finalize).
func registerUCSource(t testing.TB, ctx context.Context, c *client.DatabricksClient, name modeluri.Name, runID string, files []artifactstest.Source) int {
	t.Helper()
	models := catalog.NewRegisteredModels(c)
	if _, err := models.Get(ctx, catalog.GetRegisteredModelRequest{FullName: name.Full}); err != nil {
		_, err := models.Create(ctx, catalog.CreateRegisteredModelRequest{CatalogName: name.Catalog, SchemaName: name.Schema, Name: name.Model})
		require.NoError(t, err)
	}
	var created struct {
		ModelVersion struct {
			Version         string `json:"version"`
			StorageLocation string `json:"storage_location"`
		} `json:"model_version"`
	}
	require.NoError(t, c.Do(ctx, http.MethodPost, registry.UCRoute+"create", nil, nil,
		map[string]any{"name": name.Full, "source": "runs:/" + runID + "/model", "run_id": runID}, &created))
	var creds registry.UCCredentialsResponse
	require.NoError(t, c.Do(ctx, http.MethodPost, registry.UCRoute+"generate-temporary-credentials", nil, nil,
		map[string]any{"name": name.Full, "version": created.ModelVersion.Version, "operation": "MODEL_VERSION_OPERATION_READ_WRITE"}, &creds))
	sign, err := artifacts.PrefixSigner(created.ModelVersion.StorageLocation, creds.Credentials.AzureUserDelegationSAS.SASToken)
	require.NoError(t, err)
	require.NoError(t, artifactstest.Upload(ctx, sign, files, 4))
	require.NoError(t, c.Do(ctx, http.MethodPost, registry.UCRoute+"finalize", nil, nil,
		map[string]any{"name": name.Full, "version": created.ModelVersion.Version}, nil))
	n, _ := strconv.Atoi(created.ModelVersion.Version)
	return n
}

func (w *world) deps(storage *http.Client) modelcopy.Deps {
	return modelcopy.Deps{
		Source:   func(context.Context) (*client.DatabricksClient, error) { return w.devC, nil },
		Target:   func(context.Context) (*client.DatabricksClient, error) { return w.prdC, nil },
		Storage:  storage,
		Transfer: artifacts.Options{BlockSize: 1 << 20, Backoff: func(int) time.Duration { return 20 * time.Millisecond }},
		Poll:     50 * time.Millisecond,
	}
}

// result is one copy's log read back with the agent's rules.
type result struct {
	out     modelcopy.Outcome
	err     error
	stdout  string
	outputs map[string]string
	errors  []string
}

// options reads inputs the way the task does.
func options(t testing.TB, inputs map[string]string) (modelcopy.Options, error) {
	env := agent.Env{"INPUT_COMMAND": "copy"}
	for k, v := range inputs {
		env["INPUT_"+agent.VariableKey(k)] = v
	}
	in := definition(t).InputsFrom(env)
	o := modelcopy.ReadOptions(in)
	o.Pipeline = agent.System{BuildID: "1234", CollectionURI: "https://dev.azure.com/contoso/", Project: "mlops", SourceVersion: "6e4f1c2a", DefinitionName: "churn-mlops"}
	return o, in.Err()
}

func (w *world) copy(t testing.TB, ctx context.Context, d modelcopy.Deps, inputs map[string]string) result {
	t.Helper()
	o, err := options(t, inputs)
	require.NoError(t, err)
	var buf bytes.Buffer
	log := agent.NewLog(&buf, agent.LogOptions{Definition: definition(t), TempDir: t.TempDir()})
	out, err := modelcopy.Run(ctx, o, d, log)
	r := result{out: out, err: err, stdout: buf.String(), outputs: map[string]string{}}
	for _, line := range strings.Split(buf.String(), "\n") {
		if c, ok := agent.ParseCommand(line); ok {
			switch c.Area + "." + c.Event {
			case "task.setvariable":
				r.outputs[c.Properties["variable"]] = c.Message
			case "task.issue":
				if c.Properties["type"] == "error" {
					r.errors = append(r.errors, c.Message)
				}
			}
		}
	}
	return r
}
