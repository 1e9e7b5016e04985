package emulator

import (
	"context"
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // Content-MD5 is what the DFS API stores and checks
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
)

// The types of signed URL the MLflow artifact routes hand out
// (ArtifactCredentialType, mlflow/protos/databricks_artifacts.proto): the
// emulator serves the two of Azure.
const (
	// CredentialAzureSAS is a Blob service SAS URL (Blob REST), on the
	// workspace's blob account (Azurite in tests).
	CredentialAzureSAS = "AZURE_SAS_URI"
	// CredentialAzureADLS is an ADLS Gen2 SAS URL (DFS REST: create,
	// append, flush, read), served by the workspace's own DFS endpoint
	// (dfsFront) over the same blob container: Azurite has no DFS
	// endpoint.
	CredentialAzureADLS = "AZURE_ADLS_GEN2_SAS_URI"
)

// dfsFront is an ADLS Gen2 DFS endpoint over the workspace's blob
// container, for the signed URLs of type AZURE_ADLS_GEN2_SAS_URI. It speaks
// the part of the DFS REST API that MLflow's client and Brickferry send to
// such URLs (mlflow/azure/client.py; the Path operations of
// https://learn.microsoft.com/rest/api/storageservices/datalakestoragegen2/path):
//
//   - PUT ?resource=file (Path - Create) creates or truncates a file: no
//     body, x-ms-version required (as for every DFS write);
//   - PATCH ?action=append&position=N stages the body at N, checking its
//     Content-MD5; &flush=true flushes right after (MLflow's single-part
//     upload);
//   - PATCH ?action=flush&position=N commits the data staged from 0 to N,
//     which must be contiguous (400 InvalidFlushPosition otherwise), with
//     x-ms-content-md5 as the file's Content-MD5;
//   - GET (Path - Read) and HEAD (Path - Get Properties) of a flushed file.
//
// Its SAS tokens are its own (signed with a key of the workspace; a real
// account checks an Azure signature the same way): a wrong or expired
// signature is 403 AuthenticationFailed, a permission the token lacks (r to
// read; c or w to write) 403 AuthorizationPermissionMismatch.
//
// With Options.CustomerKey the workspace hands out a customer-provided
// encryption key with every such URL (x-ms-encryption-key, -key-sha256,
// -algorithm: the headers Azure Storage takes for a customer-provided key,
// on Path - Create, Update and Read alike). Azure requires the key on every
// later write and read of a file encrypted with it (error code
// BlobUsesCustomerSpecifiedEncryption, bloberror; "Provide an encryption key
// on a request to Blob storage", Microsoft Learn). The emulator is stricter:
// every DFS request of a URL handed out with the key must carry it, the
// create included (a real account would store such a file unencrypted
// without a word), so that a client dropping the headers cannot pass.
type dfsFront struct {
	store *blobStore
	ln    net.Listener
	srv   *http.Server
	url   string // http://127.0.0.1:NNNNN, the account's DFS endpoint
	key   []byte // signs the front's SAS tokens
	cpk   map[string]string

	mu    sync.Mutex
	files map[string]map[int64][]byte // created, not yet flushed: position → data
}

func newDFSFront(store *blobStore, customerKey bool) (*dfsFront, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("emulator: DFS endpoint: %w", err)
	}
	f := &dfsFront{store: store, ln: ln, url: "http://" + ln.Addr().String(), key: make([]byte, 32), files: map[string]map[int64][]byte{}}
	_, _ = rand.Read(f.key)
	if customerKey {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		sum := sha256.Sum256(k)
		f.cpk = map[string]string{
			"x-ms-encryption-key":        base64.StdEncoding.EncodeToString(k),
			"x-ms-encryption-key-sha256": base64.StdEncoding.EncodeToString(sum[:]),
			"x-ms-encryption-algorithm":  "AES256",
		}
	}
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *dfsFront) close(ctx context.Context) { _ = f.srv.Shutdown(ctx) }

// headers are the headers handed out with every URL of the front.
func (f *dfsFront) headers() []HTTPHeader {
	var out []HTTPHeader
	for _, k := range slices.Sorted(maps.Keys(f.cpk)) {
		out = append(out, HTTPHeader{Name: k, Value: f.cpk[k]})
	}
	return out
}

