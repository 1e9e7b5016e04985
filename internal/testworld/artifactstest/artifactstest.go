// Package artifactstest builds the world the copy is tested and measured in:
// Azurite as the blob service behind two emulated workspaces (dev and prod),
// MLflow runs seeded with files of any size without holding them in memory,
// and a storage transport that fails a seeded share of requests. The tests of
// packages artifacts and modelcopy and the copy benchmark (build/bench) use it.
package artifactstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/registry"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// Client returns an SDK client for an emulated workspace that polls and
// signs as fast as tests need.
func Client(ws *emulator.Workspace) (*client.DatabricksClient, error) {
	return ClientFor(ws.URL(), ws.Token)
}

// ClientFor is Client for a workspace known by URL and token (a child process).
func ClientFor(host, token string) (*client.DatabricksClient, error) {
	cfg := (&emulator.Workspace{}).SDKConfig()
	cfg.Host, cfg.Token = host, token
	cfg.RateLimitPerSecond = 1000
	cfg.RetryTimeoutSeconds = 60
	// The emulator copies a new registry version's files inside the create
	// request (Databricks does it in the background): give big models time.
	cfg.HTTPTimeoutSeconds = 900
	return client.New(cfg)
}

// Source is a file to seed: its content comes from Open, Size bytes long.
type Source struct {
	Path string
	Size int64
	Open func() io.Reader
}

// Bytes is a Source holding data.
func Bytes(p string, data []byte) Source {
	return Source{Path: p, Size: int64(len(data)), Open: func() io.Reader { return strings.NewReader(string(data)) }}
}

