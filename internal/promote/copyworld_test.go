package promote_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/registry"
	"github.com/brickferry/brickferry/internal/testworld/agenttest"
	"github.com/brickferry/brickferry/internal/testworld/artifactstest"
	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/fixtures"
)

// copyWorld is where the copy command runs in these tests: two emulated
// HTTPS workspaces, dev (the source) and prod (the target), whose artifacts and Unity Catalog storage are
// blobs in one Azurite. The signed URLs they hand out point at a
// fault-injecting proxy in front of Azurite (rate 0 until a test raises it),
// except in a direct world.
type copyWorld struct {
	blob       *azurite.Server
	proxy      *azurite.FaultProxy // nil in a direct world
	dev, prd   *emulator.Workspace
	devC, prdC *client.DatabricksClient
	caFile     string // the CA of both workspaces, for Agent.CAInfo
}

func newCopyWorld(t *testing.T) *copyWorld {
	t.Helper()
	return startCopyWorld(t, true)
}

func startCopyWorld(t *testing.T, proxied bool) *copyWorld {
	t.Helper()
	return startCopyWorldOf(t, proxied, emulator.MLflow2, emulator.MLflow2, 0)
}

// newEraCopyWorld is a direct world whose dev and prod workspaces are of
// these MLflow eras.
func newEraCopyWorld(t *testing.T, dev, prod emulator.MLflowEra) *copyWorld {
	t.Helper()
	return startCopyWorldOf(t, false, dev, prod, 0)
}

// newPagedCopyWorld is a world whose signed URLs reach Azurite directly
// (large copies do not pass every byte through the proxy in this race
// instrumented test process) and whose dev registry lists a version's files
// listPage at a time (model-versions/list-artifacts pages).
func newPagedCopyWorld(t *testing.T, listPage int) *copyWorld {
	t.Helper()
	return startCopyWorldOf(t, false, emulator.MLflow2, emulator.MLflow2, listPage)
}

// startCopyWorldOf starts Azurite and the two workspaces; listPage is dev's
// Options.ArtifactListPageSize (0: the emulator's default).
func startCopyWorldOf(t *testing.T, proxied bool, devEra, prodEra emulator.MLflowEra, listPage int) *copyWorld {
	t.Helper()
	az := azurite.Start(t)
	acct := &emulator.BlobAccount{Endpoint: az.BlobEndpoint, AccountName: az.AccountName, AccountKey: az.AccountKey}
	w := &copyWorld{blob: az, caFile: caFile(t)}
	if proxied {
		proxy, err := azurite.NewFaultProxy(az.BlobEndpoint, 7, 0)
		require.NoError(t, err)
		t.Cleanup(proxy.Close)
		w.proxy, acct.ClientEndpoint = proxy, proxy.Endpoint
	}
	w.dev = startWorkspace(t, emulator.Options{Name: "dev", Blob: acct, MLflow: devEra, ArtifactListPageSize: listPage})
	w.prd = startWorkspace(t, emulator.Options{Name: "prod", Blob: acct, MLflow: prodEra})
	w.devC, w.prdC = sdk(t, w.dev), sdk(t, w.prd)
	return w
}

// copyTimeout bounds each test's own calls (seeding, reading back).
func copyCtx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

// agentRun is the copy command as the agent starts it: dev and prod each
// connected with the token method (token and targetToken).
func (w *copyWorld) agentRun(inputs map[string]string) agenttest.Run {
	in := map[string]string{
		"command":                "copy",
		"targetConnectionMethod": "token", "targetWorkspaceUrl": w.prd.URL(), "targetToken": w.prd.Token,
	}
	maps.Copy(in, inputs)
	r := agenttest.Run{
		Task: "MLflowPromote", Inputs: in, Env: map[string]string{"AGENT_CAINFO": w.caFile},
		Secrets: map[string]string{"databricks-token-prod": w.prd.Token},
	}
	return r.WithToken(w.dev.URL(), w.dev.Token)
}

// copy runs the copy with the built executable and checks the agent
// contract (one task.complete, exit code 0).
func (w *copyWorld) copy(t *testing.T, inputs map[string]string) *agenttest.Result {
	t.Helper()
	res := w.agentRun(inputs).Exec(t, agenttest.Executable(t))
	require.Equal(t, 1, res.Completions, res.Stdout)
	require.Equal(t, 0, res.ExitCode, "under the agent the executable exits 0")
	return res
}

// mustCopy is copy that must succeed.
func (w *copyWorld) mustCopy(t *testing.T, inputs map[string]string) *agenttest.Result {
	t.Helper()
	res := w.copy(t, inputs)
	require.Equal(t, agent.Succeeded, res.Result, "%s\n%s", res.Stdout, res.Stderr)
	return res
}

