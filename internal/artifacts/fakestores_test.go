package artifacts_test

import (
	"context"
	"crypto/md5" //nolint:gosec // the stores compute what S3, GCS and ADLS compute
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/testworld/artifactstest"
)

// Fake object stores that speak the wire protocol of the signed URLs
// Databricks hands out for AWS, GCP and ADLS Gen2 accounts
// (ArtifactCredentialType in MLflow's databricks_artifacts.proto), enforce
// what the real services enforce, and record every request. Files under
// /src/ are sources, generated as they are read; files under /dst/ are
// written by the code under test.

// seen is one request as the store received it.
type seen struct {
	method, path string
	query        map[string]string
	header       http.Header
	length       int64 // Content-Length (-1: none)
	chunked      bool
}

// object is a written file: its bytes (when the store keeps them), size and
// sums.
type object struct {
	data       []byte
	size       int64
	md5, sha   []byte
	first      byte
	contentMD5 string  // ADLS: the x-ms-content-md5 given at flush
	chunks     []chunk // ADLS: the appends the file was flushed from
}

// chunk is one ADLS append: where, how long, its SHA-256.
type chunk struct {
	position, size int64
	sha            string
}

// store is what both fakes share: sources, written objects, the request log.
type store struct {
	srv      *httptest.Server
	keep     bool // keep written bytes (off for memory tests)
	required map[string]string

	// storedMD5 names the sources that answer a Content-MD5 (a stored
	// property, as Azure's Get Blob and DFS Path - Read answer it).
	storedMD5 map[string]bool

	mu       sync.Mutex
	sources  map[string]artifactstest.Source
	objects  map[string]*object
	requests []seen
}

func newStore(t *testing.T, keep bool, required map[string]string, handler func(st *store) http.HandlerFunc) *store {
	return newStoreOn(t, httptest.NewServer, keep, required, handler)
}

// newStoreOn starts the store with start (httptest.NewServer, or
// NewTLSServer for a store reached through https:// URLs).
func newStoreOn(t *testing.T, start func(http.Handler) *httptest.Server, keep bool, required map[string]string, handler func(st *store) http.HandlerFunc) *store {
	st := &store{keep: keep, required: required, storedMD5: map[string]bool{}, sources: map[string]artifactstest.Source{}, objects: map[string]*object{}}
	st.srv = start(handler(st))
	t.Cleanup(st.srv.Close)
	return st
}

