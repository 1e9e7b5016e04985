package artifacts_test

import (
	"context"
	"crypto/md5" //nolint:gosec // the MD5 the stores keep
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/testworld/artifactstest"
)

// The ADLS Gen2 and presigned (AWS S3, GCS) writers against fake stores
// that speak each service's wire protocol (fakestores_test.go).

func content(t *testing.T, f artifactstest.Source) []byte {
	t.Helper()
	data, err := io.ReadAll(f.Open())
	require.NoError(t, err)
	return data
}

func hexSHA(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func b64MD5(data []byte) string {
	s := md5.Sum(data) //nolint:gosec // see import
	return base64.StdEncoding.EncodeToString(s[:])
}

// writes is the PUT and PATCH requests of a log.
func writes(log []seen) []seen {
	var out []seen
	for _, s := range log {
		if s.method == http.MethodPut || s.method == http.MethodPatch {
			out = append(out, s)
		}
	}
	return out
}

// handedIn names the handed-out headers a request carried, with their values.
func handedIn(h http.Header, handed map[string]string) []string {
	var out []string
	for k, v := range handed {
		if h.Get(k) == v {
			out = append(out, k)
		}
	}
	return out
}

// allocated is how many bytes fn allocates on the heap.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// cpk are the headers of a customer-provided encryption key: an AES-256 key
// made for each run, and its SHA-256, both base64, as Azure Blob Storage
// takes them.
var cpk = func() map[string]string {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand's Read never fails
	sum := sha256.Sum256(key)
	return map[string]string{
		"x-ms-encryption-key":        base64.StdEncoding.EncodeToString(key),
		"x-ms-encryption-key-sha256": base64.StdEncoding.EncodeToString(sum[:]),
		"x-ms-encryption-algorithm":  "AES256",
	}
}()

// handedToADLS are headers a server might hand out with ADLS Gen2 URLs: a
// customer-provided key (every DFS request of the file must carry it), the
// umask of Path - Create, an encryption scope and a metadata header that no
// DFS request takes.
func handedToADLS() map[string]string {
	h := map[string]string{"x-ms-umask": "0027", "x-ms-encryption-scope": "brickferry", "x-ms-meta-team": "churn"}
	for k, v := range cpk {
		h[k] = v
	}
	return h
}

func TestADLSGen2WriterSpeaksDFS(t *testing.T) {
	handed := handedToADLS()
	ds := newDFSStore(t, true, handed)
	const bs = 1 << 20
	sources := []artifactstest.Source{
		artifactstest.Bytes("empty.txt", nil),
		artifactstest.Bytes("MLmodel", []byte("flavors:\n  python_function: {}\n")),
		artifactstest.Random("data/exact.bin", bs, 1),
		artifactstest.Random("data/model.bin", 5*bs+bs/2, 2),
		artifactstest.Random("data/stored.bin", 2*bs+3, 5),
	}
	ds.storedMD5["data/stored.bin"] = true
	files := ds.addSources(sources)
	src, dst, check := ds.signers()
	m, err := artifacts.New(artifacts.Options{BlockSize: bs, Buffers: 3}).Copy(ctxFor(t, 30*time.Second), files, src, dst, check)
	require.NoError(t, err)
	assert.Equal(t, int64(8*bs+bs/2+34), m.Bytes)

	for _, f := range sources {
		t.Run(f.Path, func(t *testing.T) {
			data := content(t, f)
			path := "/dst/" + f.Path
			o := ds.object(path)
			require.NotNil(t, o, "the file was flushed")
			assert.Equal(t, hexSHA(data), hexSHA(o.data), "the file holds the source's bytes")
			// The file's Content-MD5: computed for a file that goes in one
			// append, the source's for a larger one that has one, none
			// otherwise (not validated by the service: storage.go).
			wantMD5 := b64MD5(data)
			if f.Size > bs && !ds.storedMD5[f.Path] {
				wantMD5 = ""
			}
			assert.Equal(t, wantMD5, o.contentMD5, "the flush sets the file's Content-MD5")

			// Create, the appends, flush at the total length; then the check.
			log := ds.log(path)
			w := writes(log)
			require.GreaterOrEqual(t, len(w), 2)
			assert.Equal(t, http.MethodPut, w[0].method)
			assert.Equal(t, "file", w[0].query["resource"])
			assert.Zero(t, w[0].length)
			flush := w[len(w)-1]
			assert.Equal(t, "flush", flush.query["action"])
			assert.Equal(t, itoa(f.Size), flush.query["position"])
			assert.Zero(t, flush.length)
			assert.Equal(t, wantMD5, flush.header.Get("x-ms-content-md5"))
			want := map[string]string{} // position → Content-MD5 of the block
			for off := int64(0); off < f.Size; off += bs {
				want[itoa(off)] = b64MD5(data[off:min(off+bs, f.Size)])
			}
			got := map[string]string{}
			for _, a := range w[1 : len(w)-1] {
				assert.Equal(t, "append", a.query["action"])
				got[a.query["position"]] = a.header.Get("Content-MD5")
			}
			assert.Equal(t, want, got, "one append per block at its position, with its transactional MD5")
			for _, s := range w {
				assert.NotEmpty(t, s.header.Get("x-ms-version"))
				assert.Equal(t, "rcw", s.query["sp"], "the SAS query is kept")
				assert.False(t, s.chunked)
			}
			// Each request carries the handed-out headers its operation
			// takes, as MLflow filters them (mlflow/azure/client.py):
			// Path - Create and flush the create list, append the update
			// list; the check (a read) all of them.
			perOp := map[string][]string{
				"create": {"x-ms-encryption-key", "x-ms-encryption-key-sha256", "x-ms-encryption-algorithm", "x-ms-umask"},
				"append": {"x-ms-encryption-key", "x-ms-encryption-key-sha256", "x-ms-encryption-algorithm"},
				"flush":  {"x-ms-encryption-key", "x-ms-encryption-key-sha256", "x-ms-encryption-algorithm", "x-ms-umask"},
				"check":  {"x-ms-encryption-key", "x-ms-encryption-key-sha256", "x-ms-encryption-algorithm", "x-ms-umask", "x-ms-encryption-scope", "x-ms-meta-team"},
			}
			for _, s := range log {
				op := s.query["action"]
				switch {
				case s.method == http.MethodPut:
					op = "create"
				case s.method == http.MethodHead:
					op = "check"
				}
				assert.ElementsMatch(t, perOp[op], handedIn(s.header, handed), "%s %v", s.method, s.query)
			}
			assert.Equal(t, http.MethodHead, log[len(log)-1].method, "the written file is checked")
		})
	}
}

// TestCopyFromAHierarchicalNamespaceCopiesFilesOnly: Unity Catalog model
// storage is ADLS Gen2 with a hierarchical namespace, where every folder is a
// directory of its own; an MLflow model logged on Databricks has a metadata/
// folder. The copy has exactly the files, and no 0-byte file named after a
// folder, whether the location is listed on the Blob endpoint (List Blobs
// answers each folder as a 0-byte entry of ResourceType directory) or, for
// an abfss:// location with a directory-scoped SAS, through the DFS endpoint
// (Path - List, one directory at a time, as MLflow's client lists it).
func TestCopyFromAHierarchicalNamespaceCopiesFilesOnly(t *testing.T) {
	sources := []artifactstest.Source{
		artifactstest.Bytes("model/MLmodel", []byte("flavors:\n  python_function: {}\n")),
		artifactstest.Bytes("model/metadata/MLmodel", []byte("flavors:\n  python_function: {}\n")),
		artifactstest.Bytes("model/metadata/requirements.txt", []byte("mlflow\n")),
		artifactstest.Random("model/data/weights/part-0.bin", 3000, 1),
	}
	want := []artifacts.File{
		{Path: "MLmodel", Size: 31}, {Path: "data/weights/part-0.bin", Size: 3000},
		{Path: "metadata/MLmodel", Size: 31}, {Path: "metadata/requirements.txt", Size: 7},
	}
	cases := []struct {
		name   string
		start  func(http.Handler) *httptest.Server
		folder func(ds *dfsStore) string
		token  string
		listed string // the listing request's query marker
	}{
		{"blob endpoint, container SAS", httptest.NewServer, func(ds *dfsStore) string {
			// The store is at 127.0.0.1; "localhost" keeps the container as the
			// first segment of the path (an IP host would name the account there).
			return strings.Replace(ds.srv.URL, "127.0.0.1", "localhost", 1) + "/src/model"
		}, "?sv=2023-11-03&sr=c&sp=rl&sig=list", "comp"},
		{"abfss location, directory SAS", httptest.NewTLSServer, func(ds *dfsStore) string {
			return "abfss://src@" + strings.TrimPrefix(ds.srv.URL, "https://") + "/model"
		}, "?sv=2023-11-03&sr=d&sdd=1&sp=rl&sig=list", "resource"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := newDFSStoreOn(t, c.start, true, nil)
			ctx := ctxFor(t, 30*time.Second)
			ds.addSources(sources)
			cp := artifacts.New(artifacts.Options{HTTPClient: ds.srv.Client()})
			files, err := cp.ListPrefix(ctx, c.folder(ds), c.token)
			require.NoError(t, err)
			assert.Equal(t, want, files, "the listing has the files and none of the directories")
			lists := 0
			for _, s := range ds.log("") {
				if s.query[c.listed] != "" {
					lists++
				}
			}
			assert.Positive(t, lists)

			src := func(_ context.Context, paths []string) (map[string]artifacts.Credential, error) {
				out := map[string]artifacts.Credential{}
				for _, p := range paths {
					out[p] = artifacts.Credential{Path: p, Kind: artifacts.AzureADLSSAS, URL: ds.srv.URL + "/src/model/" + p + "?sig=read"}
				}
				return out, nil
			}
			_, dst, check := ds.signers()
			_, err = cp.Copy(ctx, files, src, dst, check)
			require.NoError(t, err)
			ds.mu.Lock()
			var written []string
			for p := range ds.objects {
				written = append(written, p)
			}
			ds.mu.Unlock()
			assert.ElementsMatch(t, []string{"/dst/MLmodel", "/dst/data/weights/part-0.bin", "/dst/metadata/MLmodel", "/dst/metadata/requirements.txt"}, written)
		})
	}
}

