package emulator

import (
	"encoding/base64"
	"io"
	"net/http"
	"path"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/files"
)

// DBFS API 2.0 (https://docs.databricks.com/api/workspace/dbfs) and the Files
// API (https://docs.databricks.com/api/workspace/files), each over its own
// in-memory file tree.

// dbfsBlockLimit is the 1 MB limit of dbfs/add-block, put and read.
const dbfsBlockLimit = 1 << 20

type memFS struct {
	entries map[string]*fsEntry
	handles map[int64]*fsHandle
}

type fsEntry struct {
	isDir bool
	data  []byte
	mtime time.Time
}

type fsHandle struct {
	path string
	buf  []byte
}

func newMemFS() *memFS {
	return &memFS{entries: map[string]*fsEntry{"/": {isDir: true}}, handles: map[int64]*fsHandle{}}
}

// normDBFS turns "dbfs:/a/b" or "/a/b/" into "/a/b".
func normDBFS(p string) string {
	p = strings.TrimPrefix(p, "dbfs:")
	return path.Clean("/" + p)
}

func (fs *memFS) mkdirs(p string, now time.Time) bool {
	if e, ok := fs.entries[p]; ok {
		return e.isDir
	}
	if p != "/" && !fs.mkdirs(path.Dir(p), now) {
		return false
	}
	fs.entries[p] = &fsEntry{isDir: true, mtime: now}
	return true
}

func (fs *memFS) write(p string, data []byte, now time.Time) bool {
	if !fs.mkdirs(path.Dir(p), now) {
		return false
	}
	fs.entries[p] = &fsEntry{data: data, mtime: now}
	return true
}

