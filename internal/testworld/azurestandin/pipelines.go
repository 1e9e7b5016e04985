package azurestandin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/pipeline"
)

// Azure Pipelines: the project's YAML pipelines (build definitions), their
// runs and what a finished run shows through the REST API, as
// azure-devops-go-api v7's build and pipelines clients ask for them
// (build/client.go, pipelines/client.go; request and response shapes from
// their models.go and the REST reference, learn.microsoft.com/rest/api/azure/devops
// build/definitions, build/builds, build/timeline, build/builds/get-build-log-lines,
// build/attachments, pipelines/pipelines, pipelines/runs, version 7.1).
//
// A queued run is run by the PipelineOptions.Agent hook (the local pipeline
// runner, package pipeline) and recorded as the agent and the server record
// it: a timeline of Stage, Job and Task records, one log per record (with
// the ##vso commands traced under system.debug, which is where the output
// variables show through this API: stepLog), and each
// ##vso[task.uploadsummary] as an attachment of type
// Distributedtask.Core.Summary on the step's record. The orchestration
// timeline (distributedtask plans), where the server keeps output
// variables, is not served.

// Location ids of azure-devops-go-api v7 (build/client.go,
// pipelines/client.go, git/client.go) and the resource areas of the build
// and Git clients (build.ResourceAreaId, git.ResourceAreaId).
const (
	areaBuild         = "965220d5-5bb9-42cf-8d67-9b146df2a5a4"
	locDefinitions    = "dbeaf647-6167-421a-bda9-c9327b25e2e6"
	locBuilds         = "0cd358e1-9217-4d94-8269-1c1ee6f93dcf"
	locTimeline       = "8baac422-4c6e-4de5-8532-db96d92acffa"
	locBuildLogs      = "35a80daf-7f30-45fc-86e8-6b813d9c90df"
	locAttachmentList = "f2192269-89fa-4f94-baf6-8fb128c55159"
	locAttachment     = "af5122d3-3438-485e-a25a-2dbbfde84ee6"
	locPipelines      = "28e1305e-2afe-47bf-abaf-cbb0e6a91988"
	locRuns           = "7859261e-d2e9-4a68-b820-a5d84cc5bb3d"
	areaGit           = "4e080c62-fa21-4fbc-8fef-2a10a2b38049"
	locRepositories   = "225f7195-f9c7-4d14-ab28-a83f7ff77e1f"
)

// SummaryAttachmentType is the attachment type of a step's uploaded summary:
// CoreAttachmentType.Summary, which the agent gives
// ##vso[task.uploadsummary] (azure-pipelines-agent
// src/Agent.Worker/TaskCommandExtension.cs, TaskUploadSummaryCommand).
const SummaryAttachmentType = "Distributedtask.Core.Summary"

// PipelineOptions are the project's repositories and the agent that runs
// queued pipelines.
type PipelineOptions struct {
	// Repositories are the project's Azure Repos Git repositories, by name:
	// a local folder stands for the default branch's tree (refs/heads/main).
	Repositories map[string]string
	// Agent runs a queued run. Without one, a run stays in progress, as it
	// does in a project whose pool has no agent.
	Agent PipelineAgent
}

// PipelineAgent runs one pipeline run's jobs, as the agents of a pool would:
// the stand-in records what it returns.
type PipelineAgent func(ctx context.Context, az *Azure, job AgentJob) (AgentResult, error)

// AgentJob is a queued run handed to the agent.
type AgentJob struct {
	Pipeline *pipeline.Pipeline
	// Sources is the repository's folder (Build.SourcesDirectory's content);
	// WorkDir a new folder for the agent's work, kept until the stand-in
	// closes (summaries are read from it after the run).
	Sources, WorkDir string
	BuildID          int
	BuildNumber      string
	DefinitionID     int
	DefinitionName   string
	SourceBranch     string
	// Variables are the queue-time variables (system.debug).
	Variables map[string]string
}

// AgentResult is what the agent reports of a run.
type AgentResult struct {
	Result *pipeline.Result
	// Secrets are the values the agent masks in logs (secret variables,
	// ##vso[task.setsecret]).
	Secrets []string
}

// queueTimeVariables are the variables a run may set: the stand-in
// behaves as a project with "Limit variables that can be set at queue time"
// on (learn.microsoft.com/azure/devops/pipelines/security/inputs, the
// default of new organizations), where only variables the pipeline marks
// settable at queue time are accepted; the sample marks none. system.debug,
// the Run pipeline dialog's "Enable system diagnostics", is accepted: an
// assumption, not checked against the service (docs/live.md).
var queueTimeVariables = []string{"system.debug"}