// failing answers 500 to the appends of path at position the first n
// times.
func failing(path string, at int64, n int) func(string, int64) bool {
	var mu sync.Mutex
	return func(p string, pos int64) bool {
		mu.Lock()
		defer mu.Unlock()
		if p == path && pos == at && n > 0 {
			n--
			return true
		}
		return false
	}
}

func TestADLSGen2WriterRetriesAFailedAppend(t *testing.T) {
	const bs = 1 << 20
	source := artifactstest.Random("model.bin", 4*bs+123, 3)
	copyWith := func(ds *dfsStore) []string {
		files := ds.addSources([]artifactstest.Source{source})
		src, dst, check := ds.signers()
		var mu sync.Mutex
		var retried []string
		cp := artifacts.New(artifacts.Options{BlockSize: bs, Buffers: 2, Backoff: func(int) time.Duration { return time.Millisecond },
			Retried: func(p string, _ int, err error) {
				mu.Lock()
				defer mu.Unlock()
				retried = append(retried, p+": "+err.Error())
			}})
		_, err := cp.Copy(ctxFor(t, 30*time.Second), files, src, dst, check)
		require.NoError(t, err)
		assert.Equal(t, hexSHA(content(t, source)), hexSHA(ds.object("/dst/model.bin").data))
		return retried
	}
	count := func(log []seen, pred func(seen) bool) (n int, sigs []string) {
		for _, s := range log {
			if pred(s) {
				n++
				sigs = append(sigs, s.query["sig"])
			}
		}
		return n, sigs
	}
	isCreate := func(s seen) bool { return s.query["resource"] == "file" }
	isThird := func(s seen) bool { return s.query["action"] == "append" && s.query["position"] == itoa(2*bs) }

	// One failed append is sent again, same position and bytes.
	ds := newDFSStore(t, true, nil)
	ds.failAppend = failing("/dst/model.bin", 2*bs, 1)
	assert.Empty(t, copyWith(ds), "the file is not started again")
	creates, _ := count(ds.log("/dst/model.bin"), isCreate)
	assert.Equal(t, 1, creates)
	appends, _ := count(ds.log("/dst/model.bin"), isThird)
	assert.Equal(t, 2, appends)

	// An append that keeps failing fails the attempt: the file starts again
	// from the beginning, with freshly signed URLs.
	ds = newDFSStore(t, true, nil)
	ds.failAppend = failing("/dst/model.bin", 2*bs, 3)
	retried := copyWith(ds)
	require.Len(t, retried, 1)
	assert.Contains(t, retried[0], "model.bin: ")
	assert.Contains(t, retried[0], "500")
	assert.NotContains(t, retried[0], "sig=", "the signature stays out of the message")
	creates, sigs := count(ds.log("/dst/model.bin"), isCreate)
	require.Equal(t, 2, creates)
	assert.NotEqual(t, sigs[0], sigs[1])
}

