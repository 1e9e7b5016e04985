package artifacts

import (
	"net/http"
	"strings"
)

// Which of the headers handed out with a signed URL go on which storage
// request.
//
// ArtifactCredentialInfo.headers (mlflow/protos/databricks_artifacts.proto)
// are "a collection of HTTP headers that should be specified when uploading
// to or downloading from the specified signed_uri", one set for every
// request to the URL; the proto does not say which ones go where. MLflow's
// client, which Databricks serves these credentials to, decides per
// operation (mlflow/azure/client.py, mlflow/mlflow commit
// 14f3f83a2281ef208b6b9556282a01dc58fe012e), and Brickferry does the same:
//
//   - Azure Blob Put Block: the headers of _is_valid_put_block_header (the
//     request headers of Put Block in the Blob REST reference, customer
//     provided keys included);
//   - Azure Blob Put Block List: _is_valid_put_block_list_header (x-ms-meta-*
//     and the Put Block List request headers);
//   - ADLS Gen2 Path - Create (PUT ?resource=file): _is_valid_adls_put_header;
//   - ADLS Gen2 append (PATCH ?action=append): _is_valid_adls_patch_header;
//   - ADLS Gen2 flush (PATCH ?action=flush): _is_valid_adls_put_header, the
//     Create list, as MLflow's patch_adls_flush filters it;
//   - reads (GET, and the HEAD that checks a written file) and the single PUT
//     of an AWS or GCP presigned URL: every header, as MLflow sends them
//     (download_file_using_http_uri, _signed_url_upload_file; a presigned
//     URL's signature may cover them).
//
// Put Blob, which Brickferry uses for a file that fits in one block, is not
// an operation MLflow sends: it does in one request what Put Block and Put
// Block List do in two, and takes a header either of them takes (all of them
// are Put Blob request headers in the Blob REST reference).
//
// One deliberate difference: MLflow compares header names as written; HTTP
// header names are case-insensitive (RFC 9110, 5.1), and so is the
// comparison here.

// operation is one kind of storage request.
type operation int

const (
	opRead         operation = iota // GET, or the HEAD of a check
	opPresignedPut                  // the one PUT of an AWS or GCP presigned URL
	opPutBlob                       // Azure Blob Put Blob
	opPutBlock                      // Azure Blob Put Block
	opPutBlockList                  // Azure Blob Put Block List
	opADLSCreate                    // ADLS Gen2 Path - Create
	opADLSAppend                    // ADLS Gen2 Path - Update, action=append
	opADLSFlush                     // ADLS Gen2 Path - Update, action=flush
)

// headerSet is a set of canonical header names.
type headerSet map[string]bool

func newHeaderSet(names ...string) headerSet {
	s := headerSet{}
	for _, n := range names {
		s[http.CanonicalHeaderKey(n)] = true
	}
	return s
}

// putBlockHeaders is _is_valid_put_block_header.
var putBlockHeaders = newHeaderSet(
	"Authorization", "x-ms-date", "x-ms-version", "Content-Length", "Content-MD5", "x-ms-content-crc64",
	"x-ms-encryption-scope", "x-ms-lease-id", "x-ms-client-request-id",
	"x-ms-encryption-key", "x-ms-encryption-key-sha256", "x-ms-encryption-algorithm",
)

// putBlockListHeaders is _is_valid_put_block_list_header, without its
// x-ms-meta-* prefix (allowed).
var putBlockListHeaders = newHeaderSet(
	"Authorization", "Date", "x-ms-date", "x-ms-version", "Content-Length", "Content-MD5", "x-ms-content-crc64",
	"x-ms-blob-cache-control", "x-ms-blob-content-type", "x-ms-blob-content-encoding", "x-ms-blob-content-language",
	"x-ms-blob-content-md5", "x-ms-encryption-scope", "x-ms-tags", "x-ms-lease-id", "x-ms-client-request-id",
	"x-ms-blob-content-disposition", "x-ms-access-tier",
	"If-Modified-Since", "If-Unmodified-Since", "If-Match", "If-None-Match",
)

// adlsCreateHeaders is _is_valid_adls_put_header.
var adlsCreateHeaders = newHeaderSet(
	"Cache-Control", "Content-Encoding", "Content-Language", "Content-Disposition",
	"x-ms-cache-control", "x-ms-content-type", "x-ms-content-encoding", "x-ms-content-language", "x-ms-content-disposition",
	"x-ms-rename-source", "x-ms-lease-id", "x-ms-properties", "x-ms-permissions", "x-ms-umask", "x-ms-owner", "x-ms-group",
	"x-ms-acl", "x-ms-proposed-lease-id", "x-ms-expiry-option", "x-ms-expiry-time",
	"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
	"x-ms-source-if-match", "x-ms-source-if-none-match", "x-ms-source-if-modified-since", "x-ms-source-if-unmodified-since",
	"x-ms-encryption-key", "x-ms-encryption-key-sha256", "x-ms-encryption-algorithm", "x-ms-encryption-context",
	"x-ms-client-request-id", "x-ms-date", "x-ms-version",
)

// adlsAppendHeaders is _is_valid_adls_patch_header.
var adlsAppendHeaders = newHeaderSet(
	"Content-Length", "Content-MD5", "x-ms-lease-id",
	"x-ms-cache-control", "x-ms-content-type", "x-ms-content-disposition", "x-ms-content-encoding", "x-ms-content-language",
	"x-ms-content-md5", "x-ms-properties", "x-ms-owner", "x-ms-group", "x-ms-permissions", "x-ms-acl",
	"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
	"x-ms-encryption-key", "x-ms-encryption-key-sha256", "x-ms-encryption-algorithm", "x-ms-encryption-context",
	"x-ms-client-request-id", "x-ms-date", "x-ms-version",
)

// allows reports whether op takes the header name.
func (op operation) allows(name string) bool {
	name = http.CanonicalHeaderKey(name)
	switch op {
	case opPutBlock:
		return putBlockHeaders[name]
	case opPutBlockList:
		return putBlockListHeaders[name] || strings.HasPrefix(name, "X-Ms-Meta-")
	case opPutBlob:
		return opPutBlock.allows(name) || opPutBlockList.allows(name)
	case opADLSCreate, opADLSFlush:
		return adlsCreateHeaders[name]
	case opADLSAppend:
		return adlsAppendHeaders[name]
	default: // reads and presigned PUTs: every header
		return true
	}
}

// headersFor is the part of the handed-out headers that goes on a request of
// kind op.
func headersFor(op operation, handed map[string]string) map[string]string {
	out := make(map[string]string, len(handed))
	for k, v := range handed {
		if op.allows(k) {
			out[k] = v
		}
	}
	return out
}

// blobOperation is the Blob REST operation an azblob request is (the
// requests Brickferry sends: Get Blob and Get Blob Properties to read and
// check, Put Blob, Put Block and Put Block List to write).
func blobOperation(r *http.Request) operation {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return opRead
	}
	switch r.URL.Query().Get("comp") {
	case "block":
		return opPutBlock
	case "blocklist":
		return opPutBlockList
	default:
		return opPutBlob
	}
}