func (fs *memFS) children(dir string) []string {
	var out []string
	for p := range fs.entries {
		if p != "/" && path.Dir(p) == dir {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func (fs *memFS) remove(p string, recursive bool) *apiError {
	if _, ok := fs.entries[p]; !ok {
		return notFound("No file or directory exists on path %s.", p)
	}
	for q := range fs.entries {
		if strings.HasPrefix(q, p+"/") {
			if !recursive {
				return errorf(http.StatusBadRequest, "IO_ERROR", "Directory %s is not empty; use recursive=true", p)
			}
			delete(fs.entries, q)
		}
	}
	if p != "/" {
		delete(fs.entries, p)
	}
	return nil
}

func (fs *memFS) info(p string) files.FileInfo {
	e := fs.entries[p]
	return files.FileInfo{Path: p, IsDir: e.isDir, FileSize: int64(len(e.data)), ModificationTime: millis(e.mtime)}
}

func decodeBlock(s string) ([]byte, *apiError) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, invalidParam("data is not valid base64: %v", err)
	}
	if len(b) > dbfsBlockLimit {
		return nil, errorf(http.StatusBadRequest, "MAX_BLOCK_SIZE_EXCEEDED", "The block of data exceeds the 1 MB limit.")
	}
	return b, nil
}

func (ws *Workspace) dbfsRoutes() {
	fs := ws.dbfs
	handle(ws, "POST /api/2.0/dbfs/create", func(r *http.Request, req *files.Create) (any, *apiError) {
		p := normDBFS(req.Path)
		if e, ok := fs.entries[p]; ok && (e.isDir || !req.Overwrite) {
			return nil, alreadyExists("A file or directory already exists at the input path dbfs:%s.", p)
		}
		h := ws.ids.take()
		fs.handles[h] = &fsHandle{path: p}
		return &files.CreateResponse{Handle: h}, nil
	})
	handle(ws, "POST /api/2.0/dbfs/add-block", func(r *http.Request, req *files.AddBlock) (any, *apiError) {
		h, ok := fs.handles[req.Handle]
		if !ok {
			return nil, notFound("The handle %d is not valid.", req.Handle)
		}
		b, aerr := decodeBlock(req.Data)
		if aerr != nil {
			return nil, aerr
		}
		h.buf = append(h.buf, b...)
		return nil, nil
	})
	handle(ws, "POST /api/2.0/dbfs/close", func(r *http.Request, req *files.Close) (any, *apiError) {
		h, ok := fs.handles[req.Handle]
		if !ok {
			return nil, notFound("The handle %d is not valid.", req.Handle)
		}
		delete(fs.handles, req.Handle)
		if !fs.write(h.path, h.buf, ws.clock.Now()) {
			return nil, invalidParam("A parent of %s is a file.", h.path)
		}
		return nil, nil
	})
	handle(ws, "POST /api/2.0/dbfs/put", func(r *http.Request, req *files.Put) (any, *apiError) {
		p := normDBFS(req.Path)
		if e, ok := fs.entries[p]; ok && (e.isDir || !req.Overwrite) {
			return nil, alreadyExists("A file or directory already exists at the input path dbfs:%s.", p)
		}
		b, aerr := decodeBlock(req.Contents)
		if aerr != nil {
			return nil, aerr
		}
		if !fs.write(p, b, ws.clock.Now()) {
			return nil, invalidParam("A parent of %s is a file.", p)
		}
		return nil, nil
	})
	handle(ws, "GET /api/2.0/dbfs/read", func(r *http.Request, req *files.ReadDbfsRequest) (any, *apiError) {
		p := normDBFS(req.Path)
		e, ok := fs.entries[p]
		if !ok {
			return nil, notFound("No file or directory exists on path dbfs:%s.", p)
		}
		if e.isDir {
			return nil, invalidParam("The path dbfs:%s is a directory.", p)
		}
		length := req.Length
		if length == 0 {
			length = 512 << 10
		}
		// databricks-sdk-go v0.81.0 files.DbfsAPI.Read: a negative length or
		// offset is INVALID_PARAMETER_VALUE, a length over 1 MB
		// MAX_READ_SIZE_EXCEEDED.
		if length < 0 || req.Offset < 0 {
			return nil, invalidParam("length and offset must not be negative")
		}
		if length > dbfsBlockLimit {
			return nil, errorf(http.StatusBadRequest, "MAX_READ_SIZE_EXCEEDED", "Cannot read more than 1 MB at a time, got length %d.", length)
		}
		start := min(req.Offset, int64(len(e.data)))
		end := min(start+length, int64(len(e.data)))
		chunk := e.data[start:end]
		resp := &files.ReadResponse{BytesRead: int64(len(chunk)), Data: base64.StdEncoding.EncodeToString(chunk)}
		resp.ForceSendFields = []string{"BytesRead", "Data"}
		return resp, nil
	})
	handle(ws, "GET /api/2.0/dbfs/get-status", func(r *http.Request, req *files.GetStatusRequest) (any, *apiError) {
		p := normDBFS(req.Path)
		if _, ok := fs.entries[p]; !ok {
			return nil, notFound("No file or directory exists on path dbfs:%s.", p)
		}
		info := fs.info(p)
		return &info, nil
	})
	handle(ws, "GET /api/2.0/dbfs/list", func(r *http.Request, req *files.ListDbfsRequest) (any, *apiError) {
		p := normDBFS(req.Path)
		e, ok := fs.entries[p]
		if !ok {
			return nil, notFound("No file or directory exists on path dbfs:%s.", p)
		}
		resp := &files.ListStatusResponse{}
		if !e.isDir {
			resp.Files = []files.FileInfo{fs.info(p)}
			return resp, nil
		}
		for _, c := range fs.children(p) {
			resp.Files = append(resp.Files, fs.info(c))
		}
		return resp, nil
	})
	handle(ws, "POST /api/2.0/dbfs/mkdirs", func(r *http.Request, req *files.MkDirs) (any, *apiError) {
		p := normDBFS(req.Path)
		if !fs.mkdirs(p, ws.clock.Now()) {
			return nil, alreadyExists("A file exists at dbfs:%s or one of its parents.", p)
		}
		return nil, nil
	})
	handle(ws, "POST /api/2.0/dbfs/delete", func(r *http.Request, req *files.Delete) (any, *apiError) {
		p := normDBFS(req.Path)
		if _, ok := fs.entries[p]; !ok {
			return nil, nil // deleting a missing path succeeds, as on Databricks
		}
		return nil, fs.remove(p, req.Recursive)
	})
}

// filesRoutes implements the Files API over raw bodies: PUT/GET/HEAD/DELETE
// /api/2.0/fs/files{path} and /api/2.0/fs/directories{path}. Query
// parameters are still checked strictly against the SDK request types.
func (ws *Workspace) filesRoutes() {
	fs := ws.volumes
	raw := func(pattern string, newReq func() any, fn func(w http.ResponseWriter, r *http.Request, p string)) {
		ws.mux.route(pattern, reflect.TypeOf(newReq()).Elem(), func(w http.ResponseWriter, r *http.Request) {
			req := newReq()
			p := path.Clean("/" + r.PathValue("path"))
			ws.serveLocked(w, r, req, func() *apiError { return decodeQuery(r.URL.Query(), req) }, func() { fn(w, r, p) })
		})
	}
	raw("PUT /api/2.0/fs/files/{path...}", func() any { return &files.UploadRequest{} }, func(w http.ResponseWriter, r *http.Request, p string) {
		overwrite, _ := strconv.ParseBool(r.URL.Query().Get("overwrite"))
		if e, ok := fs.entries[p]; ok && (e.isDir || !overwrite) {
			writeError(w, errorf(http.StatusConflict, "ALREADY_EXISTS", "The file being created already exists."))
			return
		}
		data, _ := io.ReadAll(r.Body)
		if !fs.write(p, data, ws.clock.Now()) {
			writeError(w, errorf(http.StatusConflict, "ALREADY_EXISTS", "A parent of %s is a file.", p))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	raw("GET /api/2.0/fs/files/{path...}", func() any { return &files.DownloadRequest{} }, func(w http.ResponseWriter, r *http.Request, p string) {
		e, ok := fs.entry(p, false)
		if !ok {
			filesNotFound(w, false)
			return
		}
		fileHeaders(w, e)
		_, _ = w.Write(e.data)
	})
	raw("HEAD /api/2.0/fs/files/{path...}", func() any { return &files.GetMetadataRequest{} }, func(w http.ResponseWriter, r *http.Request, p string) {
		e, ok := fs.entry(p, false)
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		fileHeaders(w, e)
	})
	raw("DELETE /api/2.0/fs/files/{path...}", func() any { return &files.DeleteFileRequest{} }, func(w http.ResponseWriter, r *http.Request, p string) {
		if _, ok := fs.entry(p, false); !ok {
			filesNotFound(w, false)
			return
		}
		delete(fs.entries, p)
		w.WriteHeader(http.StatusNoContent)
	})
	raw("PUT /api/2.0/fs/directories/{path...}", func() any { return &files.CreateDirectoryRequest{} }, func(w http.ResponseWriter, r *http.Request, p string) {
		if !fs.mkdirs(p, ws.clock.Now()) {
			writeError(w, errorf(http.StatusConflict, "ALREADY_EXISTS", "A file exists at %s.", p))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	raw("GET /api/2.0/fs/directories/{path...}", func() any { return &files.ListDirectoryContentsRequest{} }, func(w http.ResponseWriter, r *http.Request, p string) {
		if _, ok := fs.entry(p, true); !ok {
			filesNotFound(w, true)
			return
		}
		resp := &files.ListDirectoryResponse{}
		for _, c := range fs.children(p) {
			ce := fs.entries[c]
			resp.Contents = append(resp.Contents, files.DirectoryEntry{Path: c, Name: path.Base(c), IsDirectory: ce.isDir, FileSize: int64(len(ce.data)), LastModified: millis(ce.mtime)})
		}
		writeJSON(w, http.StatusOK, resp)
	})
	raw("HEAD /api/2.0/fs/directories/{path...}", func() any { return &files.GetDirectoryMetadataRequest{} }, func(w http.ResponseWriter, r *http.Request, p string) {
		if _, ok := fs.entry(p, true); !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	raw("DELETE /api/2.0/fs/directories/{path...}", func() any { return &files.DeleteDirectoryRequest{} }, func(w http.ResponseWriter, r *http.Request, p string) {
		if _, ok := fs.entry(p, true); !ok {
			filesNotFound(w, true)
			return
		}
		if len(fs.children(p)) > 0 {
			writeError(w, errorf(http.StatusConflict, "DIRECTORY_NOT_EMPTY", "The directory being deleted is not empty."))
			return
		}
		delete(fs.entries, p)
		w.WriteHeader(http.StatusNoContent)
	})
}

// entry is the file (dir false) or directory (dir true) at p; ok is false
// when there is none, or when it is of the other kind.
func (fs *memFS) entry(p string, dir bool) (e *fsEntry, ok bool) {
	e, ok = fs.entries[p]
	return e, ok && e.isDir == dir
}

// filesNotFound is the Files API's answer for a missing file or directory.
func filesNotFound(w http.ResponseWriter, dir bool) {
	what := "file"
	if dir {
		what = "directory"
	}
	writeError(w, errorf(http.StatusNotFound, "NOT_FOUND", "The %s being accessed is not found.", what))
}

func fileHeaders(w http.ResponseWriter, e *fsEntry) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(e.data)))
	w.Header().Set("Last-Modified", e.mtime.UTC().Format(http.TimeFormat))
}