func TestADLSGen2WriterMemoryAndParallelismAreBounded(t *testing.T) {
	ds := newDFSStore(t, false, nil) // the store keeps sums only
	ds.overlap = true
	const bs, buffers = 1 << 20, 3
	source := artifactstest.Random("big.bin", 64<<20, 4)
	files := ds.addSources([]artifactstest.Source{source})
	src, dst, check := ds.signers()
	cp := artifacts.New(artifacts.Options{BlockSize: bs, Buffers: buffers})
	var err error
	alloc := allocated(func() { _, err = cp.Copy(ctxFor(t, 60*time.Second), files, src, dst, check) })
	require.NoError(t, err)
	t.Logf("64 MiB through 1 MiB appends: %.1f MiB allocated, %d appends in flight at most", float64(alloc)/(1<<20), ds.maxInflight)
	assert.Less(t, alloc, uint64(24<<20), "memory does not grow with the file")
	assert.LessOrEqual(t, ds.maxInflight, buffers, "no more appends in flight than buffers")
	assert.GreaterOrEqual(t, ds.maxInflight, 2, "appends go in parallel")

	o := ds.object("/dst/big.bin")
	require.NotNil(t, o)
	assert.Equal(t, int64(64<<20), o.size)
	data := content(t, source)
	assert.Empty(t, o.contentMD5, "a source that stores no MD5 gets none computed for it")
	require.Len(t, o.chunks, 64)
	for i, c := range o.chunks {
		assert.Equal(t, hexSHA(data[c.position:c.position+c.size]), c.sha, "block %d", i)
	}
}

