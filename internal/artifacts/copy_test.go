package artifacts_test

import (
	"context"
	"crypto/md5" //nolint:gosec // the MD5 Azure stores
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/testworld"
	"github.com/brickferry/brickferry/internal/testworld/artifactstest"
	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/fixtures"
)

func TestMain(m *testing.M) { testworld.Main(m) }

type world struct {
	blob     *azurite.Server
	dev, prd *emulator.Workspace
	devC     *client.DatabricksClient
	prdC     *client.DatabricksClient
}

func newWorld(t *testing.T) *world {
	t.Helper()
	az := azurite.Start(t)
	acct := &emulator.BlobAccount{Endpoint: az.BlobEndpoint, AccountName: az.AccountName, AccountKey: az.AccountKey}
	w := &world{blob: az,
		dev: emulator.Start(t, emulator.Options{Name: "dev", Blob: acct}),
		prd: emulator.Start(t, emulator.Options{Name: "prod", Blob: acct})}
	var err error
	w.devC, err = artifactstest.Client(w.dev)
	require.NoError(t, err)
	w.prdC, err = artifactstest.Client(w.prd)
	require.NoError(t, err)
	return w
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// emptyRun is a run in the target workspace to copy into.
func emptyRun(t *testing.T, ctx context.Context, c *client.DatabricksClient) string {
	t.Helper()
	r, err := artifactstest.SeedRun(ctx, c, "/Shared/copies/target", "model", nil, nil, nil, nil)
	require.NoError(t, err)
	return r.ID
}

func sha(t *testing.T, s artifactstest.Source) string {
	h := sha256.New()
	_, err := io.Copy(h, s.Open())
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

// readBack reads a copied file through the target's read credentials.
func readBack(t *testing.T, ctx context.Context, c *client.DatabricksClient, runID, p string) string {
	t.Helper()
	creds, err := artifacts.RunSigner(c, runID, "model", false)(ctx, []string{p})
	require.NoError(t, err)
	resp, err := http.Get(creds[p].URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	h := sha256.New()
	_, err = io.Copy(h, resp.Body)
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

func TestCopyChurnModelBetweenWorkspaces(t *testing.T) {
	w := newWorld(t)
	ctx := ctxFor(t, 60*time.Second)
	files, err := artifactstest.Dir(fixtures.ChurnModel(t))
	require.NoError(t, err)
	files = append(files, artifactstest.Random("nested/deep/weights.bin", 20<<20+3, 7), artifactstest.Bytes("empty.txt", nil))
	src, err := artifactstest.SeedRun(ctx, w.devC, "/Shared/churn", "model", files, nil, nil, nil)
	require.NoError(t, err)
	dst := emptyRun(t, ctx, w.prdC)

	listed, err := artifacts.ListRun(ctx, w.devC, src.ID, "model")
	require.NoError(t, err)
	require.Len(t, listed, len(files))

	var last int64
	cp := artifacts.New(artifacts.Options{BlockSize: 4 << 20, Progress: func(done, total int64) { last = done }})
	m, err := cp.Copy(ctx, listed, artifacts.RunSigner(w.devC, src.ID, "model", false),
		artifacts.RunSigner(w.prdC, dst, "model", true), artifacts.RunSigner(w.prdC, dst, "model", false))
	require.NoError(t, err)
	assert.Equal(t, m.Bytes, last)
	for _, f := range files {
		assert.Equal(t, sha(t, f), readBack(t, ctx, w.prdC, dst, f.Path), f.Path)
	}
	got, err := artifacts.ListRun(ctx, w.prdC, dst, "model")
	require.NoError(t, err)
	assert.Equal(t, listed, got)

	// The digest does not depend on where the files are.
	again, err := cp.Hash(ctx, got, artifacts.RunSigner(w.prdC, dst, "model", false))
	require.NoError(t, err)
	assert.Equal(t, m.Digest(), again.Digest())
}

func TestStorageFaultsAreRetried(t *testing.T) {
	w := newWorld(t)
	ctx := ctxFor(t, 60*time.Second)
	files := append(artifactstest.SmallFiles("parts", 60, 1), artifactstest.Random("big.bin", 12<<20, 2))
	src, err := artifactstest.SeedRun(ctx, w.devC, "/Shared/churn", "model", files, nil, nil, nil)
	require.NoError(t, err)
	dst := emptyRun(t, ctx, w.prdC)
	listed, err := artifacts.ListRun(ctx, w.devC, src.ID, "model")
	require.NoError(t, err)

	u, err := url.Parse(w.blob.BlobEndpoint)
	require.NoError(t, err)
	faulty := &artifactstest.FaultyTransport{Hosts: []string{u.Host}, Rate: 0.15, Seed: 42}
	var retried atomic.Int64
	cp := artifacts.New(artifacts.Options{HTTPClient: &http.Client{Transport: faulty}, BlockSize: 1 << 20,
		Backoff: func(int) time.Duration { return 10 * time.Millisecond }, Attempts: 8,
		Retried: func(string, int, error) { retried.Add(1) }})
	_, err = cp.Copy(ctx, listed, artifacts.RunSigner(w.devC, src.ID, "model", false),
		artifacts.RunSigner(w.prdC, dst, "model", true), artifacts.RunSigner(w.prdC, dst, "model", false))
	require.NoError(t, err)
	assert.Positive(t, faulty.Injected.Load())
	t.Logf("%d faults injected, %d file retries", faulty.Injected.Load(), retried.Load())
	for _, f := range files[len(files)-3:] {
		assert.Equal(t, sha(t, f), readBack(t, ctx, w.prdC, dst, f.Path), f.Path)
	}
}

func TestCopyFailsWhenStorageIsDown(t *testing.T) {
	w := newWorld(t)
	ctx := ctxFor(t, 60*time.Second)
	src, err := artifactstest.SeedRun(ctx, w.devC, "/Shared/churn", "model", artifactstest.SmallFiles("p", 3, 1), nil, nil, nil)
	require.NoError(t, err)
	dst := emptyRun(t, ctx, w.prdC)
	listed, err := artifacts.ListRun(ctx, w.devC, src.ID, "model")
	require.NoError(t, err)
	u, _ := url.Parse(w.blob.BlobEndpoint)
	down := &artifactstest.FaultyTransport{Hosts: []string{u.Host}, Rate: 1, Seed: 1}
	cp := artifacts.New(artifacts.Options{HTTPClient: &http.Client{Transport: down}, Attempts: 2, Backoff: func(int) time.Duration { return time.Millisecond }})
	_, err = cp.Copy(ctx, listed, artifacts.RunSigner(w.devC, src.ID, "model", false), artifacts.RunSigner(w.prdC, dst, "model", true), nil)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "sig=", "a signed URL's signature leaked into the error")
	left, err := artifacts.ListRun(ctx, w.prdC, dst, "model")
	require.NoError(t, err)
	assert.Empty(t, left, "no file is written when every request fails")
}

// TestAnAzureSourceLongerThanListedIsAnError: an Azure Blob source answers
// its length (Content-Length) with the download; a source that has more
// bytes than the listing said fails the copy instead of being cut to the
// listed length, and nothing is written to the target.
func TestAnAzureSourceLongerThanListedIsAnError(t *testing.T) {
	w := newWorld(t)
	ctx := ctxFor(t, 60*time.Second)
	src, err := artifactstest.SeedRun(ctx, w.devC, "/Shared/churn", "model", []artifactstest.Source{artifactstest.Random("model.bin", 3<<20, 3)}, nil, nil, nil)
	require.NoError(t, err)
	dst := emptyRun(t, ctx, w.prdC)
	listed, err := artifacts.ListRun(ctx, w.devC, src.ID, "model")
	require.NoError(t, err)
	require.Len(t, listed, 1)
	listed[0].Size -= 5 // the source grew after it was listed
	cp := artifacts.New(artifacts.Options{BlockSize: 1 << 20, Attempts: 2, Backoff: func(int) time.Duration { return time.Millisecond }})
	_, err = cp.Copy(ctx, listed, artifacts.RunSigner(w.devC, src.ID, "model", false), artifacts.RunSigner(w.prdC, dst, "model", true), nil)
	require.Error(t, err, "an Azure Blob source 5 bytes longer than listed was cut to the listed length without an error")
	assert.Contains(t, err.Error(), "the source has "+strconv.Itoa(3<<20)+" bytes, "+strconv.FormatInt(listed[0].Size, 10)+" were listed")
	left, err := artifacts.ListRun(ctx, w.prdC, dst, "model")
	require.NoError(t, err)
	assert.Empty(t, left, "no truncated file is written")
}

var _ = ml.RunInfoStatusFailed

// recorded is one request a recordingProxy passed on.
type recorded struct {
	method, comp, path string
	header             http.Header
}

// recordingProxy passes requests to the blob service and keeps what they
// were.
type recordingProxy struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []recorded
}

func newRecordingProxy(t *testing.T, blobEndpoint string) *recordingProxy {
	target, err := url.Parse(blobEndpoint)
	require.NoError(t, err)
	p := &recordingProxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, recorded{method: r.Method, comp: r.URL.Query().Get("comp"), path: r.URL.Path, header: r.Header.Clone()})
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// via makes a signer's URLs go through the proxy, with headers handed out.
func (p *recordingProxy) via(sign artifacts.Signer, handed map[string]string) artifacts.Signer {
	return func(ctx context.Context, paths []string) (map[string]artifacts.Credential, error) {
		creds, err := sign(ctx, paths)
		for k, c := range creds {
			u, _ := url.Parse(c.URL)
			u.Host = strings.TrimPrefix(p.srv.URL, "http://")
			c.URL, c.Headers = u.String(), handed
			creds[k] = c
		}
		return creds, err
	}
}

// TestAzureBlobWriterSendsEachHeaderWhereItBelongs: the headers handed out
// with an Azure SAS URL go on the Blob operations that take them, as MLflow
// filters them (mlflow/azure/client.py): metadata and blob properties on
// Put Block List and Put Blob (which they set), not on Put Block; a header of
// no Blob write (an ADLS umask) on none; reads get them all. The blob service
// (Azurite) keeps what the commit set.
func TestAzureBlobWriterSendsEachHeaderWhereItBelongs(t *testing.T) {
	w := newWorld(t)
	ctx := ctxFor(t, 60*time.Second)
	files := []artifactstest.Source{artifactstest.Bytes("MLmodel", []byte("flavors: {}\n")), artifactstest.Random("weights.bin", 3<<20+5, 3)}
	src, err := artifactstest.SeedRun(ctx, w.devC, "/Shared/churn", "model", files, nil, nil, nil)
	require.NoError(t, err)
	dst := emptyRun(t, ctx, w.prdC)
	listed, err := artifacts.ListRun(ctx, w.devC, src.ID, "model")
	require.NoError(t, err)

	handed := map[string]string{"x-ms-meta-team": "churn", "x-ms-blob-cache-control": "no-cache", "x-ms-umask": "0027"}
	p := newRecordingProxy(t, w.blob.BlobEndpoint)
	cp := artifacts.New(artifacts.Options{BlockSize: 1 << 20})
	_, err = cp.Copy(ctx, listed, artifacts.RunSigner(w.devC, src.ID, "model", false),
		p.via(artifacts.RunSigner(w.prdC, dst, "model", true), handed), p.via(artifacts.RunSigner(w.prdC, dst, "model", false), handed))
	require.NoError(t, err)

	ops := map[string]int{}
	for _, r := range p.seen {
		op := map[string]string{"": "Put Blob", "block": "Put Block", "blocklist": "Put Block List"}[r.comp]
		if r.method == http.MethodHead || r.method == http.MethodGet {
			op = "read"
		}
		ops[op]++
		want := map[string][]string{
			"Put Blob":       {"x-ms-meta-team", "x-ms-blob-cache-control"},
			"Put Block":      nil,
			"Put Block List": {"x-ms-meta-team", "x-ms-blob-cache-control"},
			"read":           {"x-ms-meta-team", "x-ms-blob-cache-control", "x-ms-umask"},
		}[op]
		assert.ElementsMatch(t, want, handedIn(r.header, handed), "%s %s", op, r.path)
	}
	assert.Equal(t, 1, ops["Put Blob"], "the small file in one request")
	assert.Equal(t, 4, ops["Put Block"], "the large file in 1 MiB blocks")
	assert.Equal(t, 1, ops["Put Block List"])

	for _, f := range files {
		creds, err := artifacts.RunSigner(w.prdC, dst, "model", false)(ctx, []string{f.Path})
		require.NoError(t, err)
		props, err := blob.NewClientWithNoCredential(creds[f.Path].URL, nil)
		require.NoError(t, err)
		got, err := props.GetProperties(ctx, nil)
		require.NoError(t, err)
		assert.Equal(t, "churn", *got.Metadata["Team"], f.Path)
		assert.Equal(t, "no-cache", *got.CacheControl, f.Path)
	}
}

// TestABlockCopyStoresTheSourcesContentMD5: a file written in blocks gets the
// source's stored Content-MD5 on Put Block List when the source has one, and
// none when it has none (the copier computes no whole-file MD5 for a property
// the service does not validate: storage.go, blocks.write); a file written
// in one Put Blob gets the MD5 of its bytes, which the service checks. The
// check after writing compares the MD5 where there is one.
func TestABlockCopyStoresTheSourcesContentMD5(t *testing.T) {
	w := newWorld(t)
	ctx := ctxFor(t, 60*time.Second)
	files := []artifactstest.Source{
		artifactstest.Bytes("MLmodel", []byte("flavors: {}\n")),
		artifactstest.Random("stored.bin", 3<<20+5, 3),
		// Over 4 MiB: Azurite answers a Get Blob of up to 4 MiB with an
		// MD5 it computes when the blob stores none
		// (node_modules/azurite/dist/src/blob/handlers/BlobHandler.js,
		// getBlockBlob), which is then what the source says.
		artifactstest.Random("unstored.bin", 5<<20+7, 4),
	}
	src, err := artifactstest.SeedRun(ctx, w.devC, "/Shared/churn", "model", files, nil, nil, nil)
	require.NoError(t, err)
	sums := map[string][]byte{}
	for _, f := range files {
		h := md5.New() //nolint:gosec // the MD5 Azure stores
		_, err := io.Copy(h, f.Open())
		require.NoError(t, err)
		sums[f.Path] = h.Sum(nil)
	}
	// stored.bin's uploader set its Content-MD5 (as azcopy --put-md5 does);
	// unstored.bin has none (as MLflow's block uploads leave a file), Set
	// Blob Properties without it clears what Put Blob stored.
	wcreds, err := artifacts.RunSigner(w.devC, src.ID, "model", true)(ctx, []string{"stored.bin", "unstored.bin"})
	require.NoError(t, err)
	for name, props := range map[string]blob.HTTPHeaders{"stored.bin": {BlobContentMD5: sums["stored.bin"]}, "unstored.bin": {}} {
		sb, err := blob.NewClientWithNoCredential(wcreds[name].URL, nil)
		require.NoError(t, err)
		_, err = sb.SetHTTPHeaders(ctx, props, nil)
		require.NoError(t, err)
	}
	rcreds, err := artifacts.RunSigner(w.devC, src.ID, "model", false)(ctx, []string{"stored.bin", "unstored.bin"})
	require.NoError(t, err)
	for name, want := range map[string][]byte{"stored.bin": sums["stored.bin"], "unstored.bin": nil} {
		rb, err := blob.NewClientWithNoCredential(rcreds[name].URL, nil)
		require.NoError(t, err)
		got, err := rb.GetProperties(ctx, nil)
		require.NoError(t, err)
		require.Equal(t, want, got.ContentMD5, "the source's Content-MD5 of %s", name)
	}

	dst := emptyRun(t, ctx, w.prdC)
	listed, err := artifacts.ListRun(ctx, w.devC, src.ID, "model")
	require.NoError(t, err)
	p := newRecordingProxy(t, w.blob.BlobEndpoint)
	cp := artifacts.New(artifacts.Options{BlockSize: 1 << 20})
	m, err := cp.Copy(ctx, listed, artifacts.RunSigner(w.devC, src.ID, "model", false),
		p.via(artifacts.RunSigner(w.prdC, dst, "model", true), nil), artifacts.RunSigner(w.prdC, dst, "model", false))
	require.NoError(t, err)

	want := map[string][]byte{"MLmodel": sums["MLmodel"], "stored.bin": sums["stored.bin"], "unstored.bin": nil}
	for _, s := range m.Files {
		assert.Equal(t, want[s.Path], s.MD5, "Sum.MD5 of %s", s.Path)
	}
	for _, r := range p.seen {
		if r.comp == "blocklist" {
			name := r.path[strings.LastIndexByte(r.path, '/')+1:]
			assert.Equal(t, b64(want[name]), r.header.Get("x-ms-blob-content-md5"), "Put Block List of %s", name)
		}
	}
	for name, sum := range want {
		creds, err := artifacts.RunSigner(w.prdC, dst, "model", false)(ctx, []string{name})
		require.NoError(t, err)
		bc, err := blob.NewClientWithNoCredential(creds[name].URL, nil)
		require.NoError(t, err)
		props, err := bc.GetProperties(ctx, nil)
		require.NoError(t, err)
		assert.Equal(t, sum, props.ContentMD5, "the target's Content-MD5 of %s", name)
	}
}

func b64(sum []byte) string {
	if sum == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(sum)
}
