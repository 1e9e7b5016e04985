package emulator

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Request is one request the workspace received, as recorded before it was
// answered.
type Request struct {
	Time   time.Time  // emulator clock when it arrived
	Method string     // HTTP method
	Path   string     // URL path
	Query  url.Values // decoded query
	// Body is the decoded SDK request struct (e.g. *jobs.SubmitRun), or nil
	// when the request failed before decoding (auth, fault, unknown route,
	// invalid body) or the route carries raw bytes (files, invocations).
	Body any
	// Raw is the request body as sent.
	Raw []byte
	// DataPlane marks a request to the host of route-optimized endpoints
	// (DataPlaneURL), not the workspace's.
	DataPlane bool
	// Status is the HTTP status answered (0 for a dropped connection).
	Status int
	// Fault is the injected fault, if any.
	Fault FaultKind
	// Committed is, for a fault after commit (FaultKind.AfterCommit), the
	// status the handler answered before its answer was lost: 200 when the
	// request was carried out.
	Committed int
	// Principal is who the request authenticated as.
	Principal string
}

// IsWrite reports whether the request could change state: not GET/HEAD,
// and not one of the POSTs of MLflow's protocol that only read (searches,
// signed read URLs).
func (r Request) IsWrite() bool {
	if r.Method == http.MethodPost && readOnlyPOST(r.Path) {
		return false
	}
	return r.Method != http.MethodGet && r.Method != http.MethodHead
}

// readOnlyPOST reports whether path is an MLflow route that is a POST but
// only reads: SearchRuns and SearchLoggedModels (mlflow/protos/service.proto),
// getCredentialsForRead and getCredentialsForLoggedModelDownload
// (mlflow/protos/databricks_artifacts.proto).
func readOnlyPOST(path string) bool {
	switch path {
	case "/api/2.0/mlflow/runs/search", "/api/2.0/mlflow/logged-models/search", "/api/2.0/mlflow/artifacts/credentials-for-read":
		return true
	}
	return strings.HasPrefix(path, "/api/2.0/mlflow/logged-models/") && strings.HasSuffix(path, "/artifacts/credentials-for-download")
}

// Requests returns a copy of every request received so far, oldest first.
func (ws *Workspace) Requests() []Request {
	ws.recMu.Lock()
	defer ws.recMu.Unlock()
	return append([]Request(nil), ws.records...)
}

// RequestsTo returns the recorded requests with this method and path.
func (ws *Workspace) RequestsTo(method, path string) []Request {
	var out []Request
	for _, r := range ws.Requests() {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// Writes counts the recorded requests that could change state (IsWrite), e.g. to
// check that an idempotent task made no changes on its second run.
func (ws *Workspace) Writes() int {
	n := 0
	for _, r := range ws.Requests() {
		if r.IsWrite() {
			n++
		}
	}
	return n
}

// ResetRequests forgets the recorded requests.
func (ws *Workspace) ResetRequests() {
	ws.recMu.Lock()
	defer ws.recMu.Unlock()
	ws.records = nil
}