type pipelineState struct {
	mu     sync.Mutex
	defs   []*definition
	builds []*buildRun
	cancel context.CancelFunc
	ctx    context.Context
	wg     sync.WaitGroup
}

type definition struct {
	ID, Revision   int
	Name, Path     string
	RepositoryName string
	RepositoryID   string
	YAMLFile       string
	Created        time.Time
}

type buildRun struct {
	ID          int
	Number      string
	Def         definition // as it was queued
	Branch      string
	Variables   map[string]string
	Status      string // notStarted, inProgress, completed
	Result      string // succeeded, partiallySucceeded, failed, canceled
	Queued      time.Time
	Started     time.Time
	Finished    time.Time
	PlanID      string
	Records     []map[string]any
	Logs        [][]string // log id i+1
	Attachments []attachment
}

type attachment struct {
	Type, Name, RecordID string
	Content              []byte
}

// pipelineAreas are the resource areas (GET {org}/_apis/ResourceAreas) of
// the build and Git clients; the pipelines client uses the collection URL.
func (a *Azure) pipelineAreas() []any {
	return []any{
		map[string]any{"id": areaBuild, "name": "build", "locationUrl": a.CollectionURI},
		map[string]any{"id": areaGit, "name": "git", "locationUrl": a.CollectionURI},
	}
}

// pipelineLocations are the location entries of the build and pipelines areas.
func pipelineLocations() []any {
	return []any{
		location(locDefinitions, "build", "Definitions", "{project}/_apis/build/{resource}/{definitionId}"),
		location(locBuilds, "build", "Builds", "{project}/_apis/build/{resource}/{buildId}"),
		location(locTimeline, "build", "Timeline", "{project}/_apis/build/builds/{buildId}/{resource}/{timelineId}"),
		location(locBuildLogs, "build", "logs", "{project}/_apis/build/builds/{buildId}/{resource}/{logId}"),
		location(locAttachmentList, "build", "attachments", "{project}/_apis/build/builds/{buildId}/{resource}/{type}"),
		location(locAttachment, "build", "attachments", "{project}/_apis/build/builds/{buildId}/{timelineId}/{recordId}/{resource}/{type}/{name}"),
		location(locPipelines, "pipelines", "pipelines", "{project}/_apis/{resource}/{pipelineId}"),
		location(locRuns, "pipelines", "runs", "{project}/_apis/pipelines/{pipelineId}/{resource}/{runId}"),
		location(locRepositories, "git", "repositories", "{project}/_apis/git/{resource}/{repositoryId}"),
	}
}

// servePipelines answers {org}/{project}/_apis/build/...,
// {org}/{project}/_apis/pipelines/... and .../_apis/git/repositories/{name or id};
// rest starts after _apis.
func (a *Azure) servePipelines(w http.ResponseWriter, r *http.Request, rest []string) {
	get, post, put := r.Method == http.MethodGet, r.Method == http.MethodPost, r.Method == http.MethodPut
	n := len(rest)
	switch {
	case rest[0] == "git" && n == 3 && rest[1] == "repositories" && get:
		// Repositories - Get: by name or id (git.GitRepository).
		name, id, ok := a.repository(rest[2], rest[2])
		if !ok {
			devopsError(w, http.StatusNotFound, "GitRepositoryNotFoundException", "TF401019: The Git repository with name or identifier "+rest[2]+" does not exist or you do not have permissions for the operation you are attempting.")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "name": name, "defaultBranch": "refs/heads/main", "project": a.projectRef(),
			"url": a.projectURL() + "/_apis/git/repositories/" + id, "remoteUrl": a.CollectionURI + a.Project + "/_git/" + name})
	case rest[0] == "build" && n == 2 && strings.EqualFold(rest[1], "definitions") && get:
		a.listDefinitions(w, r)
	case rest[0] == "build" && n == 2 && strings.EqualFold(rest[1], "definitions") && post:
		a.saveDefinition(w, r, 0)
	case rest[0] == "build" && n == 3 && strings.EqualFold(rest[1], "definitions") && (get || put):
		id, _ := strconv.Atoi(rest[2])
		if put {
			a.saveDefinition(w, r, id)
			return
		}
		a.withDefinition(w, id, func(d *definition) { writeJSON(w, http.StatusOK, a.definitionJSON(d)) })
	case rest[0] == "build" && n >= 3 && strings.EqualFold(rest[1], "builds") && get:
		id, _ := strconv.Atoi(rest[2])
		a.withBuild(w, id, func(b *buildRun) { a.serveBuild(w, r, b, rest[3:]) })
	case rest[0] == "pipelines" && n == 1 && get:
		a.listPipelines(w)
	case rest[0] == "pipelines" && n == 2 && get:
		id, _ := strconv.Atoi(rest[1])
		a.withDefinition(w, id, func(d *definition) { writeJSON(w, http.StatusOK, a.pipelineJSON(d)) })
	case rest[0] == "pipelines" && n == 3 && rest[2] == "runs" && post:
		id, _ := strconv.Atoi(rest[1])
		a.runPipeline(w, r, id)
	case rest[0] == "pipelines" && n == 4 && rest[2] == "runs" && get:
		id, _ := strconv.Atoi(rest[1])
		runID, _ := strconv.Atoi(rest[3])
		a.withBuild(w, runID, func(b *buildRun) {
			if b.Def.ID != id {
				devopsError(w, http.StatusNotFound, "PipelineRunNotFoundException", fmt.Sprintf("Run %d of pipeline %d was not found.", runID, id))
				return
			}
			writeJSON(w, http.StatusOK, a.runJSON(b))
		})
	default:
		devopsError(w, http.StatusNotFound, "NotFoundException", "not found: "+r.Method+" "+r.URL.Path)
	}
}