var (
	copySourceParams  = map[string]string{"max_depth": "6", "eta": "0.3"}
	copySourceMetrics = map[string]float64{"auc": 0.91, "logloss": 0.27}
	copySourceTags    = map[string]string{"team": "churn", "mlflow.source.type": "JOB", "mlflow.note.content": "weekly retrain"}
)

// churnFiles is the churn model fixture, plus extra files.
func churnFiles(t *testing.T, extra ...artifactstest.Source) []artifactstest.Source {
	t.Helper()
	files, err := artifactstest.Dir(fixtures.ChurnModel(t))
	require.NoError(t, err)
	return append(files, extra...)
}

// registerSource logs files as the model of a new run in dev and registers
// it as the next version of a workspace registry model; it returns the run
// id and the version.
func (w *copyWorld) registerSource(t *testing.T, ctx context.Context, name string, files []artifactstest.Source) (string, string) {
	t.Helper()
	run, err := artifactstest.SeedRun(ctx, w.devC, "/Shared/churn", "model", files, copySourceParams, copySourceMetrics, copySourceTags)
	require.NoError(t, err)
	v, err := artifactstest.RegisterRunVersion(ctx, w.devC, name, run.ID, "model")
	require.NoError(t, err)
	return run.ID, v
}

// registerUCSource logs a run in dev and registers files as a Unity Catalog
// version of catalog.schema.model in dev's metastore.
func (w *copyWorld) registerUCSource(t *testing.T, ctx context.Context, catalogName, schema, model string, files []artifactstest.Source) (string, string) {
	t.Helper()
	run, err := artifactstest.SeedRun(ctx, w.devC, "/Shared/churn", "model", nil, copySourceParams, copySourceMetrics, copySourceTags)
	require.NoError(t, err)
	v, err := artifactstest.RegisterUCVersion(ctx, w.devC, catalogName, schema, model, run.ID, files)
	require.NoError(t, err)
	return run.ID, v
}

// digestOf is the content digest the copy must report for files, computed
// here independently of package artifacts: "sha256:" + SHA-256 over
// "<sha256>  <size>  <path>\n" per file in path order (docs/copy.md).
func digestOf(t *testing.T, files []artifactstest.Source) string {
	t.Helper()
	sums := map[string]string{}
	for _, f := range files {
		h := sha256.New()
		n, err := io.Copy(h, f.Open())
		require.NoError(t, err)
		require.Equal(t, f.Size, n)
		sums[f.Path] = fmt.Sprintf("%s  %d  %s\n", hex.EncodeToString(h.Sum(nil)), n, f.Path)
	}
	return joinDigest(sums)
}

