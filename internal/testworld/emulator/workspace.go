package emulator

import (
	"encoding/base64"
	"io"
	"mime"
	"net/http"
	"path"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/workspace"
)

// The workspace file tree (notebooks, files, folders, MLflow experiments)
// behind /api/2.0/workspace/* (https://docs.databricks.com/api/workspace/workspace).

const objectExperiment workspace.ObjectType = "MLFLOW_EXPERIMENT" // answered by Databricks, absent from the SDK enum

type workspaceTree struct {
	objects map[string]*wsObject
	nextID  int64
}

type wsObject struct {
	info    workspace.ObjectInfo
	content []byte
}

func newWorkspaceTree() *workspaceTree {
	t := &workspaceTree{objects: map[string]*wsObject{}, nextID: 1_000_000}
	now := time.Unix(0, 0)
	for _, d := range []string{"/", "/Users", "/Shared", "/Repos"} {
		t.putObject(d, workspace.ObjectTypeDirectory, nil, now)
	}
	return t
}

func (t *workspaceTree) isDir(p string) bool {
	o, ok := t.objects[path.Clean(p)]
	return ok && o.info.ObjectType == workspace.ObjectTypeDirectory
}

func (t *workspaceTree) putObject(p string, typ workspace.ObjectType, content []byte, now time.Time) *wsObject {
	p = path.Clean(p)
	t.nextID++
	o := &wsObject{info: workspace.ObjectInfo{
		Path: p, ObjectType: typ, ObjectId: t.nextID, ResourceId: strconv.FormatInt(t.nextID, 10),
		CreatedAt: millis(now), ModifiedAt: millis(now), Size: int64(len(content)),
	}, content: content}
	if old, ok := t.objects[p]; ok {
		o.info.ObjectId, o.info.ResourceId, o.info.CreatedAt = old.info.ObjectId, old.info.ResourceId, old.info.CreatedAt
	}
	t.objects[p] = o
	return o
}

func (t *workspaceTree) mkdirs(p string, now time.Time) bool {
	p = path.Clean(p)
	if o, ok := t.objects[p]; ok {
		return o.info.ObjectType == workspace.ObjectTypeDirectory
	}
	if p != "/" && !t.mkdirs(path.Dir(p), now) {
		return false
	}
	t.putObject(p, workspace.ObjectTypeDirectory, nil, now)
	return true
}

// ensureUserHome creates /Users/<name> the first time a user is seen, as a
// workspace does when a user is added.
func (ws *Workspace) ensureUserHome() {
	ws.notebooks.mkdirs("/Users/"+ws.UserName, time.Unix(0, 0))
}

func (ws *Workspace) workspaceRoutes() {
	ws.ensureUserHome()
	ws.mux.route("POST /api/2.0/workspace/import", reflect.TypeFor[workspace.Import](), ws.importObject)
	handle(ws, "GET /api/2.0/workspace/export", func(r *http.Request, req *workspace.ExportRequest) (any, *apiError) {
		o, ok := ws.notebooks.objects[path.Clean(req.Path)]
		if !ok || req.Path == "" {
			return nil, notFound("Path (%s) doesn't exist.", req.Path)
		}
		if o.info.ObjectType == workspace.ObjectTypeDirectory {
			return nil, invalidParam("The emulator exports notebooks and files only, not folders (%s)", req.Path)
		}
		return &workspace.ExportResponse{Content: base64.StdEncoding.EncodeToString(o.content), FileType: fileType(o.info)}, nil
	})
	handle(ws, "GET /api/2.0/workspace/get-status", func(r *http.Request, req *workspace.GetStatusRequest) (any, *apiError) {
		o, ok := ws.notebooks.objects[path.Clean(req.Path)]
		if !ok || req.Path == "" {
			return nil, notFound("Path (%s) doesn't exist.", req.Path)
		}
		info := o.info
		return &info, nil
	})
	handle(ws, "POST /api/2.0/workspace/mkdirs", func(r *http.Request, req *workspace.Mkdirs) (any, *apiError) {
		if !strings.HasPrefix(req.Path, "/") {
			return nil, invalidParam("Path (%s) must be absolute", req.Path)
		}
		if !ws.notebooks.mkdirs(req.Path, ws.clock.Now()) {
			return nil, alreadyExists("Cannot create directory %s because a file or notebook exists on that path", req.Path)
		}
		return nil, nil
	})
	handle(ws, "GET /api/2.0/workspace/list", func(r *http.Request, req *workspace.ListWorkspaceRequest) (any, *apiError) {
		dir := path.Clean(req.Path)
		if !ws.notebooks.isDir(dir) {
			return nil, notFound("Path (%s) doesn't exist.", req.Path)
		}
		resp := &workspace.ListResponse{}
		for p, o := range ws.notebooks.objects {
			if p != "/" && path.Dir(p) == dir {
				resp.Objects = append(resp.Objects, o.info)
			}
		}
		sort.Slice(resp.Objects, func(i, j int) bool { return resp.Objects[i].Path < resp.Objects[j].Path })
		return resp, nil
	})
	handle(ws, "POST /api/2.0/workspace/delete", func(r *http.Request, req *workspace.Delete) (any, *apiError) {
		p := path.Clean(req.Path)
		if _, ok := ws.notebooks.objects[p]; !ok {
			return nil, notFound("Path (%s) doesn't exist.", req.Path)
		}
		for q := range ws.notebooks.objects {
			if strings.HasPrefix(q, p+"/") {
				if !req.Recursive {
					return nil, errorf(http.StatusBadRequest, "DIRECTORY_NOT_EMPTY", "Folder (%s) is not empty", req.Path)
				}
				delete(ws.notebooks.objects, q)
			}
		}
		delete(ws.notebooks.objects, p)
		return nil, nil
	})
}