// serveBuild answers builds/{id}[/timeline[/{timelineId}] | /logs[/{logId}] |
// /attachments/{type} | /{timelineId}/{recordId}/attachments/{type}/{name}].
func (a *Azure) serveBuild(w http.ResponseWriter, r *http.Request, b *buildRun, rest []string) {
	n := len(rest)
	switch {
	case n == 0:
		writeJSON(w, http.StatusOK, a.buildJSON(b))
	case strings.EqualFold(rest[0], "timeline") && (n == 1 || n == 2 && strings.EqualFold(rest[1], b.PlanID)):
		// The build's own timeline has the plan's id (Timeline - Get: timelineId optional).
		writeJSON(w, http.StatusOK, map[string]any{
			"id": b.PlanID, "changeId": len(b.Records), "lastChangedOn": stamp(b.Finished), "records": b.Records,
			"url": a.buildURL(b) + "/Timeline/" + b.PlanID,
		})
	case strings.EqualFold(rest[0], "timeline"):
		devopsError(w, http.StatusNotFound, "TimelineNotFoundException", fmt.Sprintf("Timeline %s was not found for build %d.", rest[1], b.ID))
	case rest[0] == "logs" && n == 1:
		list := []any{}
		for i, lines := range b.Logs {
			list = append(list, map[string]any{"id": i + 1, "type": "Container", "lineCount": len(lines),
				"createdOn": stamp(b.Started), "lastChangedOn": stamp(b.Finished), "url": fmt.Sprintf("%s/logs/%d", a.buildURL(b), i+1)})
		}
		writeJSON(w, http.StatusOK, map[string]any{"count": len(list), "value": list})
	case rest[0] == "logs" && n == 2:
		id, _ := strconv.Atoi(rest[1])
		if id < 1 || id > len(b.Logs) {
			devopsError(w, http.StatusNotFound, "BuildLogNotFoundException", fmt.Sprintf("Build log %s of build %d was not found.", rest[1], b.ID))
			return
		}
		lines := b.Logs[id-1]
		// Logs - Get Build Log Lines: the lines as a JSON collection when
		// JSON is accepted (azure-devops-go-api GetBuildLogLines), else
		// the text (GetBuildLog).
		if strings.Contains(r.Header.Get("Accept"), "application/json") {
			writeJSON(w, http.StatusOK, map[string]any{"count": len(lines), "value": lines})
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(strings.Join(lines, "\r\n")))
	case rest[0] == "attachments" && n == 2:
		list := []any{}
		for _, at := range b.Attachments {
			if strings.EqualFold(at.Type, rest[1]) {
				list = append(list, map[string]any{"name": at.Name, "_links": map[string]any{"self": map[string]any{"href": a.attachmentURL(b, at)}}})
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"count": len(list), "value": list})
	case n == 5 && rest[2] == "attachments":
		for _, at := range b.Attachments {
			if strings.EqualFold(rest[0], b.PlanID) && strings.EqualFold(rest[1], at.RecordID) && strings.EqualFold(rest[3], at.Type) && rest[4] == at.Name {
				w.Header().Set("Content-Type", "application/octet-stream")
				_, _ = w.Write(at.Content)
				return
			}
		}
		devopsError(w, http.StatusNotFound, "AttachmentNotFoundException", fmt.Sprintf("Attachment %s of type %s was not found.", rest[4], rest[3]))
	default:
		devopsError(w, http.StatusNotFound, "NotFoundException", "not found: "+r.Method+" "+r.URL.Path)
	}
}