func joinDigest(lines map[string]string) string {
	paths := make([]string, 0, len(lines))
	for p := range lines {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, p := range paths {
		_, _ = io.WriteString(h, lines[p])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// readDigest downloads every file through signed URLs (GET, no package
// artifacts code) and returns their content digest and count.
func readDigest(t *testing.T, ctx context.Context, files map[string]string) (string, int) {
	t.Helper()
	var mu sync.Mutex
	lines := map[string]string{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for p, signed := range files {
		g.Go(func() error {
			req, err := http.NewRequestWithContext(gctx, http.MethodGet, signed, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %s", p, resp.Status)
			}
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			if err != nil {
				return err
			}
			mu.Lock()
			lines[p] = fmt.Sprintf("%s  %d  %s\n", hex.EncodeToString(h.Sum(nil)), n, p)
			mu.Unlock()
			return nil
		})
	}
	require.NoError(t, g.Wait())
	return joinDigest(lines), len(lines)
}

// registryVersionFiles signs every file of a workspace registry version in
// the registry's own storage (what a client loading models:/name/N reads),
// with the routes MLflow's DatabricksModelsArtifactRepository uses.
func registryVersionFiles(t *testing.T, ctx context.Context, c *client.DatabricksClient, name, version string) map[string]string {
	t.Helper()
	var paths []string
	queue := []string{""}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		for token := ""; ; {
			var listed emulator.ListModelVersionArtifactsResponse
			require.NoError(t, c.Do(ctx, http.MethodGet, "/api/2.0/mlflow/model-versions/list-artifacts", nil,
				map[string]any{"name": name, "version": version, "path": dir, "page_token": token}, nil, &listed))
			for _, f := range listed.Files {
				if f.IsDir {
					queue = append(queue, f.Path)
				} else {
					paths = append(paths, f.Path)
				}
			}
			if token = listed.NextPageToken; token == "" {
				break
			}
		}
	}
	var mu sync.Mutex
	out := map[string]string{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, p := range paths {
		g.Go(func() error {
			var signed emulator.GetModelVersionSignedDownloadURIResponse
			if err := c.Do(gctx, http.MethodGet, "/api/2.0/mlflow/model-versions/get-signed-download-uri", nil,
				map[string]any{"name": name, "version": version, "path": p}, nil, &signed); err != nil {
				return err
			}
			mu.Lock()
			out[p] = signed.SignedURI
			mu.Unlock()
			return nil
		})
	}
	require.NoError(t, g.Wait())
	return out
}

// ucVersionFiles signs every file in a Unity Catalog version's storage
// location with READ temporary credentials.
func ucVersionFiles(t *testing.T, ctx context.Context, c *client.DatabricksClient, name string, version int) map[string]string {
	t.Helper()
	mv, err := catalog.NewModelVersions(c).Get(ctx, catalog.GetModelVersionRequest{FullName: name, Version: version})
	require.NoError(t, err)
	var creds emulator.GenerateTemporaryUCCredentialsResponse
	require.NoError(t, c.Do(ctx, http.MethodPost, registry.UCRoute+"generate-temporary-credentials", nil, nil,
		emulator.GenerateTemporaryUCCredentialsRequest{Name: name, Version: strconv.Itoa(version), Operation: "MODEL_VERSION_OPERATION_READ"}, &creds))
	token := creds.Credentials.AzureUserDelegationSAS.SASToken
	files, err := artifacts.New(artifacts.Options{}).ListPrefix(ctx, mv.StorageLocation, token)
	require.NoError(t, err)
	out := map[string]string{}
	for _, f := range files {
		out[f.Path] = mv.StorageLocation + "/" + (&url.URL{Path: f.Path}).EscapedPath() + "?" + token
	}
	return out
}

// loggedModelFiles signs every file of a logged model with its
// credentials-for-download, as MLflow's client reads models:/<model id>.
func loggedModelFiles(t *testing.T, ctx context.Context, c *client.DatabricksClient, id string) map[string]string {
	t.Helper()
	files, err := artifacts.ListLoggedModel(ctx, c, id, "")
	require.NoError(t, err)
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	var creds emulator.GetCredentialsForLoggedModelResponse
	require.NoError(t, c.Do(ctx, http.MethodPost, "/api/2.0/mlflow/logged-models/"+id+"/artifacts/credentials-for-download", nil, nil,
		emulator.GetCredentialsForLoggedModel{Paths: paths}, &creds))
	out := map[string]string{}
	for _, cr := range creds.Credentials {
		out[cr.CredentialInfo.Path] = cr.CredentialInfo.SignedURI
	}
	require.Len(t, out, len(paths), "one signed URL per file")
	return out
}

// registryVersions lists the versions of a workspace registry model.
func registryVersions(t *testing.T, ctx context.Context, c *client.DatabricksClient, name string) []ml.ModelVersion {
	t.Helper()
	all, err := ml.NewModelRegistry(c).SearchModelVersionsAll(ctx, ml.SearchModelVersionsRequest{Filter: "name='" + name + "'"})
	require.NoError(t, err)
	return all
}

// experimentRuns lists the runs of an experiment (none when it is missing).
func experimentRuns(t *testing.T, ctx context.Context, c *client.DatabricksClient, experiment string) []ml.Run {
	t.Helper()
	exps := ml.NewExperiments(c)
	e, err := exps.GetByName(ctx, ml.GetByNameRequest{ExperimentName: experiment})
	if err != nil {
		return nil
	}
	runs, err := exps.SearchRunsAll(ctx, ml.SearchRuns{ExperimentIds: []string{e.Experiment.ExperimentId}})
	require.NoError(t, err)
	return runs
}

// kv turns a list of key/value pairs into a map.
func kv[T any](items []T, pair func(T) (string, string)) map[string]string {
	out := map[string]string{}
	for _, it := range items {
		k, v := pair(it)
		out[k] = v
	}
	return out
}

func versionTagMap(mv ml.ModelVersion) map[string]string {
	return kv(mv.Tags, func(t ml.ModelVersionTag) (string, string) { return t.Key, t.Value })
}

func runTagMap(r ml.Run) map[string]string {
	return kv(r.Data.Tags, func(t ml.RunTag) (string, string) { return t.Key, t.Value })
}

// writesTo lists the state-changing requests a workspace received: not
// GET/HEAD, and not the POSTs that only read (search, signed read URLs).
func writesTo(ws *emulator.Workspace) []string {
	readOnly := map[string]bool{
		"/api/2.0/mlflow/runs/search":                    true,
		"/api/2.0/mlflow/artifacts/credentials-for-read": true,
	}
	var out []string
	for _, r := range ws.Requests() {
		if r.IsWrite() && !readOnly[r.Path] {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}