func (st *store) record(r *http.Request) {
	q := map[string]string{}
	for k, v := range r.URL.Query() {
		q[k] = v[0]
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.requests = append(st.requests, seen{method: r.Method, path: r.URL.Path, query: q, header: r.Header.Clone(),
		length: r.ContentLength, chunked: len(r.TransferEncoding) > 0})
}

// log returns the requests so far, for one path when path is not empty.
func (st *store) log(path string) []seen {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []seen
	for _, s := range st.requests {
		if path == "" || s.path == path {
			out = append(out, s)
		}
	}
	return out
}

func (st *store) object(path string) *object {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.objects[path]
}

// addSources makes files readable under /src/.
func (st *store) addSources(files []artifactstest.Source) []artifacts.File {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []artifacts.File
	for _, f := range files {
		st.sources["/src/"+f.Path] = f
		out = append(out, artifacts.File{Path: f.Path, Size: f.Size})
	}
	return out
}

// serveSource answers a GET of a source, generated as it is sent.
func (st *store) serveSource(w http.ResponseWriter, r *http.Request) bool {
	st.mu.Lock()
	f, ok := st.sources[r.URL.Path]
	st.mu.Unlock()
	if !ok || r.Method != http.MethodGet {
		return false
	}
	w.Header().Set("Content-Length", strconv.FormatInt(f.Size, 10))
	if st.storedMD5[f.Path] {
		w.Header().Set("Content-MD5", base64.StdEncoding.EncodeToString(sumOf(md5.New(), f.Open()))) //nolint:gosec // see import
	}
	_, _ = io.Copy(w, f.Open())
	return true
}

// missingHeader names a header the signature covers that the request lacks.
func (st *store) missingHeader(r *http.Request) string {
	for k, v := range st.required {
		if r.Header.Get(k) != v {
			return k
		}
	}
	return ""
}

// sums reads a request body, returning its length and sums (and bytes when
// kept).
func (st *store) sums(r *http.Request) (*object, error) {
	o := &object{}
	m, s := md5.New(), sha256.New() //nolint:gosec // see import
	var kept strings.Builder
	w := io.MultiWriter(m, s)
	if st.keep {
		w = io.MultiWriter(m, s, &kept)
	}
	first := &firstByte{}
	n, err := io.Copy(io.MultiWriter(w, first), r.Body)
	if err != nil {
		return nil, err
	}
	o.size, o.md5, o.sha, o.first, o.data = n, m.Sum(nil), s.Sum(nil), first.b, []byte(kept.String())
	return o, nil
}

type firstByte struct {
	b    byte
	seen bool
}

func (f *firstByte) Write(p []byte) (int, error) {
	if !f.seen && len(p) > 0 {
		f.b, f.seen = p[0], true
	}
	return len(p), nil
}

func sumOf(h hash.Hash, r io.Reader) []byte {
	_, _ = io.Copy(h, r)
	return h.Sum(nil)
}

// --- AWS S3 and GCS presigned URLs ----------------------------------------

// objectStore is S3 (kind AWSPresigned) or GCS (GCPSigned) behind presigned
// URLs: a PUT with an exact Content-Length (S3 refuses chunked bodies), the
// signed headers present, answered with the object's MD5 (S3 ETag, GCS
// x-goog-hash); a presigned GET URL does not allow HEAD.
type objectStore struct {
	*store
	kind     artifacts.Kind
	failPUTs int    // answer the next PUTs 503 SlowDown (after reading them)
	failGETs int    // answer the next GETs of written objects 503 SlowDown
	badETag  bool   // answer an ETag that is not the object's MD5
	sse      string // x-amz-server-side-encryption of the answers
	signed   int    // signatures handed out
}

func newObjectStore(t *testing.T, kind artifacts.Kind, keep bool, required map[string]string) *objectStore {
	ob := &objectStore{kind: kind}
	ob.store = newStore(t, keep, required, func(st *store) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			st.record(r)
			ob.serve(w, r)
		}
	})
	return ob
}

func (ob *objectStore) sigParam() string {
	if ob.kind == artifacts.GCPSigned {
		return "X-Goog-Signature"
	}
	return "X-Amz-Signature"
}

func (ob *objectStore) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get(ob.sigParam()) == "" {
		http.Error(w, "AccessDenied: no signature", http.StatusForbidden)
		return
	}
	if ob.serveSource(w, r) {
		return
	}
	switch r.Method {
	case http.MethodPut:
		ob.put(w, r)
	case http.MethodGet:
		ob.get(w, r)
	default: // the URL is signed for one method
		http.Error(w, "SignatureDoesNotMatch", http.StatusForbidden)
	}
}

func (ob *objectStore) put(w http.ResponseWriter, r *http.Request) {
	switch {
	case len(r.TransferEncoding) > 0:
		http.Error(w, "NotImplemented: Transfer-Encoding", http.StatusNotImplemented)
		return
	case r.ContentLength < 0:
		http.Error(w, "MissingContentLength", http.StatusLengthRequired)
		return
	case ob.missingHeader(r) != "":
		http.Error(w, "SignatureDoesNotMatch: "+ob.missingHeader(r), http.StatusForbidden)
		return
	}
	o, err := ob.sums(r)
	if err != nil || o.size != r.ContentLength {
		http.Error(w, "IncompleteBody", http.StatusBadRequest)
		return
	}
	ob.mu.Lock()
	fail := ob.failPUTs > 0
	if fail {
		ob.failPUTs--
	} else {
		ob.objects[r.URL.Path] = o
	}
	ob.mu.Unlock()
	if fail {
		http.Error(w, "SlowDown", http.StatusServiceUnavailable)
		return
	}
	ob.hashHeaders(w, o)
	w.WriteHeader(http.StatusOK)
}

func (ob *objectStore) hashHeaders(w http.ResponseWriter, o *object) {
	switch ob.kind {
	case artifacts.GCPSigned:
		w.Header().Add("X-Goog-Hash", "crc32c=AAAAAA==")
		w.Header().Add("X-Goog-Hash", "md5="+base64.StdEncoding.EncodeToString(o.md5))
	default:
		etag := hex.EncodeToString(o.md5)
		if ob.badETag || ob.sse != "" {
			etag = hex.EncodeToString(o.sha[:16])
		}
		w.Header().Set("ETag", `"`+etag+`"`)
		if ob.sse != "" {
			w.Header().Set("X-Amz-Server-Side-Encryption", ob.sse)
		}
	}
}