func (a *Azure) withDefinition(w http.ResponseWriter, id int, f func(*definition)) {
	// Definitions - Get of an unknown id (REST reference: 404).
	withItem(&a.pipelines, &a.pipelines.defs, func(d *definition) bool { return d.ID == id }, f, func() {
		devopsError(w, http.StatusNotFound, "DefinitionNotFoundException", fmt.Sprintf("The pipeline with ID %d could not be found.", id))
	})
}

func (a *Azure) withBuild(w http.ResponseWriter, id int, f func(*buildRun)) {
	withItem(&a.pipelines, &a.pipelines.builds, func(b *buildRun) bool { return b.ID == id }, f, func() {
		devopsError(w, http.StatusNotFound, "BuildNotFoundException", fmt.Sprintf("The requested build %d could not be found.", id))
	})
}

// withItem calls found with the item of *list that match picks, under s's
// lock, or missing.
func withItem[T any](s *pipelineState, list *[]*T, match func(*T) bool, found func(*T), missing func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.IndexFunc(*list, match); i >= 0 {
		found((*list)[i])
		return
	}
	missing()
}

// listDefinitions is Definitions - List: ?name= (exact, case-insensitive)
// and ?path= filter; BuildDefinitionReference items.
func (a *Azure) listDefinitions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a.pipelines.mu.Lock()
	defer a.pipelines.mu.Unlock()
	list := []any{}
	for _, d := range a.pipelines.defs {
		if name := q.Get("name"); name != "" && !strings.EqualFold(name, d.Name) {
			continue
		}
		if p := q.Get("path"); p != "" && !strings.EqualFold(normalFolder(p), d.Path) {
			continue
		}
		list = append(list, a.definitionRef(d))
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(list), "value": list})
}