// presigned are the two kinds of presigned URL and the headers their
// signatures may cover.
var presigned = []struct {
	kind    artifacts.Kind
	headers map[string]string
}{
	{artifacts.AWSPresigned, map[string]string{"x-amz-server-side-encryption": "AES256"}},
	{artifacts.GCPSigned, map[string]string{"Content-Type": "application/octet-stream"}},
}

func TestPresignedPutStreamsOneRequestPerFile(t *testing.T) {
	for _, p := range presigned {
		t.Run(string(p.kind), func(t *testing.T) {
			ob := newObjectStore(t, p.kind, true, p.headers)
			sources := []artifactstest.Source{
				artifactstest.Bytes("empty.txt", nil),
				artifactstest.Bytes("MLmodel", []byte("flavors: {}\n")),
				artifactstest.Random("data/model.bin", 9<<20+7, 5),
			}
			files := ob.addSources(sources)
			src, dst, check := ob.signers()
			_, err := artifacts.New(artifacts.Options{BlockSize: 1 << 20}).Copy(ctxFor(t, 30*time.Second), files, src, dst, check)
			require.NoError(t, err)
			for _, f := range sources {
				path := "/dst/" + f.Path
				w := writes(ob.log(path))
				require.Len(t, w, 1, "%s: one PUT, whatever the size", f.Path)
				assert.Equal(t, http.MethodPut, w[0].method)
				assert.Equal(t, f.Size, w[0].length, "an exact Content-Length")
				assert.False(t, w[0].chunked, "S3 refuses chunked bodies")
				for k, v := range p.headers {
					assert.Equal(t, v, w[0].header.Get(k), "the signed headers are sent")
				}
				assert.True(t, strings.HasPrefix(w[0].query[ob.sigParam()], "write-"))
				o := ob.object(path)
				require.NotNil(t, o)
				assert.Equal(t, hexSHA(content(t, f)), hexSHA(o.data))
				var checks []string
				for _, s := range ob.log(path) {
					if s.method != http.MethodPut {
						checks = append(checks, s.method+" "+s.header.Get("Range"))
					}
				}
				assert.Equal(t, []string{"GET bytes=0-0"}, checks, "checked with one byte of a GET (a presigned GET URL refuses HEAD)")
			}
		})
	}
}