func fileType(info workspace.ObjectInfo) string {
	switch info.Language {
	case workspace.LanguagePython:
		return "py"
	case workspace.LanguageSql:
		return "sql"
	case workspace.LanguageScala:
		return "scala"
	case workspace.LanguageR:
		return "r"
	}
	return strings.TrimPrefix(path.Ext(info.Path), ".")
}

// importObject implements POST /api/2.0/workspace/import with either a JSON
// body (workspace.Import, content base64) or a multipart form with the same
// field names and the content as a file part, both documented by Databricks.
func (ws *Workspace) importObject(w http.ResponseWriter, r *http.Request) {
	req := &workspace.Import{}
	var content []byte
	var aerr *apiError
	decode := func() (derr *apiError) {
		content, derr = decodeImport(r, req)
		return derr
	}
	if !ws.serveLocked(w, r, req, decode, func() { aerr = ws.importLocked(req, content) }) {
		return
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// decodeImport decodes an import request into req and returns the content
// to import.
func decodeImport(r *http.Request, req *workspace.Import) ([]byte, *apiError) {
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		fields, data, aerr := readImportForm(r, params["boundary"])
		if aerr != nil {
			return nil, aerr
		}
		if aerr := decodeStrictJSON(fields, req); aerr != nil {
			return nil, aerr
		}
		return data, nil
	}
	if aerr := decodeBody(r, req); aerr != nil {
		return nil, aerr
	}
	content, err := base64.StdEncoding.DecodeString(req.Content)
	if err != nil {
		return nil, invalidParam("content is not valid base64: %v", err)
	}
	return content, nil
}

// readImportForm turns the multipart fields into a JSON object (so the same
// strict decoding applies) and returns the file content.
func readImportForm(r *http.Request, boundary string) ([]byte, []byte, *apiError) {
	if err := r.ParseMultipartForm(64 << 20); err != nil {
		return nil, nil, invalidParam("Invalid multipart body: %v", err)
	}
	obj := map[string]any{}
	for k, vs := range r.MultipartForm.Value {
		v := vs[0]
		if k == "overwrite" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, nil, invalidParam("overwrite must be true or false")
			}
			obj[k] = b
			continue
		}
		obj[k] = v
	}
	var content []byte
	for k, fhs := range r.MultipartForm.File {
		if k != "content" {
			return nil, nil, invalidParam("Invalid JSON given in the body of the request - unknown field %q in request body", k)
		}
		f, err := fhs[0].Open()
		if err != nil {
			return nil, nil, invalidParam("reading content: %v", err)
		}
		content, _ = io.ReadAll(f)
		_ = f.Close()
	}
	_ = boundary
	raw, _ := jsonMarshal(obj)
	return raw, content, nil
}

func (ws *Workspace) importLocked(req *workspace.Import, content []byte) *apiError {
	p := path.Clean(req.Path)
	if !strings.HasPrefix(req.Path, "/") {
		return invalidParam("Path (%s) must be absolute", req.Path)
	}
	if !ws.notebooks.isDir(path.Dir(p)) {
		return notFound("The parent folder (%s) does not exist.", path.Dir(p))
	}
	if old, ok := ws.notebooks.objects[p]; ok {
		if !req.Overwrite {
			return alreadyExists("%s already exists. Please use overwrite=true to replace it.", req.Path)
		}
		if old.info.ObjectType == workspace.ObjectTypeDirectory {
			return alreadyExists("%s is a folder", req.Path)
		}
	}
	typ := workspace.ObjectTypeNotebook
	lang := req.Language
	switch req.Format {
	case workspace.ImportFormatAuto, workspace.ImportFormatRaw:
		typ = workspace.ObjectTypeFile
		if req.Format == workspace.ImportFormatAuto && isNotebookSource(content) {
			typ = workspace.ObjectTypeNotebook
			if lang == "" {
				lang = workspace.LanguagePython
			}
		}
	case "", workspace.ImportFormatSource:
		if lang == "" {
			return invalidParam("The language field is required when importing SOURCE")
		}
	}
	o := ws.notebooks.putObject(p, typ, content, ws.clock.Now())
	if typ == workspace.ObjectTypeNotebook {
		o.info.Language = lang
	}
	return nil
}

// isNotebookSource recognises Databricks' notebook source header.
func isNotebookSource(b []byte) bool {
	s := string(b)
	return strings.HasPrefix(s, "# Databricks notebook source") || strings.HasPrefix(s, "-- Databricks notebook source") ||
		strings.HasPrefix(s, "// Databricks notebook source")
}

// AddNotebook puts a Python notebook at path (creating parent folders), for
// tests that need a job's notebook to exist.
func (ws *Workspace) AddNotebook(p, source string) {
	ws.do(func() {
		ws.notebooks.mkdirs(path.Dir(p), ws.clock.Now())
		o := ws.notebooks.putObject(p, workspace.ObjectTypeNotebook, []byte(source), ws.clock.Now())
		o.info.Language = workspace.LanguagePython
	})
}