// definitionBody is what Definitions - Create and Update read of a
// build.BuildDefinition; everything else of it is ignored.
type definitionBody struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Path     string `json:"path"`
	Revision int    `json:"revision"`
	Process  *struct {
		Type         int    `json:"type"`
		YAMLFilename string `json:"yamlFilename"`
	} `json:"process"`
	Repository *struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"repository"`
}

// saveDefinition is Definitions - Create (id 0) and Definitions - Update:
// a YAML process (type 2, build.YamlProcess) in an Azure Repos Git
// repository (type TfsGit) of the project; an update must name the
// revision it replaces, as the service refuses a stale one.
func (a *Azure) saveDefinition(w http.ResponseWriter, r *http.Request, id int) {
	var body definitionBody
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		devopsError(w, http.StatusBadRequest, "InvalidRequestException", "The request body is not a build definition: "+err.Error())
		return
	}
	bad := func(msg string) { devopsError(w, http.StatusBadRequest, "DefinitionValidationException", msg) }
	switch {
	case strings.TrimSpace(body.Name) == "":
		bad("A pipeline must have a name.")
		return
	case body.Process == nil || body.Process.Type != 2 || body.Process.YAMLFilename == "":
		bad("The stand-in keeps YAML pipelines only: give process {type: 2, yamlFilename}.")
		return
	case body.Repository == nil || !strings.EqualFold(body.Repository.Type, "TfsGit"):
		bad("The stand-in's repositories are Azure Repos Git ones: give repository {type: TfsGit, id or name}.")
		return
	}
	repoName, repoID, ok := a.repository(body.Repository.ID, body.Repository.Name)
	if !ok {
		devopsError(w, http.StatusNotFound, "GitRepositoryNotFoundException", fmt.Sprintf("TF401019: The Git repository with name or identifier %s does not exist or you do not have permissions for the operation you are attempting.", orString(body.Repository.ID, body.Repository.Name)))
		return
	}
	folder := normalFolder(body.Path)
	s := &a.pipelines
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.defs {
		if d.ID != id && strings.EqualFold(d.Name, body.Name) && strings.EqualFold(d.Path, folder) {
			devopsError(w, http.StatusConflict, "DefinitionExistsException", fmt.Sprintf("The pipeline %s already exists in folder %s.", body.Name, folder))
			return
		}
	}
	var d *definition
	if id == 0 {
		d = &definition{ID: len(s.defs) + 1, Created: a.clock.Now()}
		s.defs = append(s.defs, d)
	} else {
		i := slices.IndexFunc(s.defs, func(d *definition) bool { return d.ID == id })
		if i < 0 {
			devopsError(w, http.StatusNotFound, "DefinitionNotFoundException", fmt.Sprintf("The pipeline with ID %d could not be found.", id))
			return
		}
		d = s.defs[i]
		if body.Revision != d.Revision {
			devopsError(w, http.StatusConflict, "DefinitionRevisionMismatchException", fmt.Sprintf("The pipeline %s was changed since revision %d: it is at revision %d.", d.Name, body.Revision, d.Revision))
			return
		}
	}
	d.Revision++
	d.Name, d.Path, d.RepositoryName, d.RepositoryID, d.YAMLFile = body.Name, folder, repoName, repoID, body.Process.YAMLFilename
	writeJSON(w, http.StatusOK, a.definitionJSON(d))
}

func (a *Azure) repository(id, name string) (string, string, bool) {
	for n := range a.opts.Pipelines.Repositories {
		if strings.EqualFold(n, name) || strings.EqualFold(repositoryID(a.ProjectID, n), id) {
			return n, repositoryID(a.ProjectID, n), true
		}
	}
	return "", "", false
}

// repositoryID is a stable id for a repository of the project (a name-based UUID).
func repositoryID(project, name string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(strings.ToLower(project+"/"+name))).String()
}

// RepositoryID is the id of the project's repository name, as Git -
// Repositories would give it.
func (a *Azure) RepositoryID(name string) string { return repositoryID(a.ProjectID, name) }

// normalFolder is a definition folder as the service keeps it: `\` separated,
// with a leading `\` ("\" is the root).
func normalFolder(p string) string {
	p = strings.Trim(strings.ReplaceAll(p, "/", `\`), `\`)
	return `\` + p
}

func (a *Azure) projectURL() string { return a.CollectionURI + a.ProjectID }

func (a *Azure) definitionRef(d *definition) map[string]any {
	return map[string]any{
		"id": d.ID, "name": d.Name, "path": d.Path, "revision": d.Revision, "type": "build", "queueStatus": "enabled",
		"createdDate": stamp(d.Created), "url": fmt.Sprintf("%s/_apis/build/Definitions/%d?revision=%d", a.projectURL(), d.ID, d.Revision),
		"uri": fmt.Sprintf("vstfs:///Build/Definition/%d", d.ID), "project": a.projectRef(),
	}
}

func (a *Azure) definitionJSON(d *definition) map[string]any {
	out := a.definitionRef(d)
	out["process"] = map[string]any{"type": 2, "yamlFilename": d.YAMLFile}
	out["repository"] = map[string]any{"id": d.RepositoryID, "name": d.RepositoryName, "type": "TfsGit",
		"defaultBranch": "refs/heads/main", "url": a.CollectionURI + a.Project + "/_git/" + d.RepositoryName}
	return out
}

func (a *Azure) projectRef() map[string]any {
	return map[string]any{"id": a.ProjectID, "name": a.Project, "state": "wellFormed", "visibility": "private"}
}

// pipelineJSON is a pipelines.Pipeline: the same definition seen through
// the Pipelines API (a YAML pipeline's id is its definition's).
func (a *Azure) pipelineJSON(d *definition) map[string]any {
	return map[string]any{"id": d.ID, "name": d.Name, "folder": d.Path, "revision": d.Revision,
		"url":           fmt.Sprintf("%s/_apis/pipelines/%d?revision=%d", a.projectURL(), d.ID, d.Revision),
		"configuration": map[string]any{"type": "yaml", "path": d.YAMLFile, "repository": map[string]any{"id": d.RepositoryID, "type": "azureReposGit"}},
	}
}

func (a *Azure) listPipelines(w http.ResponseWriter) {
	a.pipelines.mu.Lock()
	defer a.pipelines.mu.Unlock()
	list := []any{}
	for _, d := range a.pipelines.defs {
		p := a.pipelineJSON(d)
		delete(p, "configuration") // Pipelines - List leaves it out
		list = append(list, p)
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(list), "value": list})
}

// runPipeline is Runs - Run Pipeline: it queues a run of the definition's
// YAML on the branch resources.repositories.self.refName names (default
// refs/heads/main), and answers the new run (state inProgress).
func (a *Azure) runPipeline(w http.ResponseWriter, r *http.Request, id int) {
	var body struct {
		Resources struct {
			Repositories map[string]struct {
				RefName string `json:"refName"`
			} `json:"repositories"`
		} `json:"resources"`
		Variables map[string]struct {
			Value    string `json:"value"`
			IsSecret bool   `json:"isSecret"`
		} `json:"variables"`
		PreviewRun bool `json:"previewRun"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		devopsError(w, http.StatusBadRequest, "InvalidRequestException", "The request body is not run parameters: "+err.Error())
		return
	}
	if body.PreviewRun {
		devopsError(w, http.StatusBadRequest, "InvalidRequestException", "The stand-in does not preview runs.")
		return
	}
	vars := map[string]string{}
	for k, v := range body.Variables {
		if !slices.Contains(queueTimeVariables, strings.ToLower(k)) {
			devopsError(w, http.StatusBadRequest, "PipelineValidationException", fmt.Sprintf("You can't set the following variables (%s). If you want to be able to set these variables, then edit the pipeline and select Settable at queue time on the variables tab of the pipeline editor.", k))
			return
		}
		vars[strings.ToLower(k)] = v.Value
	}
	branch := "refs/heads/main"
	if self, ok := body.Resources.Repositories["self"]; ok && self.RefName != "" {
		branch = self.RefName
	}
	s := &a.pipelines
	s.mu.Lock()
	i := slices.IndexFunc(s.defs, func(d *definition) bool { return d.ID == id })
	if i < 0 {
		s.mu.Unlock()
		devopsError(w, http.StatusNotFound, "PipelineNotFoundException", fmt.Sprintf("The pipeline with ID %d could not be found.", id))
		return
	}
	def := *s.defs[i]
	s.mu.Unlock()
	if branch != "refs/heads/main" {
		devopsError(w, http.StatusBadRequest, "PipelineValidationException", fmt.Sprintf("Unable to resolve the reference '%s' to a specific version. Verify the reference exists in the source repository.", branch))
		return
	}
	sources := a.opts.Pipelines.Repositories[def.RepositoryName]
	file := filepath.Join(sources, filepath.FromSlash(strings.TrimPrefix(path.Clean("/"+def.YAMLFile), "/")))
	if _, err := os.Stat(file); err != nil {
		devopsError(w, http.StatusBadRequest, "PipelineValidationException", fmt.Sprintf("File %s not found in repository %s branch %s.", def.YAMLFile, def.RepositoryName, branch))
		return
	}
	p, err := pipeline.Load(file)
	if err != nil {
		devopsError(w, http.StatusBadRequest, "PipelineValidationException", fmt.Sprintf("%s (Line: 1, Col: 1): %v", def.YAMLFile, err))
		return
	}
	now := a.clock.Now()
	s.mu.Lock()
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
	}
	b := &buildRun{ID: len(s.builds) + 1, Def: def, Branch: branch, Variables: vars, Status: "inProgress",
		Queued: now, Started: now, PlanID: newID()}
	b.Number = fmt.Sprintf("%s.%d", now.UTC().Format("20060102"), b.ID)
	s.builds = append(s.builds, b)
	ctx := s.ctx
	s.wg.Add(1)
	out := a.runJSON(b)
	s.mu.Unlock()
	if agentRun := a.opts.Pipelines.Agent; agentRun != nil {
		job := AgentJob{Pipeline: p, Sources: sources, WorkDir: filepath.Join(filepath.Dir(a.CAFile), "agent", "run-"+strconv.Itoa(b.ID)),
			BuildID: b.ID, BuildNumber: b.Number, DefinitionID: def.ID, DefinitionName: def.Name, SourceBranch: branch, Variables: vars}
		go func() {
			defer s.wg.Done()
			res, err := agentRun(ctx, a, job)
			a.finishRun(b, res, err)
		}()
	} else {
		s.wg.Done()
	}
	writeJSON(w, http.StatusOK, out)
}