func TestPresignedPutRetriesWithAFreshURL(t *testing.T) {
	ob := newObjectStore(t, artifacts.AWSPresigned, true, nil)
	ob.failPUTs = 1
	source := artifactstest.Random("model.bin", 3<<20, 6)
	files := ob.addSources([]artifactstest.Source{source})
	src, dst, check := ob.signers()
	retried := 0
	cp := artifacts.New(artifacts.Options{Backoff: func(int) time.Duration { return time.Millisecond }, Retried: func(string, int, error) { retried++ }})
	_, err := cp.Copy(ctxFor(t, 30*time.Second), files, src, dst, check)
	require.NoError(t, err)
	assert.Equal(t, 1, retried)
	w := writes(ob.log("/dst/model.bin"))
	require.Len(t, w, 2)
	assert.NotEqual(t, w[0].query["X-Amz-Signature"], w[1].query["X-Amz-Signature"], "the retry asks for a new signed URL")
	assert.Equal(t, hexSHA(content(t, source)), hexSHA(ob.object("/dst/model.bin").data))

	// A failed check is asked again; the file is not sent again.
	ob = newObjectStore(t, artifacts.AWSPresigned, true, nil)
	ob.failGETs = 1
	files = ob.addSources([]artifactstest.Source{source})
	src, dst, check = ob.signers()
	retried = 0
	_, err = cp.Copy(ctxFor(t, 30*time.Second), files, src, dst, check)
	require.NoError(t, err)
	assert.Zero(t, retried)
	assert.Len(t, writes(ob.log("/dst/model.bin")), 1)
	assert.Len(t, ob.log("/dst/model.bin"), 3, "PUT, the failed check, the check")
}

func TestPresignedPutChecksTheStoredMD5(t *testing.T) {
	source := artifactstest.Random("model.bin", 1<<20, 7)
	copyTo := func(ob *objectStore) error {
		files := ob.addSources([]artifactstest.Source{source})
		src, dst, check := ob.signers()
		cp := artifacts.New(artifacts.Options{Attempts: 2, Backoff: func(int) time.Duration { return time.Millisecond }})
		_, err := cp.Copy(ctxFor(t, 30*time.Second), files, src, dst, check)
		return err
	}
	// An S3 object whose ETag is not the MD5 of what was sent is refused.
	ob := newObjectStore(t, artifacts.AWSPresigned, true, nil)
	ob.badETag = true
	err := copyTo(ob)
	require.Error(t, err, "an S3 object whose ETag is not the MD5 of what was sent was taken as copied")
	assert.Contains(t, err.Error(), "ETag")
	assert.Len(t, writes(ob.log("/dst/model.bin")), 2, "tried again, then failed")

	// Under SSE-KMS the ETag is not an MD5 at all: the length is checked, the
	// ETag is not.
	ob = newObjectStore(t, artifacts.AWSPresigned, true, nil)
	ob.sse = "aws:kms"
	require.NoError(t, copyTo(ob))
}

