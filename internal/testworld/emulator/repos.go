package emulator

import (
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/databricks/databricks-sdk-go/service/workspace"
)

// Git folders (Repos API, https://docs.databricks.com/api/workspace/repos):
// create, get, list by path prefix and update to a branch or tag. The
// emulator has no Git server: checking out a branch or tag sets the head
// commit to a digest of its name, so an update is visible and repeatable.

type reposState struct {
	repos map[int64]*workspace.RepoInfo
}

// AddRepo adds a Git folder at path cloned from url at branch and returns its id.
func (ws *Workspace) AddRepo(path, url, branch string) int64 {
	var id int64
	ws.do(func() {
		id = ws.ids.take()
		ws.repos.repos[id] = &workspace.RepoInfo{Id: id, Path: path, Url: url, Provider: "azureDevOpsServices", Branch: branch, HeadCommitId: headCommit(branch)}
	})
	return id
}

// Repo returns a copy of a Git folder's state, or false.
func (ws *Workspace) Repo(id int64) (workspace.RepoInfo, bool) {
	var out workspace.RepoInfo
	var ok bool
	ws.do(func() {
		var r *workspace.RepoInfo
		if r, ok = ws.repos.repos[id]; ok {
			out = *r
		}
	})
	return out, ok
}

func headCommit(ref string) string {
	sum := sha1.Sum([]byte(ref))
	return hex.EncodeToString(sum[:])
}

func (ws *Workspace) reposRoutes() {
	handle(ws, "POST /api/2.0/repos", func(r *http.Request, req *workspace.CreateRepoRequest) (any, *apiError) {
		if req.Url == "" || req.Provider == "" {
			return nil, invalidParam("url and provider are required")
		}
		path := req.Path
		if path == "" {
			path = "/Repos/" + ws.UserName + "/" + strings.TrimSuffix(req.Url[strings.LastIndex(req.Url, "/")+1:], ".git")
		}
		for _, repo := range ws.repos.repos {
			if repo.Path == path {
				return nil, errorf(http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", "Path (%s) already exists.", path)
			}
		}
		id := ws.ids.take()
		repo := &workspace.RepoInfo{Id: id, Path: path, Url: req.Url, Provider: req.Provider, Branch: "main", HeadCommitId: headCommit("main")}
		ws.repos.repos[id] = repo
		return &workspace.CreateRepoResponse{Id: id, Path: path, Url: repo.Url, Provider: repo.Provider, Branch: repo.Branch, HeadCommitId: repo.HeadCommitId}, nil
	})
	handle(ws, "GET /api/2.0/repos", func(r *http.Request, req *workspace.ListReposRequest) (any, *apiError) {
		resp := &workspace.ListReposResponse{}
		for _, repo := range ws.repos.repos {
			if strings.HasPrefix(repo.Path, req.PathPrefix) {
				resp.Repos = append(resp.Repos, *repo)
			}
		}
		sort.Slice(resp.Repos, func(i, j int) bool { return resp.Repos[i].Path < resp.Repos[j].Path })
		return resp, nil
	})
	handle(ws, "GET /api/2.0/repos/{id}", func(r *http.Request, req *workspace.GetRepoRequest) (any, *apiError) {
		repo, aerr := ws.repo(r)
		if aerr != nil {
			return nil, aerr
		}
		return &workspace.GetRepoResponse{Id: repo.Id, Path: repo.Path, Url: repo.Url, Provider: repo.Provider, Branch: repo.Branch, HeadCommitId: repo.HeadCommitId}, nil
	})
	handle(ws, "PATCH /api/2.0/repos/{id}", func(r *http.Request, req *workspace.UpdateRepoRequest) (any, *apiError) {
		repo, aerr := ws.repo(r)
		if aerr != nil {
			return nil, aerr
		}
		switch {
		case req.Branch != "" && req.Tag != "":
			return nil, invalidParam("Only one of branch or tag can be specified.")
		case req.Branch != "":
			repo.Branch, repo.HeadCommitId = req.Branch, headCommit(req.Branch)
		case req.Tag != "":
			repo.Branch, repo.HeadCommitId = "", headCommit("tag:"+req.Tag)
		}
		return struct{}{}, nil
	})
}

func (ws *Workspace) repo(r *http.Request) (*workspace.RepoInfo, *apiError) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return nil, invalidParam("Invalid repo id %q.", r.PathValue("id"))
	}
	repo, ok := ws.repos.repos[id]
	if !ok {
		return nil, notFound("Repo %d does not exist.", id)
	}
	return repo, nil
}
