package emulator

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"golang.org/x/sync/errgroup"
)

// artifactStore holds the bytes behind MLflow run artifacts, workspace
// registry model versions and Unity Catalog model versions. Keys are
// slash-separated paths inside the workspace's storage.
type artifactStore interface {
	put(ctx context.Context, key string, data []byte) error
	get(ctx context.Context, key string) ([]byte, error)
	// copy copies one file inside the store without passing its bytes
	// through the emulator (a server-side copy where the store has one).
	copy(ctx context.Context, from, to string) error
	// list returns every file under prefix (recursively), keys relative to
	// nothing (full keys), sorted.
	list(ctx context.Context, prefix string) ([]storedFile, error)
	// remove deletes every file under prefix.
	remove(ctx context.Context, prefix string) error
	// signBlob returns a URL for one key that allows read (or create+write).
	signBlob(key string, write bool, expiry time.Time) (string, error)
	// signContainer returns the base URL of prefix and a SAS token that
	// allows read/write/list in the workspace's container.
	signContainer(prefix string, expiry time.Time) (baseURL, token string, err error)
}

type storedFile struct {
	key  string
	size int64
}

var errNoSigning = errors.New("this emulated workspace has no blob storage configured (emulator.Options.Blob), so it cannot hand out signed URLs")

func copyPrefix(ctx context.Context, s artifactStore, from, to string) (int, error) {
	files, err := s.list(ctx, from)
	if err != nil {
		return 0, err
	}
	// Databricks copies server-side, in the background; the emulator copies
	// inside the request, a few files at a time, with the store's own copy.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, f := range files {
		g.Go(func() error { return s.copy(gctx, f.key, to+strings.TrimPrefix(f.key, from)) })
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return len(files), nil
}

// memStore keeps artifacts in memory (Options.Blob nil).
type memStore struct {
	mu    sync.Mutex
	files map[string][]byte
}

func newMemStore() *memStore { return &memStore{files: map[string][]byte{}} }

func (m *memStore) put(_ context.Context, key string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[key] = slices.Clone(data)
	return nil
}

func (m *memStore) get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.files[key]
	if !ok {
		return nil, fmt.Errorf("artifact %s not found", key)
	}
	return slices.Clone(d), nil
}

func (m *memStore) copy(ctx context.Context, from, to string) error {
	data, err := m.get(ctx, from)
	if err != nil {
		return err
	}
	return m.put(ctx, to, data)
}