func TestPresignedPutRefusesMoreThanOnePutCarries(t *testing.T) {
	ob := newObjectStore(t, artifacts.AWSPresigned, true, nil)
	src, dst, check := ob.signers()
	retried := 0
	cp := artifacts.New(artifacts.Options{Retried: func(string, int, error) { retried++ }})
	_, err := cp.Copy(ctxFor(t, 10*time.Second), []artifacts.File{{Path: "huge.bin", Size: 5<<30 + 1}}, src, dst, check)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "5 GiB")
	assert.Zero(t, retried, "not worth another attempt")
	assert.Empty(t, ob.log(""), "refused before reading or writing anything")
}

func TestPresignedPutMemoryIsBounded(t *testing.T) {
	ob := newObjectStore(t, artifacts.GCPSigned, false, nil) // the store keeps sums only
	source := artifactstest.Random("big.bin", 256<<20, 8)
	files := ob.addSources([]artifactstest.Source{source})
	src, dst, check := ob.signers()
	var err error
	alloc := allocated(func() {
		_, err = artifacts.New(artifacts.Options{}).Copy(ctxFor(t, 60*time.Second), files, src, dst, check)
	})
	require.NoError(t, err)
	t.Logf("256 MiB in one PUT: %.1f MiB allocated", float64(alloc)/(1<<20))
	assert.Less(t, alloc, uint64(16<<20), "the file is streamed, not held")
	o := ob.object("/dst/big.bin")
	require.NotNil(t, o)
	h := sha256.New()
	_, _ = io.Copy(h, source.Open())
	assert.Equal(t, hex.EncodeToString(h.Sum(nil)), hex.EncodeToString(o.sha))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestASourceLongerThanListedIsAnError: ADLS Gen2, S3 and GCS sources are
// read with a plain GET whose length nobody checks against the listing. A
// source with more bytes than were listed (rewritten after the listing) must
// fail the copy and the hash, not be cut silently to the listed length:
// in one request (a file up to a block), in blocks, and in one presigned PUT
// (where Go's transport refuses a body longer than its Content-Length before
// the copier's own check).
func TestASourceLongerThanListedIsAnError(t *testing.T) {
	const bs = 1 << 20
	const extra = 7
	sources := []artifactstest.Source{
		artifactstest.Random("small.bin", 1000, 11),     // one request
		artifactstest.Random("large.bin", 3*bs+5, 12),   // several blocks
		artifactstest.Random("exact.bin", bs+extra, 13), // one block when listed
	}
	listedShort := func(files []artifacts.File) []artifacts.File {
		out := append([]artifacts.File(nil), files...)
		for i := range out {
			out[i].Size -= extra
		}
		return out
	}
	opts := artifacts.Options{BlockSize: bs, Attempts: 2, Backoff: func(int) time.Duration { return time.Millisecond }}
	refused := func(t *testing.T, err error, f artifactstest.Source, what string) {
		t.Helper()
		require.Error(t, err, "%s: a source %d bytes longer than listed was cut to the listed length without an error", what, extra)
		assert.Contains(t, err.Error(), "source is longer than the "+itoa(f.Size-extra)+" bytes listed", what)
	}
	refusedByPut := func(t *testing.T, err error, f artifactstest.Source) {
		t.Helper()
		require.Error(t, err, "a source %d bytes longer than listed was cut to the listed length without an error", extra)
		assert.Contains(t, err.Error(), f.Path)
	}

	for _, f := range sources {
		t.Run("ADLS Gen2/"+f.Path, func(t *testing.T) {
			ds := newDFSStore(t, true, nil)
			files := listedShort(ds.addSources([]artifactstest.Source{f}))
			src, dst, check := ds.signers()
			_, err := artifacts.New(opts).Copy(ctxFor(t, 30*time.Second), files, src, dst, check)
			refused(t, err, f, "copy")
			assert.Nil(t, ds.object("/dst/"+f.Path), "no truncated file is flushed")
			_, err = artifacts.New(opts).Hash(ctxFor(t, 30*time.Second), files, src)
			refused(t, err, f, "hash")
		})
		for _, p := range presigned {
			t.Run(string(p.kind)+"/"+f.Path, func(t *testing.T) {
				ob := newObjectStore(t, p.kind, true, p.headers)
				files := listedShort(ob.addSources([]artifactstest.Source{f}))
				src, dst, check := ob.signers()
				_, err := artifacts.New(opts).Copy(ctxFor(t, 30*time.Second), files, src, dst, check)
				refusedByPut(t, err, f)
			})
		}
	}
}

// TestListPrefixRidesOutABusyStore: List Blobs answered 503 ServerBusy, 500
// or no answer is sent again, like every storage read; a store that stays
// down fails the listing with its answer.
func TestListPrefixRidesOutABusyStore(t *testing.T) {
	ds := newDFSStore(t, true, nil)
	ds.addSources([]artifactstest.Source{artifactstest.Bytes("model/MLmodel", []byte("flavors: {}\n"))})
	var lists atomic.Int32
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("comp") == "list" {
			switch n := lists.Add(1); {
			case down.Load() || n == 1:
				dfsError(w, http.StatusServiceUnavailable, "ServerBusy")
				return
			case n == 2:
				dfsError(w, http.StatusInternalServerError, "InternalError")
				return
			}
		}
		ds.serve(w, r)
	}))
	t.Cleanup(srv.Close)
	ctx := ctxFor(t, 30*time.Second)
	// An https folder is listed with List Blobs, with a container SAS.
	folder := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/src/model"
	cp := artifacts.New(artifacts.Options{Backoff: func(int) time.Duration { return time.Millisecond }})
	files, err := cp.ListPrefix(ctx, folder, "?sv=2023-11-03&sr=c&sp=rl&sig=list")
	require.NoError(t, err)
	assert.Equal(t, []artifacts.File{{Path: "MLmodel", Size: 12}}, files)
	assert.Equal(t, int32(3), lists.Load(), "503, 500, then the listing")

	down.Store(true)
	_, err = cp.ListPrefix(ctx, folder, "?sv=2023-11-03&sr=c&sp=rl&sig=list")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "503")
	assert.NotContains(t, err.Error(), "sig=list", "no signature in the message")
}