// get answers a whole object, or the first byte for Range: bytes=0-0.
func (ob *objectStore) get(w http.ResponseWriter, r *http.Request) {
	ob.mu.Lock()
	fail := ob.failGETs > 0
	if fail {
		ob.failGETs--
	}
	ob.mu.Unlock()
	if fail {
		http.Error(w, "SlowDown", http.StatusServiceUnavailable)
		return
	}
	o := ob.object(r.URL.Path)
	if o == nil {
		http.Error(w, "NoSuchKey", http.StatusNotFound)
		return
	}
	ob.hashHeaders(w, o)
	if rg := r.Header.Get("Range"); rg != "" {
		if rg != "bytes=0-0" {
			http.Error(w, "unexpected range "+rg, http.StatusBadRequest)
			return
		}
		if o.size == 0 {
			w.Header().Set("Content-Range", "bytes */0")
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-0/%d", o.size))
		w.Header().Set("Content-Length", "1")
		w.WriteHeader(http.StatusPartialContent)
		_, _ = w.Write([]byte{o.first})
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(o.size, 10))
	_, _ = w.Write(o.data)
}

// signers hand out a fresh signature per call, for reading the sources and
// for writing and reading back /dst/, with the signed headers on writes.
func (ob *objectStore) signers() (src, dst, check artifacts.Signer) {
	sign := func(prefix, what string, headers map[string]string) artifacts.Signer {
		return func(_ context.Context, paths []string) (map[string]artifacts.Credential, error) {
			ob.mu.Lock()
			ob.signed++
			n := ob.signed
			ob.mu.Unlock()
			out := map[string]artifacts.Credential{}
			for _, p := range paths {
				out[p] = artifacts.Credential{Path: p, Kind: ob.kind, Headers: headers,
					URL: fmt.Sprintf("%s/%s/%s?X-Expires=900&%s=%s-%d", ob.srv.URL, prefix, p, ob.sigParam(), what, n)}
			}
			return out, nil
		}
	}
	return sign("src", "read", nil), sign("dst", "write", ob.required), sign("dst", "read", nil)
}

// --- ADLS Gen2 (DFS REST) -------------------------------------------------

// dfsStore is the ADLS Gen2 DFS endpoint behind SAS URLs
// (https://learn.microsoft.com/rest/api/storageservices/datalakestoragegen2/path):
// PUT ?resource=file creates (or truncates) a file; PATCH
// ?action=append&position=N stages data at N (Content-MD5 checked);
// PATCH ?action=flush&position=N commits the data staged from 0 to N, which
// must be contiguous, storing x-ms-content-md5 as the file's Content-MD5;
// HEAD (Get Properties) and GET (Read) serve flushed files.
//
// The account has a hierarchical namespace, as Unity Catalog's model storage
// does: every folder of a file is a directory of its own. The Blob endpoint's
// List Blobs (GET /{container}?restype=container&comp=list, flat) answers each
// directory as an entry of 0 bytes with <ResourceType>directory</ResourceType>
// and each file with <ResourceType>file</ResourceType> (the ResourceType of
// BlobProperties in List Blobs,
// https://learn.microsoft.com/rest/api/storageservices/list-blobs, and
// azblob internal/generated/zz_models.go; recorded HNS listings show the
// directory entries), and a read of a directory answers 0 bytes with
// x-ms-meta-hdi_isfolder: true.
type dfsStore struct {
	*store
	// failAppend, if set, decides whether an append fails with 500 (before
	// its data is kept).
	failAppend func(path string, position int64) bool
	// overlap, when set, holds the first append until a second is in
	// flight (or a second passes), so that appends in parallel are seen.
	overlap bool

	pageSize    int // paths per page of Path - List
	staged      map[string]map[int64]*object
	keys        map[string]string // path → SHA-256 of the customer-provided key it was created with
	inflight    int
	maxInflight int
	second      chan struct{}
	secondOnce  sync.Once
}

// newDFSStore starts the store; handed are the headers it hands out with the
// write and read URLs of /dst/ (signers).
func newDFSStore(t *testing.T, keep bool, handed map[string]string) *dfsStore {
	return newDFSStoreOn(t, httptest.NewServer, keep, handed)
}

func newDFSStoreOn(t *testing.T, start func(http.Handler) *httptest.Server, keep bool, handed map[string]string) *dfsStore {
	ds := &dfsStore{staged: map[string]map[int64]*object{}, keys: map[string]string{}, second: make(chan struct{}), pageSize: 2}
	ds.store = newStoreOn(t, start, keep, handed, func(st *store) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			st.record(r)
			ds.serve(w, r)
		}
	})
	return ds
}