func (m *memStore) list(_ context.Context, prefix string) ([]storedFile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []storedFile
	for k, d := range m.files {
		if strings.HasPrefix(k, prefix) {
			out = append(out, storedFile{key: k, size: int64(len(d))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, nil
}

func (m *memStore) remove(_ context.Context, prefix string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.files {
		if strings.HasPrefix(k, prefix) {
			delete(m.files, k)
		}
	}
	return nil
}

func (m *memStore) signBlob(string, bool, time.Time) (string, error) { return "", errNoSigning }

func (m *memStore) signContainer(string, time.Time) (string, string, error) {
	return "", "", errNoSigning
}

// blobStore keeps artifacts in one container of a real blob service
// (Azurite in tests) and signs service SAS URLs with the account key, the
// way Azure Databricks hands out AZURE_SAS_URI credentials for its DBFS root
// storage.
//
// It uses only the blob-level clients of azblob (blob, blockblob) and plain
// REST for the two container operations (Create Container, List Blobs):
// azblob's container package links Apache Arrow and a JSON encoder for Query
// Blob Contents, about 45 packages (25 s of compile) that the demo program
// would otherwise build on top of the executable's packages in make demo.
type blobStore struct {
	account   BlobAccount
	container string
	cred      *blob.SharedKeyCredential
	http      *http.Client
}

func newBlobStore(ctx context.Context, acct BlobAccount, name string) (*blobStore, error) {
	cred, err := blob.NewSharedKeyCredential(acct.AccountName, acct.AccountKey)
	if err != nil {
		return nil, fmt.Errorf("emulator: blob credential: %w", err)
	}
	b := &blobStore{account: acct, container: name, cred: cred, http: &http.Client{}}
	// Create Container (https://learn.microsoft.com/rest/api/storageservices/create-container):
	// PUT {container}?restype=container; 409 ContainerAlreadyExists when it is there.
	resp, err := b.containerRequest(ctx, http.MethodPut, url.Values{"restype": {"container"}})
	if err != nil {
		return nil, fmt.Errorf("emulator: create container %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.Header.Get("x-ms-error-code") != string(bloberror.ContainerAlreadyExists) {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("emulator: create container %s: %s: %s", name, resp.Status, body)
	}
	return b, nil
}

// containerRequest sends a request to the container with an account SAS
// (container and object resources; create, read, list) in its query.
func (b *blobStore) containerRequest(ctx context.Context, method string, q url.Values) (*http.Response, error) {
	qp, err := sas.AccountSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		ExpiryTime:    time.Now().UTC().Add(time.Hour),
		Permissions:   (&sas.AccountPermissions{Read: true, List: true, Create: true}).String(),
		ResourceTypes: (&sas.AccountResourceTypes{Container: true, Object: true}).String(),
	}.SignWithSharedKey(b.cred)
	if err != nil {
		return nil, fmt.Errorf("account SAS: %w", err)
	}
	u := strings.TrimRight(b.account.Endpoint, "/") + "/" + url.PathEscape(b.container) + "?" + q.Encode() + "&" + qp.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("x-ms-version", "2021-12-02")
	return b.http.Do(req)
}

// storeURL is key's URL at the account's own endpoint (the emulator's side,
// not ClientEndpoint's proxy).
func (b *blobStore) storeURL(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.TrimRight(b.account.Endpoint, "/") + "/" + url.PathEscape(b.container) + "/" + strings.Join(segs, "/")
}

func (b *blobStore) blobClient(key string) (*blob.Client, error) {
	c, err := blob.NewClientWithSharedKeyCredential(b.storeURL(key), b.cred, nil)
	if err != nil {
		return nil, fmt.Errorf("blob client for %s: %w", key, err)
	}
	return c, nil
}

func (b *blobStore) blockBlobClient(key string) (*blockblob.Client, error) {
	c, err := blockblob.NewClientWithSharedKeyCredential(b.storeURL(key), b.cred, nil)
	if err != nil {
		return nil, fmt.Errorf("block blob client for %s: %w", key, err)
	}
	return c, nil
}

func (b *blobStore) put(ctx context.Context, key string, data []byte) error {
	c, err := b.blockBlobClient(key)
	if err != nil {
		return err
	}
	if _, err := c.UploadBuffer(ctx, data, nil); err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	return nil
}

func (b *blobStore) get(ctx context.Context, key string) ([]byte, error) {
	c, err := b.blobClient(key)
	if err != nil {
		return nil, err
	}
	resp, err := c.DownloadStream(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", key, err)
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// copy is Copy Blob within the account, authorized by the account key; the
// blob service (Azurite) copies without the bytes leaving it.
func (b *blobStore) copy(ctx context.Context, from, to string) error {
	dst, err := b.blobClient(to)
	if err != nil {
		return err
	}
	resp, err := dst.StartCopyFromURL(ctx, b.storeURL(from), nil)
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", from, to, err)
	}
	status := resp.CopyStatus
	for status != nil && *status == blob.CopyStatusTypePending {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		props, err := dst.GetProperties(ctx, nil)
		if err != nil {
			return fmt.Errorf("copy %s to %s: %w", from, to, err)
		}
		status = props.CopyStatus
	}
	if status != nil && *status != blob.CopyStatusTypeSuccess {
		return fmt.Errorf("copy %s to %s: copy status %s", from, to, *status)
	}
	return nil
}

// list is List Blobs (https://learn.microsoft.com/rest/api/storageservices/list-blobs):
// GET {container}?restype=container&comp=list&prefix, followed by
// NextMarker, every blob below prefix with its Content-Length.
func (b *blobStore) list(ctx context.Context, prefix string) ([]storedFile, error) {
	var out []storedFile
	marker := ""
	for {
		q := url.Values{"restype": {"container"}, "comp": {"list"}, "prefix": {prefix}}
		if marker != "" {
			q.Set("marker", marker)
		}
		page, err := b.listPage(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, item := range page.Blobs {
			out = append(out, storedFile{key: item.Name, size: item.ContentLength})
		}
		if page.NextMarker == "" {
			return out, nil
		}
		marker = page.NextMarker
	}
}

// listBlobsResult is the part of List Blobs' EnumerationResults the store reads.
type listBlobsResult struct {
	Blobs []struct {
		Name          string `xml:"Name"`
		ContentLength int64  `xml:"Properties>Content-Length"`
	} `xml:"Blobs>Blob"`
	NextMarker string `xml:"NextMarker"`
}

func (b *blobStore) listPage(ctx context.Context, q url.Values) (listBlobsResult, error) {
	var page listBlobsResult
	resp, err := b.containerRequest(ctx, http.MethodGet, q)
	if err != nil {
		return page, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return page, err
	}
	if resp.StatusCode != http.StatusOK {
		return page, fmt.Errorf("%s: %s", resp.Status, body)
	}
	if err := xml.Unmarshal(body, &page); err != nil {
		return page, fmt.Errorf("reading the listing: %w", err)
	}
	return page, nil
}

func (b *blobStore) remove(ctx context.Context, prefix string) error {
	files, err := b.list(ctx, prefix)
	if err != nil {
		return err
	}
	for _, f := range files {
		c, err := b.blobClient(f.key)
		if err != nil {
			return err
		}
		if _, err := c.Delete(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound) {
			return fmt.Errorf("delete %s: %w", f.key, err)
		}
	}
	return nil
}

func (b *blobStore) blobURL(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return b.clientEndpoint() + "/" + b.container + "/" + strings.Join(segs, "/")
}

// clientEndpoint is the blob service URL put in signed URLs.
func (b *blobStore) clientEndpoint() string {
	if b.account.ClientEndpoint != "" {
		return strings.TrimRight(b.account.ClientEndpoint, "/")
	}
	return strings.TrimRight(b.account.Endpoint, "/")
}

func (b *blobStore) signBlob(key string, write bool, expiry time.Time) (string, error) {
	perms := sas.BlobPermissions{Read: true}
	if write {
		perms = sas.BlobPermissions{Create: true, Write: true, Add: true}
	}
	qp, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		ExpiryTime:    expiry.UTC(),
		Permissions:   perms.String(),
		ContainerName: b.container,
		BlobName:      key,
	}.SignWithSharedKey(b.cred)
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", key, err)
	}
	return b.blobURL(key) + "?" + qp.Encode(), nil
}

func (b *blobStore) signContainer(prefix string, expiry time.Time) (string, string, error) {
	perms := sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, List: true}
	qp, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		ExpiryTime:    expiry.UTC(),
		Permissions:   perms.String(),
		ContainerName: b.container,
	}.SignWithSharedKey(b.cred)
	if err != nil {
		return "", "", fmt.Errorf("sign container: %w", err)
	}
	return b.blobURL(strings.TrimSuffix(prefix, "/")), qp.Encode(), nil
}

// --- MLflow artifact routes -------------------------------------------------

// The Databricks artifact-credential API is not in databricks-sdk-go v0.81.0.
// These types follow MLflow's protocol for it (mlflow/protos/
// databricks_artifacts.proto: GetCredentialsForRead, GetCredentialsForWrite,
// ArtifactCredentialInfo), which is what the MLflow client sends to
// POST /api/2.0/mlflow/artifacts/credentials-for-read and -for-write.

// GetCredentialsForRead is the request of artifacts/credentials-for-read.
type GetCredentialsForRead struct {
	RunID     string   `json:"run_id"`
	Path      []string `json:"path"`
	PageToken string   `json:"page_token,omitempty"`
}

// GetCredentialsForWrite is the request of artifacts/credentials-for-write.
type GetCredentialsForWrite struct {
	RunID     string   `json:"run_id"`
	Path      []string `json:"path"`
	PageToken string   `json:"page_token,omitempty"`
}

// GetCredentialsResponse is the (paged) answer of both credential routes.
type GetCredentialsResponse struct {
	CredentialInfos []ArtifactCredentialInfo `json:"credential_infos,omitempty"`
	NextPageToken   string                   `json:"next_page_token,omitempty"`
}

// ArtifactCredentialInfo is one signed URL for one artifact path.
type ArtifactCredentialInfo struct {
	RunID     string       `json:"run_id,omitempty"`
	Path      string       `json:"path,omitempty"`
	SignedURI string       `json:"signed_uri,omitempty"`
	Headers   []HTTPHeader `json:"headers,omitempty"`
	// Type is Options.CredentialType: AZURE_SAS_URI or
	// AZURE_ADLS_GEN2_SAS_URI; Databricks also uses AWS_PRESIGNED_URL and
	// GCP_SIGNED_URL.
	Type string `json:"type,omitempty"`
}

// HTTPHeader is a header the client must send with the signed URL.
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// credentialsTTL is how long signed URLs stay valid (Databricks uses short
// lived SAS tokens; the exact lifetime is not documented).
const credentialsTTL = 15 * time.Minute

// sasExpiry is measured on the real clock, not the workspace clock: the blob
// service checks SAS expiry against its own time.
func sasExpiry() time.Time { return time.Now().Add(credentialsTTL) }

func (ws *Workspace) artifactRoutes() {
	handle(ws, "GET /api/2.0/mlflow/artifacts/list", ws.listArtifacts)
	handle(ws, "POST /api/2.0/mlflow/artifacts/credentials-for-read", func(r *http.Request, req *GetCredentialsForRead) (any, *apiError) {
		return ws.artifactCredentials(r.Context(), req.RunID, req.Path, req.PageToken, false)
	})
	handle(ws, "POST /api/2.0/mlflow/artifacts/credentials-for-write", func(r *http.Request, req *GetCredentialsForWrite) (any, *apiError) {
		return ws.artifactCredentials(r.Context(), req.RunID, req.Path, req.PageToken, true)
	})
}

func (ws *Workspace) artifactCredentials(_ context.Context, runID string, paths []string, pageToken string, write bool) (any, *apiError) {
	run, aerr := ws.mlflowRun(runID)
	if aerr != nil {
		return nil, aerr
	}
	infos, next, aerr := ws.signPage(run.storeKey, paths, "path", pageToken, write)
	if aerr != nil {
		return nil, aerr
	}
	for i := range infos {
		infos[i].RunID = runID
	}
	return &GetCredentialsResponse{CredentialInfos: infos, NextPageToken: next}, nil
}

// signPage signs one page (Options.CredentialPageSize) of paths below root,
// for reading or writing; pageToken is the previous page's next token, next
// the token of the following page ("" on the last). field names the paths
// in errors.
func (ws *Workspace) signPage(root string, paths []string, field, pageToken string, write bool) ([]ArtifactCredentialInfo, string, *apiError) {
	if len(paths) == 0 {
		return nil, "", invalidParam("Missing required field: %s", field)
	}
	start := 0
	if pageToken != "" {
		if _, err := fmt.Sscanf(pageToken, "offset-%d", &start); err != nil || start < 0 || start > len(paths) {
			return nil, "", invalidParam("Invalid page_token %q", pageToken)
		}
	}
	end := min(start+ws.opts.CredentialPageSize, len(paths))
	var infos []ArtifactCredentialInfo
	expiry := sasExpiry()
	for _, p := range paths[start:end] {
		clean, ok := cleanRelPath(p)
		if !ok {
			return nil, "", invalidParam("Invalid artifact path %q", p)
		}
		signed, headers, err := ws.signArtifact(root+"/"+clean, write, expiry)
		if err != nil {
			return nil, "", signingError(err)
		}
		infos = append(infos, ArtifactCredentialInfo{Path: clean, SignedURI: signed, Headers: headers, Type: ws.opts.CredentialType})
	}
	next := ""
	if end < len(paths) {
		next = fmt.Sprintf("offset-%d", end)
	}
	return infos, next, nil
}

// signArtifact signs one key of the artifact store for reading (or
// writing) as Options.CredentialType says: a Blob SAS URL of the blob
// account, or a URL of the workspace's DFS endpoint with the headers it
// hands out.
func (ws *Workspace) signArtifact(key string, write bool, expiry time.Time) (string, []HTTPHeader, error) {
	if ws.dfs != nil {
		return ws.dfs.sign(key, write, expiry), ws.dfs.headers(), nil
	}
	signed, err := ws.store.signBlob(key, write, expiry)
	return signed, nil, err
}

func signingError(err error) *apiError {
	if errors.Is(err, errNoSigning) {
		return errorf(http.StatusNotImplemented, "NOT_IMPLEMENTED", "%v", err)
	}
	return errorf(http.StatusInternalServerError, "INTERNAL_ERROR", "%v", err)
}

// cleanRelPath normalises an artifact path relative to a root and refuses
// paths that escape it.
func cleanRelPath(p string) (string, bool) {
	if p == "" || p == "." || p == "/" {
		return "", true
	}
	c := path.Clean(strings.TrimPrefix(p, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	return c, true
}

// listChildren lists the direct children of dir under root, MLflow style:
// paths relative to root, directories without sizes.
func listChildren(ctx context.Context, s artifactStore, root, dir string) ([]childEntry, error) {
	prefix := root + "/"
	if dir != "" {
		prefix += dir + "/"
	}
	files, err := s.list(ctx, prefix)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []childEntry
	for _, f := range files {
		rest := strings.TrimPrefix(f.key, prefix)
		name, _, isDir := strings.Cut(rest, "/")
		rel := name
		if dir != "" {
			rel = dir + "/" + name
		}
		if seen[rel] {
			continue
		}
		seen[rel] = true
		e := childEntry{path: rel, isDir: isDir}
		if !isDir {
			e.size = f.size
		}
		out = append(out, e)
	}
	return out, nil
}

// listArtifactFiles answers an MLflow artifact listing: the direct children
// of dir (relative, as the request gives it) in the artifact root at root.
func (ws *Workspace) listArtifactFiles(ctx context.Context, root, dir string) ([]ml.FileInfo, *apiError) {
	clean, ok := cleanRelPath(dir)
	if !ok {
		return nil, invalidParam("Invalid path %q", dir)
	}
	entries, err := listChildren(ctx, ws.store, root, clean)
	if err != nil {
		return nil, errorf(http.StatusInternalServerError, "INTERNAL_ERROR", "%v", err)
	}
	var files []ml.FileInfo
	for _, e := range entries {
		files = append(files, ml.FileInfo{Path: e.path, IsDir: e.isDir, FileSize: e.size})
	}
	return files, nil
}

type childEntry struct {
	path  string
	isDir bool
	size  int64
}

// putDir uploads every file of a local folder (such as an MLflow model
// folder) under key prefix.
func putFiles(ctx context.Context, s artifactStore, prefix string, files map[string][]byte) error {
	for _, n := range slices.Sorted(maps.Keys(files)) {
		if err := s.put(ctx, prefix+"/"+n, files[n]); err != nil {
			return err
		}
	}
	return nil
}