// finishRun records a run the agent finished: the timeline, logs and
// summary attachments, and the result.
func (a *Azure) finishRun(b *buildRun, res AgentResult, runErr error) {
	rec := newRecorder(b, a.buildURL(b), res.Secrets, a.clock.Now())
	if res.Result != nil {
		rec.pipeline(res.Result)
	}
	if runErr != nil {
		// The run could not go on (a YAML the runner refused, a missing
		// group): the server fails the run with the error as an issue.
		rec.add("Stage", "__system", "", "failed", []string{"##[error]" + runErr.Error()}, []string{runErr.Error()}, nil)
	}
	s := &a.pipelines
	s.mu.Lock()
	defer s.mu.Unlock()
	b.Records, b.Logs, b.Attachments = rec.records, rec.logs, rec.attachments
	b.Status, b.Finished = "completed", a.clock.Now()
	b.Result = "succeeded"
	switch {
	case runErr != nil || res.Result == nil || res.Result.Result == "Failed":
		b.Result = "failed"
	case res.Result.Result == "SucceededWithIssues":
		b.Result = "partiallySucceeded"
	}
}

// recorder turns a pipeline.Result into the server's records of a run.
type recorder struct {
	b           *buildRun
	buildURL    string
	masker      agent.Masker // the agent's masking rules: every form of every secret
	at          time.Time
	records     []map[string]any
	logs        [][]string
	attachments []attachment
}