func dfsError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("x-ms-error-code", code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"error":{"code":%q,"message":"fake DFS"}}`, code)
}

func (ds *dfsStore) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("sig") == "" {
		dfsError(w, http.StatusForbidden, "AuthenticationFailed")
		return
	}
	if r.Method == http.MethodGet && q.Get("comp") == "list" && q.Get("restype") == "container" {
		if q.Get("sr") == "d" {
			// A directory-scoped SAS names a directory; List Blobs is
			// an operation on the container, which no source says such
			// a SAS authorizes: refused here (listDFS in prefix.go).
			dfsError(w, http.StatusForbidden, "AuthorizationResourceTypeMismatch")
			return
		}
		ds.listBlobs(w, r)
		return
	}
	if r.Method == http.MethodGet && q.Get("resource") == "filesystem" {
		ds.listPaths(w, r)
		return
	}
	if ds.serveSource(w, r) || ds.serveDirectory(w, r) {
		return
	}
	if r.Method == http.MethodPut || r.Method == http.MethodPatch {
		if r.Header.Get("x-ms-version") == "" {
			dfsError(w, http.StatusBadRequest, "MissingRequiredHeader")
			return
		}
		if len(r.TransferEncoding) > 0 || r.ContentLength < 0 {
			dfsError(w, http.StatusLengthRequired, "MissingContentLengthHeader")
			return
		}
	}
	if ds.wrongKey(r) {
		dfsError(w, http.StatusConflict, "BlobUsesCustomerSpecifiedEncryption")
		return
	}
	switch {
	case r.Method == http.MethodPut && q.Get("resource") == "file":
		ds.create(w, r)
	case r.Method == http.MethodPatch && q.Get("action") == "append":
		ds.append(w, r)
	case r.Method == http.MethodPatch && q.Get("action") == "flush":
		ds.flush(w, r)
	case r.Method == http.MethodHead || r.Method == http.MethodGet:
		ds.read(w, r)
	default:
		dfsError(w, http.StatusBadRequest, "InvalidQueryParameterValue")
	}
}

func (ds *dfsStore) create(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		dfsError(w, http.StatusBadRequest, "InvalidInput")
		return
	}
	ds.mu.Lock()
	ds.staged[r.URL.Path] = map[int64]*object{}
	delete(ds.objects, r.URL.Path)
	ds.keys[r.URL.Path] = r.Header.Get("x-ms-encryption-key-sha256")
	ds.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

// wrongKey reports a request to a file created with a customer-provided key
// (x-ms-encryption-key, -key-sha256, -algorithm) that does not carry the same
// key: the data is encrypted with it, and every later write and read of the
// file must provide it (Azure Storage, "Provide an encryption key on a
// request to Blob storage"; the key headers of Path - Update and Path - Read;
// error code BlobUsesCustomerSpecifiedEncryption in bloberror). The create
// itself sets the key.
func (ds *dfsStore) wrongKey(r *http.Request) bool {
	if r.Method == http.MethodPut && r.URL.Query().Get("resource") == "file" {
		return false
	}
	ds.mu.Lock()
	key := ds.keys[r.URL.Path]
	ds.mu.Unlock()
	return key != "" && r.Header.Get("x-ms-encryption-key-sha256") != key
}

func position(r *http.Request) (int64, bool) {
	p, err := strconv.ParseInt(r.URL.Query().Get("position"), 10, 64)
	return p, err == nil && p >= 0
}

func (ds *dfsStore) append(w http.ResponseWriter, r *http.Request) {
	pos, ok := position(r)
	if !ok {
		dfsError(w, http.StatusBadRequest, "InvalidQueryParameterValue")
		return
	}
	ds.mu.Lock()
	_, exists := ds.staged[r.URL.Path]
	ds.inflight++
	ds.maxInflight = max(ds.maxInflight, ds.inflight)
	n := ds.inflight
	ds.mu.Unlock()
	defer func() {
		ds.mu.Lock()
		ds.inflight--
		ds.mu.Unlock()
	}()
	if ds.overlap {
		if n >= 2 {
			ds.secondOnce.Do(func() { close(ds.second) })
		}
		select {
		case <-ds.second:
		case <-time.After(time.Second):
		}
	}
	if !exists {
		dfsError(w, http.StatusNotFound, "PathNotFound")
		return
	}
	o, err := ds.sums(r)
	switch {
	case err != nil || o.size != r.ContentLength:
		dfsError(w, http.StatusBadRequest, "InvalidInput")
		return
	case r.Header.Get("Content-MD5") != "" && r.Header.Get("Content-MD5") != base64.StdEncoding.EncodeToString(o.md5):
		dfsError(w, http.StatusBadRequest, "Md5Mismatch")
		return
	case ds.failAppend != nil && ds.failAppend(r.URL.Path, pos):
		dfsError(w, http.StatusInternalServerError, "InternalError")
		return
	}
	ds.mu.Lock()
	if st, ok := ds.staged[r.URL.Path]; ok {
		st[pos] = o
	}
	ds.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// flush commits the staged data from 0 to position, which must be
// contiguous.
func (ds *dfsStore) flush(w http.ResponseWriter, r *http.Request) {
	end, ok := position(r)
	if !ok || r.ContentLength != 0 {
		dfsError(w, http.StatusBadRequest, "InvalidQueryParameterValue")
		return
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	staged, exists := ds.staged[r.URL.Path]
	if !exists {
		dfsError(w, http.StatusNotFound, "PathNotFound")
		return
	}
	positions := make([]int64, 0, len(staged))
	for p := range staged {
		positions = append(positions, p)
	}
	sort.Slice(positions, func(i, j int) bool { return positions[i] < positions[j] })
	file := &object{contentMD5: r.Header.Get("x-ms-content-md5")}
	var at int64
	for _, p := range positions {
		if p != at {
			dfsError(w, http.StatusBadRequest, "InvalidFlushPosition")
			return
		}
		c := staged[p]
		if at == 0 && c.size > 0 {
			file.first = c.first
		}
		file.data = append(file.data, c.data...)
		file.chunks = append(file.chunks, chunk{position: p, size: c.size, sha: hex.EncodeToString(c.sha)})
		at += c.size
	}
	if at != end {
		dfsError(w, http.StatusBadRequest, "InvalidFlushPosition")
		return
	}
	file.size = end
	if ds.keep {
		file.md5 = sumOf(md5.New(), strings.NewReader(string(file.data))) //nolint:gosec // see import
		file.sha = sumOf(sha256.New(), strings.NewReader(string(file.data)))
	}
	ds.objects[r.URL.Path] = file
	delete(ds.staged, r.URL.Path)
	w.WriteHeader(http.StatusOK)
}

func (ds *dfsStore) read(w http.ResponseWriter, r *http.Request) {
	o := ds.object(r.URL.Path)
	if o == nil {
		dfsError(w, http.StatusNotFound, "PathNotFound")
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(o.size, 10))
	if o.contentMD5 != "" {
		w.Header().Set("Content-MD5", o.contentMD5)
	}
	if r.Method == http.MethodGet {
		_, _ = w.Write(o.data)
	}
}

// paths is every path of the account, files and their directories, with
// whether each is a directory and its size, sorted as List Blobs sorts.
func (ds *dfsStore) paths() []hnsPath {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	seen := map[string]hnsPath{}
	add := func(p string, size int64) {
		seen[p] = hnsPath{name: p, size: size}
		for dir := path.Dir(p); dir != "/" && dir != "."; dir = path.Dir(dir) {
			seen[dir] = hnsPath{name: dir, dir: true}
		}
	}
	for p, f := range ds.sources {
		add(p, f.Size)
	}
	for p, o := range ds.objects {
		add(p, o.size)
	}
	out := make([]hnsPath, 0, len(seen))
	for _, p := range seen {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

type hnsPath struct {
	name string // from the root of the account: /container/...
	size int64
	dir  bool
}

// listBlobs answers a flat List Blobs of one container, in one page.
func (ds *dfsStore) listBlobs(w http.ResponseWriter, r *http.Request) {
	container := strings.Trim(r.URL.Path, "/")
	if container == "" || strings.Contains(container, "/") {
		dfsError(w, http.StatusBadRequest, "InvalidUri")
		return
	}
	prefix := r.URL.Query().Get("prefix")
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ContainerName=%q><Blobs>`, container)
	for _, p := range ds.paths() {
		name, ok := strings.CutPrefix(p.name, "/"+container+"/")
		if !ok || !strings.HasPrefix(name, prefix) {
			continue
		}
		kind := "file"
		if p.dir {
			kind = "directory"
		}
		b.WriteString("<Blob><Name>")
		_ = xml.EscapeText(&b, []byte(name))
		fmt.Fprintf(&b, "</Name><Properties><Content-Length>%d</Content-Length><BlobType>BlockBlob</BlobType><ResourceType>%s</ResourceType></Properties></Blob>", p.size, kind)
	}
	b.WriteString("</Blobs><NextMarker /></EnumerationResults>")
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, b.String())
}