// sign returns a URL for one key of the container that allows reading (or
// reading, creating and writing) until expiry.
func (f *dfsFront) sign(key string, write bool, expiry time.Time) string {
	perms := "r"
	if write {
		perms = "rcw"
	}
	path := "/" + f.store.container + "/" + key
	se := expiry.UTC().Format(time.RFC3339)
	q := url.Values{"sv": {"2023-11-03"}, "sr": {"b"}, "sp": {perms}, "se": {se}, "sig": {f.signature(perms, se, path)}}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return f.url + strings.Join(segs, "/") + "?" + q.Encode()
}

func (f *dfsFront) signature(perms, se, path string) string {
	m := hmac.New(sha256.New, f.key)
	fmt.Fprintf(m, "%s\n%s\n%s", perms, se, path)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// dfsFail answers a DFS error the way the service does: status, the code in
// x-ms-error-code and in a JSON body.
func dfsFail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("x-ms-error-code", code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"error":{"code":%q,"message":%q}}`, code, msg)
}

func (f *dfsFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	write := r.Method == http.MethodPut || r.Method == http.MethodPatch
	if !f.authorized(w, r, write) {
		return
	}
	key, ok := strings.CutPrefix(r.URL.Path, "/"+f.store.container+"/")
	if !ok || key == "" {
		dfsFail(w, http.StatusNotFound, "FilesystemNotFound", "The specified filesystem does not exist.")
		return
	}
	for k, v := range f.cpk {
		if r.Header.Get(k) != v {
			dfsFail(w, http.StatusConflict, string(bloberror.BlobUsesCustomerSpecifiedEncryption), "The file is encrypted with a customer-provided key: the request must carry it ("+k+").")
			return
		}
	}
	if write {
		if r.Header.Get("x-ms-version") == "" {
			dfsFail(w, http.StatusBadRequest, "MissingRequiredHeader", "x-ms-version is required.")
			return
		}
		if r.ContentLength < 0 {
			dfsFail(w, http.StatusLengthRequired, "MissingContentLengthHeader", "Content-Length is required.")
			return
		}
	}
	switch {
	case r.Method == http.MethodPut && q.Get("resource") == "file":
		f.create(w, r, key)
	case r.Method == http.MethodPatch && q.Get("action") == "append":
		f.append(w, r, key)
	case r.Method == http.MethodPatch && q.Get("action") == "flush":
		f.flush(w, r, key, r.ContentLength)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		f.read(w, r, key)
	default:
		dfsFail(w, http.StatusBadRequest, "InvalidQueryParameterValue", "Unsupported operation.")
	}
}

// authorized checks the SAS of r: a signature of the front for this path,
// not expired, with the permission the request needs.
func (f *dfsFront) authorized(w http.ResponseWriter, r *http.Request, write bool) bool {
	q := r.URL.Query()
	perms, se := q.Get("sp"), q.Get("se")
	exp, err := time.Parse(time.RFC3339, se)
	if err != nil || !hmac.Equal([]byte(q.Get("sig")), []byte(f.signature(perms, se, r.URL.Path))) || time.Now().After(exp) {
		dfsFail(w, http.StatusForbidden, string(bloberror.AuthenticationFailed), "Server failed to authenticate the request.")
		return false
	}
	if (write && !strings.ContainsAny(perms, "cw")) || (!write && !strings.Contains(perms, "r")) {
		dfsFail(w, http.StatusForbidden, string(bloberror.AuthorizationPermissionMismatch), "This request is not authorized to perform this operation using this permission.")
		return false
	}
	return true
}

func (f *dfsFront) create(w http.ResponseWriter, r *http.Request, key string) {
	if r.ContentLength != 0 {
		dfsFail(w, http.StatusBadRequest, "InvalidInput", "Path - Create takes no body.")
		return
	}
	if err := f.store.remove(r.Context(), key); err != nil { // a create truncates
		dfsFail(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	f.mu.Lock()
	f.files[key] = map[int64][]byte{}
	f.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func (f *dfsFront) append(w http.ResponseWriter, r *http.Request, key string) {
	pos, err := strconv.ParseInt(r.URL.Query().Get("position"), 10, 64)
	if err != nil || pos < 0 {
		dfsFail(w, http.StatusBadRequest, "InvalidQueryParameterValue", "position")
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength+1))
	if err != nil || int64(len(data)) != r.ContentLength {
		dfsFail(w, http.StatusBadRequest, "InvalidInput", "The body does not match Content-Length.")
		return
	}
	if want := r.Header.Get("Content-MD5"); want != "" {
		sum := md5.Sum(data) //nolint:gosec // see import
		if want != base64.StdEncoding.EncodeToString(sum[:]) {
			dfsFail(w, http.StatusBadRequest, "Md5Mismatch", "The MD5 value specified in the request did not match the MD5 value calculated by the server.")
			return
		}
	}
	f.mu.Lock()
	staged, ok := f.files[key]
	if ok {
		staged[pos] = data
	}
	f.mu.Unlock()
	if !ok {
		dfsFail(w, http.StatusNotFound, "PathNotFound", "The specified path does not exist.")
		return
	}
	if r.URL.Query().Get("flush") == "true" {
		f.flush(w, r, key, 0)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// flush commits the data staged from 0 to position.
func (f *dfsFront) flush(w http.ResponseWriter, r *http.Request, key string, body int64) {
	end, err := strconv.ParseInt(r.URL.Query().Get("position"), 10, 64)
	if r.URL.Query().Get("action") == "append" { // append&flush=true: up to the end of this append
		end += r.ContentLength
	}
	if err != nil || body != 0 {
		dfsFail(w, http.StatusBadRequest, "InvalidQueryParameterValue", "position")
		return
	}
	f.mu.Lock()
	staged, ok := f.files[key]
	f.mu.Unlock()
	if !ok {
		dfsFail(w, http.StatusNotFound, "PathNotFound", "The specified path does not exist.")
		return
	}
	positions := make([]int64, 0, len(staged))
	for p := range staged {
		positions = append(positions, p)
	}
	sort.Slice(positions, func(i, j int) bool { return positions[i] < positions[j] })
	var data []byte
	for _, p := range positions {
		if p != int64(len(data)) {
			break
		}
		data = append(data, staged[p]...)
	}
	if int64(len(data)) != end {
		dfsFail(w, http.StatusBadRequest, "InvalidFlushPosition", "The uploaded data is not contiguous or the position query parameter value is not equal to the length of the file after appending the uploaded data.")
		return
	}
	opts := &blockblob.UploadBufferOptions{}
	if m := r.Header.Get("x-ms-content-md5"); m != "" {
		sum, err := base64.StdEncoding.DecodeString(m)
		if err != nil {
			dfsFail(w, http.StatusBadRequest, "InvalidHeaderValue", "x-ms-content-md5")
			return
		}
		opts.HTTPHeaders = &blob.HTTPHeaders{BlobContentMD5: sum}
	}
	c, err := f.store.blockBlobClient(key)
	if err != nil {
		dfsFail(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	if _, err := c.UploadBuffer(r.Context(), data, opts); err != nil {
		dfsFail(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	f.mu.Lock()
	delete(f.files, key)
	f.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (f *dfsFront) read(w http.ResponseWriter, r *http.Request, key string) {
	b, err := f.store.blobClient(key)
	if err != nil {
		dfsFail(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	props, err := b.GetProperties(r.Context(), nil)
	if err != nil {
		if bloberror.HasCode(err, bloberror.BlobNotFound) {
			dfsFail(w, http.StatusNotFound, "PathNotFound", "The specified path does not exist.")
			return
		}
		dfsFail(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	if props.ContentLength != nil {
		w.Header().Set("Content-Length", strconv.FormatInt(*props.ContentLength, 10))
	}
	if len(props.ContentMD5) > 0 {
		w.Header().Set("Content-MD5", base64.StdEncoding.EncodeToString(props.ContentMD5))
	}
	w.Header().Set("x-ms-resource-type", "file")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	resp, err := b.DownloadStream(r.Context(), nil)
	if err != nil {
		dfsFail(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, resp.Body)
}