func newRecorder(b *buildRun, buildURL string, secrets []string, at time.Time) *recorder {
	c := &recorder{b: b, buildURL: buildURL, at: at}
	for _, secret := range secrets {
		c.masker.Add(secret)
	}
	return c
}

// mask hides secrets as the agent's log masker does (***), with package
// agent's Masker, which follows the agent's rules.
func (c *recorder) mask(s string) string { return c.masker.Mask(s) }

// add appends a timeline record (build.TimelineRecord) of typ with a log
// of lines; it returns the record's id.
func (c *recorder) add(typ, name, parent, result string, lines, errs []string, task map[string]any) string {
	id := newID()
	ts := c.at.UTC().Format("2006-01-02T15:04:05.0000000Z")
	log := make([]string, 0, len(lines))
	for _, l := range lines {
		// Each line of a build log starts with its time (Logs - Get Build Log Lines).
		log = append(log, ts+" "+c.mask(l))
	}
	c.logs = append(c.logs, log)
	logID := len(c.logs)
	issues := []any{}
	for _, e := range errs {
		issues = append(issues, map[string]any{"type": "error", "category": "General", "message": c.mask(e)})
	}
	r := map[string]any{
		"id": id, "type": typ, "name": name, "identifier": nil, "state": "completed", "result": result,
		"startTime": stamp(c.at), "finishTime": stamp(c.at), "lastModified": stamp(c.at), "order": len(c.records) + 1,
		"attempt": 1, "changeId": len(c.records) + 1, "errorCount": len(errs), "warningCount": 0, "issues": issues,
		"workerName": "Azure Pipelines 2", "percentComplete": 100,
		"log": map[string]any{"id": logID, "type": "Container", "url": fmt.Sprintf("%s/logs/%d", c.buildURL, logID)},
	}
	if parent != "" {
		r["parentId"] = parent
	}
	if task != nil {
		r["task"] = task
	}
	c.records = append(c.records, r)
	return id
}

// timelineResult is a pipeline result as a TaskResult of the timeline
// (build.TaskResultValues: succeeded, succeededWithIssues, failed, skipped).
func timelineResult(r string) string {
	if r == "" {
		return "skipped"
	}
	return strings.ToLower(r[:1]) + r[1:]
}

func (c *recorder) pipeline(res *pipeline.Result) {
	debug := strings.EqualFold(c.b.Variables["system.debug"], "true")
	for _, st := range res.Stages {
		stageID := c.add("Stage", st.Name, "", timelineResult(st.Result), nil, nil, nil)
		for _, j := range st.Jobs {
			jobID := c.add("Job", j.Name, stageID, timelineResult(j.Result), nil, nil, nil)
			for _, step := range j.Steps {
				name := step.DisplayName
				if name == "" {
					name = step.Name
				}
				lines := []string{"##[section]Starting: " + name}
				lines = append(lines, stepLog(step, debug)...)
				lines = append(lines, "##[section]Finishing: "+name)
				recID := c.add("Task", name, jobID, timelineResult(step.Result), lines, step.Errors, map[string]any{"name": step.Task})
				for _, path := range step.Summaries {
					data, err := os.ReadFile(path)
					if err != nil {
						continue // the agent uploads only files it can read
					}
					c.attachments = append(c.attachments, attachment{Type: SummaryAttachmentType, Name: filepath.Base(path), RecordID: recID, Content: []byte(c.mask(string(data)))})
				}
			}
		}
	}
}