// Random is a Source of size pseudo-random bytes from seed, generated as it
// is read (a 4 GiB file costs no memory).
func Random(p string, size int64, seed uint64) Source {
	return Source{Path: p, Size: size, Open: func() io.Reader {
		return io.LimitReader(&randReader{r: rand.NewChaCha8(seedBytes(seed))}, size)
	}}
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

type randReader struct{ r *rand.ChaCha8 }

func (r *randReader) Read(p []byte) (int, error) { return r.r.Read(p) }

// Dir is every file of a local folder (e.g. the churn model fixture), in
// path order.
func Dir(dir string) ([]Source, error) {
	files, err := emulator.ReadFolder(dir)
	if err != nil {
		return nil, err
	}
	out := make([]Source, 0, len(files))
	for _, p := range slices.Sorted(maps.Keys(files)) {
		out = append(out, Bytes(p, files[p]))
	}
	return out, nil
}

// SmallFiles is n files of a few hundred bytes to a few KiB under dir.
func SmallFiles(dir string, n int, seed uint64) []Source {
	out := make([]Source, n)
	for i := range n {
		out[i] = Random(fmt.Sprintf("%s/part-%05d.bin", dir, i), int64(200+(i*37)%4000), seed+uint64(i))
	}
	return out
}

// Run is a seeded MLflow run.
type Run struct {
	ID           string
	ExperimentID string
}

// SeedRun creates a finished run in experiment (created if missing) with
// params, metrics and tags, and uploads files below artifactPath through
// credentials-for-write, streaming each one.
func SeedRun(ctx context.Context, c *client.DatabricksClient, experiment, artifactPath string, files []Source, params map[string]string, metrics map[string]float64, tags map[string]string) (Run, error) {
	exps := ml.NewExperiments(c)
	expID := ""
	if got, err := exps.GetByName(ctx, ml.GetByNameRequest{ExperimentName: experiment}); err == nil {
		expID = got.Experiment.ExperimentId
	} else {
		if err := workspace.NewWorkspace(c).Mkdirs(ctx, workspace.Mkdirs{Path: parent(experiment)}); err != nil {
			return Run{}, err
		}
		created, err := exps.CreateExperiment(ctx, ml.CreateExperiment{Name: experiment})
		if err != nil {
			return Run{}, err
		}
		expID = created.ExperimentId
	}
	var runTags []ml.RunTag
	for k, v := range tags {
		runTags = append(runTags, ml.RunTag{Key: k, Value: v})
	}
	run, err := exps.CreateRun(ctx, ml.CreateRun{ExperimentId: expID, RunName: "train", Tags: runTags})
	if err != nil {
		return Run{}, err
	}
	id := run.Run.Info.RunId
	// One request for the metrics, and the params 100 at a time
	// (log-batch's limit, ml.LogBatch doc comments).
	batches := []ml.LogBatch{{RunId: id}}
	for k, v := range metrics {
		batches[0].Metrics = append(batches[0].Metrics, ml.Metric{Key: k, Value: 0, Timestamp: 1, Step: 0}, ml.Metric{Key: k, Value: v, Timestamp: 2, Step: 1})
	}
	for k, v := range params {
		if len(batches[len(batches)-1].Params) == 100 {
			batches = append(batches, ml.LogBatch{RunId: id})
		}
		last := &batches[len(batches)-1]
		last.Params = append(last.Params, ml.Param{Key: k, Value: v})
	}
	for _, b := range batches {
		if err := exps.LogBatch(ctx, b); err != nil {
			return Run{}, err
		}
	}
	if err := Upload(ctx, artifacts.RunSigner(c, id, artifactPath, true), files, 16); err != nil {
		return Run{}, err
	}
	if _, err := exps.UpdateRun(ctx, ml.UpdateRun{RunId: id, Status: ml.UpdateRunStatusFinished, EndTime: 3}); err != nil {
		return Run{}, err
	}
	return Run{ID: id, ExperimentID: expID}, nil
}

func parent(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "/"
}

// Upload writes files through signed Azure URLs, independently of package
// artifacts' writer: Blob SAS URLs with the blob SDK's own upload, ADLS Gen2
// URLs with DFS REST requests of its own (uploadDFS).
func Upload(ctx context.Context, sign artifacts.Signer, files []Source, parallel int) error {
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	creds, err := sign(ctx, paths)
	if err != nil {
		return err
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, f := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var err error
			if c := creds[f.Path]; c.Kind == artifacts.AzureADLSSAS {
				err = uploadDFS(ctx, c, f)
			} else {
				var bb *blockblob.Client
				if bb, err = blockblob.NewClientWithNoCredential(c.URL, nil); err == nil {
					err = uploadOne(ctx, bb, f)
				}
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("seeding %s: %w", f.Path, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// uploadOne writes one file: a small one in a single Put Blob (UploadStream
// would take its 8 MiB buffers for every file), a large one streamed in
// blocks.
func uploadOne(ctx context.Context, bb *blockblob.Client, f Source) error {
	const blockSize = 8 << 20
	if f.Size > blockSize {
		_, err := bb.UploadStream(ctx, f.Open(), &blockblob.UploadStreamOptions{BlockSize: blockSize, Concurrency: 4})
		return err
	}
	data, err := io.ReadAll(f.Open())
	if err != nil {
		return err
	}
	_, err = bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), nil)
	return err
}

// uploadDFS writes one file through an ADLS Gen2 SAS URL the way MLflow's
// client does (mlflow/azure/client.py): Path - Create, an append per 8 MiB
// at its position, a flush at the length; every request carries the headers
// handed out with the URL and x-ms-version.
func uploadDFS(ctx context.Context, c artifacts.Credential, f Source) error {
	const chunk = 8 << 20
	call := func(query string, body []byte) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.URL+"&"+query, bytes.NewReader(body))
		if err != nil {
			return err
		}
		if query != "resource=file" {
			req.Method = http.MethodPatch
		}
		for k, v := range c.Headers {
			req.Header.Set(k, v)
		}
		req.Header.Set("x-ms-version", "2023-11-03")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("DFS %s: %w", query, errors.Unwrap(err))
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("DFS %s: %s %s", query, resp.Status, msg)
		}
		return nil
	}
	if err := call("resource=file", nil); err != nil {
		return err
	}
	r := f.Open()
	buf := make([]byte, chunk)
	var pos int64
	for pos < f.Size {
		n, err := io.ReadFull(r, buf[:min(chunk, f.Size-pos)])
		if err != nil {
			return err
		}
		if err := call(fmt.Sprintf("action=append&position=%d", pos), buf[:n]); err != nil {
			return err
		}
		pos += int64(n)
	}
	return call(fmt.Sprintf("action=flush&position=%d", f.Size), nil)
}

// FaultyTransport fails a seeded share of the requests to hosts in Hosts
// (the blob service) before they are sent, or cuts a response body short,
// the way a flaky network does. Other requests pass.
type FaultyTransport struct {
	Base  http.RoundTripper
	Hosts []string
	Rate  float64 // share of matching requests that fail
	Seed  uint64

	mu       sync.Mutex
	rng      *rand.Rand
	Injected atomic.Int64
}