// listPaths answers ADLS Gen2 Path - List
// (https://learn.microsoft.com/rest/api/storageservices/datalakestoragegen2/path/list)
// of one filesystem: recursive is required; directory, when given, must be
// a directory ("If the directory does not exist, an error occurs"); the
// answer is {"paths": [...]} with contentLength and isDirectory written as
// strings, ds.pageSize paths a page, continued through x-ms-continuation.
func (ds *dfsStore) listPaths(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fs := strings.Trim(r.URL.Path, "/")
	recursive, err := strconv.ParseBool(q.Get("recursive"))
	if fs == "" || strings.Contains(fs, "/") || err != nil {
		dfsError(w, http.StatusBadRequest, "InvalidQueryParameterValue")
		return
	}
	root := "/" + fs
	if d := strings.Trim(q.Get("directory"), "/"); d != "" {
		root += "/" + d
	}
	var matched []hnsPath
	isDir := root == "/"+fs
	for _, p := range ds.paths() {
		isDir = isDir || (p.dir && p.name == root)
		rest, ok := strings.CutPrefix(p.name, root+"/")
		if ok && (recursive || !strings.Contains(rest, "/")) {
			matched = append(matched, p)
		}
	}
	if !isDir {
		dfsError(w, http.StatusNotFound, "PathNotFound")
		return
	}
	start := 0
	if c := q.Get("continuation"); c != "" {
		if start, err = strconv.Atoi(c); err != nil || start > len(matched) {
			dfsError(w, http.StatusBadRequest, "InvalidQueryParameterValue")
			return
		}
	}
	end := min(start+ds.pageSize, len(matched))
	if end < len(matched) {
		w.Header().Set("x-ms-continuation", strconv.Itoa(end))
	}
	var b strings.Builder
	b.WriteString(`{"paths":[`)
	for i, p := range matched[start:end] {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name":%q,"isDirectory":"%t","contentLength":"%d"}`, strings.TrimPrefix(p.name, "/"+fs+"/"), p.dir, p.size)
	}
	b.WriteString("]}")
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, b.String())
}

// serveDirectory answers a read of a directory: 0 bytes, marked as a folder.
func (ds *dfsStore) serveDirectory(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, p := range ds.paths() {
		if p.dir && p.name == r.URL.Path {
			w.Header().Set("x-ms-meta-hdi_isfolder", "true")
			w.Header().Set("x-ms-resource-type", "directory")
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
			return true
		}
	}
	return false
}

// signers hand out SAS URLs on the DFS endpoint, a fresh signature per call.
func (ds *dfsStore) signers() (src, dst, check artifacts.Signer) {
	var mu sync.Mutex
	calls := 0
	sign := func(prefix string, headers map[string]string) artifacts.Signer {
		return func(_ context.Context, paths []string) (map[string]artifacts.Credential, error) {
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			out := map[string]artifacts.Credential{}
			for _, p := range paths {
				out[p] = artifacts.Credential{Path: p, Kind: artifacts.AzureADLSSAS, Headers: headers,
					URL: fmt.Sprintf("%s/%s/%s?sv=2023-11-03&sr=b&sp=rcw&sig=sig%d", ds.srv.URL, prefix, p, n)}
			}
			return out, nil
		}
	}
	return sign("src", nil), sign("dst", ds.required), sign("dst", ds.required)
}