// stepLog is what the agent writes to a step's log of its output: each
// line as it is, except ##vso commands, which it processes instead and, in
// a run with system.debug, traces as "##[debug]Processed: <command>"
// (azure-pipelines-agent src/Agent.Worker/WorkerCommandManager.cs
// TryProcessCommand; ExecutionContext.Debug writes only when System.Debug
// is true). A ##vso[task.debug] is not traced. The agent traces the line
// unescaped (CommandStringConvertor.Unescape); the stand-in keeps the
// command as the task wrote it, which differs only for values holding
// %, ;, ], or line breaks.
func stepLog(step *pipeline.StepResult, debug bool) []string {
	var out []string
	for _, text := range []string{step.Stdout, step.Stderr} {
		for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			if line == "" {
				continue
			}
			cmd, ok := agent.ParseCommand(line)
			switch {
			case !ok:
				out = append(out, line)
			case debug && !(cmd.Area == "task" && cmd.Event == "debug"):
				out = append(out, "##[debug]Processed: "+strings.TrimSpace(line[strings.Index(line, "##vso["):]))
			}
		}
	}
	if step.ExitCode != 0 {
		out = append(out, fmt.Sprintf("##[error]Exit code %d returned from process", step.ExitCode))
	}
	return out
}

func (a *Azure) buildURL(b *buildRun) string {
	return fmt.Sprintf("%s/_apis/build/Builds/%d", a.projectURL(), b.ID)
}

// attachmentURL is an attachment's _links.self.href, the route of
// Attachments - Get: .../builds/{buildId}/{timelineId}/{recordId}/attachments/{type}/{name}.
func (a *Azure) attachmentURL(b *buildRun, at attachment) string {
	return fmt.Sprintf("%s/_apis/build/builds/%d/%s/%s/attachments/%s/%s", a.projectURL(), b.ID, b.PlanID, at.RecordID, at.Type, at.Name)
}

// buildJSON is a build.Build.
func (a *Azure) buildJSON(b *buildRun) map[string]any {
	out := map[string]any{
		"id": b.ID, "buildNumber": b.Number, "status": b.Status, "queueTime": stamp(b.Queued), "startTime": stamp(b.Started),
		"definition": map[string]any{"id": b.Def.ID, "name": b.Def.Name, "path": b.Def.Path, "revision": b.Def.Revision, "type": "build", "project": a.projectRef()},
		"project":    a.projectRef(), "sourceBranch": b.Branch, "reason": "manual", "priority": "normal",
		"orchestrationPlan": map[string]any{"planId": b.PlanID}, "plans": []any{map[string]any{"planId": b.PlanID}},
		"repository": map[string]any{"id": b.Def.RepositoryID, "type": "TfsGit"},
		"url":        a.buildURL(b), "uri": fmt.Sprintf("vstfs:///Build/Build/%d", b.ID),
		"logs": map[string]any{"id": 0, "type": "Container", "url": a.buildURL(b) + "/logs"},
	}
	if b.Status == "completed" {
		out["result"], out["finishTime"] = b.Result, stamp(b.Finished)
	}
	return out
}

// runJSON is a pipelines.Run; its result is succeeded or failed
// (pipelines.RunResultValues has no partial success: the build's
// partiallySucceeded reads succeeded).
func (a *Azure) runJSON(b *buildRun) map[string]any {
	out := map[string]any{
		"id": b.ID, "name": b.Number, "state": b.Status, "createdDate": stamp(b.Queued),
		"pipeline": map[string]any{"id": b.Def.ID, "name": b.Def.Name, "folder": b.Def.Path, "revision": b.Def.Revision,
			"url": fmt.Sprintf("%s/_apis/pipelines/%d?revision=%d", a.projectURL(), b.Def.ID, b.Def.Revision)},
		"resources": map[string]any{"repositories": map[string]any{"self": map[string]any{
			"refName": b.Branch, "repository": map[string]any{"id": b.Def.RepositoryID, "type": "azureReposGit"}}}},
		"url": fmt.Sprintf("%s/_apis/pipelines/%d/runs/%d", a.projectURL(), b.Def.ID, b.ID),
	}
	if b.Status == "completed" {
		result := b.Result
		if result == "partiallySucceeded" {
			result = "succeeded"
		}
		out["result"], out["finishedDate"] = result, stamp(b.Finished)
	}
	return out
}

// stamp is a time as Azure DevOps writes it (azuredevops.Time parses it).
func stamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func orString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// stop cancels the runs under way and waits for their agents.
func (s *pipelineState) stop() {
	s.mu.Lock()
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