// RoundTrip implements http.RoundTripper.
func (f *FaultyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := f.Base
	if base == nil {
		base = http.DefaultTransport
	}
	match := false
	for _, h := range f.Hosts {
		if req.URL.Host == h {
			match = true
		}
	}
	if !match {
		return base.RoundTrip(req)
	}
	f.mu.Lock()
	if f.rng == nil {
		f.rng = rand.New(rand.NewPCG(f.Seed, f.Seed+1))
	}
	roll, kind := f.rng.Float64(), f.rng.IntN(3)
	f.mu.Unlock()
	if roll >= f.Rate {
		return base.RoundTrip(req)
	}
	f.Injected.Add(1)
	if kind == 2 && req.Method != http.MethodGet {
		kind = 1
	}
	switch kind {
	case 0: // connection reset before an answer
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, errors.New("injected fault: connection reset by peer")
	case 1: // the service is busy
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Server Busy", Header: http.Header{"X-Ms-Error-Code": {"ServerBusy"}},
			Body: io.NopCloser(strings.NewReader("injected fault")), Request: req, ProtoMajor: 1, ProtoMinor: 1}, nil
	default: // the answer is cut short
		resp, err := base.RoundTrip(req)
		if err != nil {
			return resp, err
		}
		if resp.ContentLength < 2 {
			_ = resp.Body.Close()
			return nil, errors.New("injected fault: connection reset while reading")
		}
		resp.Body = &cutBody{rc: resp.Body, left: resp.ContentLength / 2}
		return resp, nil
	}
}

type cutBody struct {
	rc   io.ReadCloser
	left int64
}

func (c *cutBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("injected fault: connection reset while reading")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *cutBody) Close() error { return c.rc.Close() }

// IsNotFound reports whether an azblob error is a 404.
func IsNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// RegisterRunVersion registers runs:/<run>/<path> as a new version of a
// workspace registry model (created if missing) and waits until it is READY.
func RegisterRunVersion(ctx context.Context, c *client.DatabricksClient, name, runID, artifactPath string) (string, error) {
	reg := ml.NewModelRegistry(c)
	if _, err := reg.GetModel(ctx, ml.GetModelRequest{Name: name}); err != nil {
		if _, err := reg.CreateModel(ctx, ml.CreateModelRequest{Name: name}); err != nil {
			return "", err
		}
	}
	mv, err := reg.CreateModelVersion(ctx, ml.CreateModelVersionRequest{Name: name, Source: "runs:/" + runID + "/" + artifactPath, RunId: runID})
	if err != nil {
		return "", err
	}
	for {
		got, err := reg.GetModelVersion(ctx, ml.GetModelVersionRequest{Name: name, Version: mv.ModelVersion.Version})
		if err != nil {
			return "", err
		}
		switch got.ModelVersion.Status {
		case ml.ModelVersionStatusReady:
			return mv.ModelVersion.Version, nil
		case ml.ModelVersionStatusFailedRegistration:
			return "", errors.New(got.ModelVersion.StatusMessage)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// RegisterUCVersion creates a Unity Catalog version of name (catalog.schema.model,
// the model created if missing) the way the MLflow client does: create,
// upload files to the storage location, finalize.
func RegisterUCVersion(ctx context.Context, c *client.DatabricksClient, catalogName, schema, model, runID string, files []Source) (string, error) {
	full := catalogName + "." + schema + "." + model
	models := catalog.NewRegisteredModels(c)
	if _, err := models.Get(ctx, catalog.GetRegisteredModelRequest{FullName: full}); err != nil {
		if _, err := models.Create(ctx, catalog.CreateRegisteredModelRequest{CatalogName: catalogName, SchemaName: schema, Name: model}); err != nil {
			return "", err
		}
	}
	var created registry.UCVersionResponse
	if err := c.Do(ctx, http.MethodPost, registry.UCRoute+"create", nil, nil,
		registry.UCCreateRequest{Name: full, Source: "runs:/" + runID + "/model", RunID: runID}, &created); err != nil {
		return "", err
	}
	if created.ModelVersion == nil {
		return "", errors.New("model-versions/create answered without a model_version")
	}
	version := created.ModelVersion.Version
	var creds registry.UCCredentialsResponse
	if err := c.Do(ctx, http.MethodPost, registry.UCRoute+"generate-temporary-credentials", nil, nil,
		registry.UCCredentialsRequest{Name: full, Version: version, Operation: "MODEL_VERSION_OPERATION_READ_WRITE"}, &creds); err != nil {
		return "", err
	}
	if creds.Credentials.AzureUserDelegationSAS == nil {
		return "", errors.New("generate-temporary-credentials answered without an Azure user delegation SAS")
	}
	sign, err := artifacts.PrefixSigner(created.ModelVersion.StorageLocation, creds.Credentials.AzureUserDelegationSAS.SASToken)
	if err != nil {
		return "", err
	}
	if err := Upload(ctx, sign, files, 4); err != nil {
		return "", err
	}
	err = c.Do(ctx, http.MethodPost, registry.UCRoute+"finalize", nil, nil, registry.UCVersionRequest{Name: full, Version: version}, nil)
	return version, err
}