// TestABlockSourceEndingEarlyFailsAndFreesTheBuffers: a file written in
// blocks whose source ends before the listed length fails with that error
// (no flush: nothing half-written is committed), and every block buffer
// goes back to the pool: the same Copier, with one buffer, then copies the
// file whole (a lost buffer would leave it waiting until the context ends).
func TestABlockSourceEndingEarlyFailsAndFreesTheBuffers(t *testing.T) {
	const bs = 1 << 20
	ds := newDFSStore(t, true, nil)
	source := artifactstest.Random("model.bin", 5*bs+17, 6)
	files := ds.addSources([]artifactstest.Source{source})
	src, dst, check := ds.signers()
	cp := artifacts.New(artifacts.Options{BlockSize: bs, Buffers: 1, Attempts: 1})

	listed := []artifacts.File{{Path: files[0].Path, Size: files[0].Size + 3*bs}}
	_, err := cp.Copy(ctxFor(t, 30*time.Second), listed, src, dst, check)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "source ended before the "+itoa(listed[0].Size)+" bytes listed")
	assert.Nil(t, ds.object("/dst/model.bin"), "a file cut short is not flushed")

	m, err := cp.Copy(ctxFor(t, 10*time.Second), files, src, dst, check)
	require.NoError(t, err, "the buffers of the failed file came back to the pool")
	data := content(t, source)
	assert.Equal(t, hexSHA(data), m.Files[0].SHA256, "the digest is the SHA-256 of the whole file")
	assert.Equal(t, hexSHA(data), hexSHA(ds.object("/dst/model.bin").data))
}

// BenchmarkFileHashes measures the two hashes a copy may compute over every
// byte (docs/copy.md, docs/performance.md quote it): go test -run '^$'
// -bench FileHashes ./internal/artifacts/.
func BenchmarkFileHashes(b *testing.B) {
	block := make([]byte, 8<<20)
	for name, h := range map[string]func() hash.Hash{"MD5": md5.New, "SHA-256": sha256.New} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(block)))
			s := h()
			for b.Loop() {
				s.Write(block)
			}
		})
	}
}
