package agent

import (
	"cmp"
	"net/url"
	"strconv"
	"strings"
)

// System is what the agent tells a task about the pipeline run it is part of.
type System struct {
	HostType       string // build, release or deployment (System.HostType)
	CollectionURI  string // https://dev.azure.com/org/ (always ends with '/')
	CollectionID   string // System.CollectionId: the organization's id
	Project        string
	ProjectID      string
	BuildID        string
	BuildNumber    string
	DefinitionName string // Build.DefinitionName: the pipeline's name
	DefinitionID   string // System.DefinitionId: the pipeline's id in its project
	JobAttempt     string
	JobID          string
	PlanID         string
	StepName       string // the step's name, or its task instance name
	SourceVersion  string // the commit being built
	SourceBranch   string
	RepositoryURI  string
	ReleaseID      string
	ReleaseURI     string // Release.ReleaseWebURL
	Debug          bool
	TempDir        string // Agent.TempDirectory
	ToolsDir       string // Agent.ToolsDirectory
	SourcesDir     string // Build.SourcesDirectory or System.DefaultWorkingDirectory
	OIDCRequestURI string

	// The classic release pipeline of a release job.
	ReleaseDefinitionID   string // Release.DefinitionId
	ReleaseDefinitionName string // Release.DefinitionName
}

// System reads the system and build variables.
func (e Env) System() System {
	s := System{
		HostType:       e["SYSTEM_HOSTTYPE"],
		CollectionURI:  e["SYSTEM_TEAMFOUNDATIONCOLLECTIONURI"],
		CollectionID:   e["SYSTEM_COLLECTIONID"],
		Project:        e["SYSTEM_TEAMPROJECT"],
		ProjectID:      e["SYSTEM_TEAMPROJECTID"],
		BuildID:        e["BUILD_BUILDID"],
		BuildNumber:    e["BUILD_BUILDNUMBER"],
		DefinitionName: e["BUILD_DEFINITIONNAME"],
		DefinitionID:   e["SYSTEM_DEFINITIONID"],
		JobAttempt:     e["SYSTEM_JOBATTEMPT"],
		JobID:          e["SYSTEM_JOBID"],
		PlanID:         e["SYSTEM_PLANID"],
		StepName:       cmp.Or(e["SYSTEM_STEPNAME"], e["SYSTEM_TASKINSTANCENAME"], e["SYSTEM_TASKINSTANCEID"]),
		SourceVersion:  e["BUILD_SOURCEVERSION"],
		SourceBranch:   e["BUILD_SOURCEBRANCH"],
		RepositoryURI:  e["BUILD_REPOSITORY_URI"],
		ReleaseID:      e["RELEASE_RELEASEID"],
		ReleaseURI:     e["RELEASE_RELEASEWEBURL"],
		Debug:          strings.EqualFold(e["SYSTEM_DEBUG"], "true"),
		TempDir:        e["AGENT_TEMPDIRECTORY"],
		ToolsDir:       e["AGENT_TOOLSDIRECTORY"],
		SourcesDir:     cmp.Or(e["BUILD_SOURCESDIRECTORY"], e["SYSTEM_DEFAULTWORKINGDIRECTORY"]),
		OIDCRequestURI: e["SYSTEM_OIDCREQUESTURI"],

		ReleaseDefinitionID:   e["RELEASE_DEFINITIONID"],
		ReleaseDefinitionName: e["RELEASE_DEFINITIONNAME"],
	}
	if s.CollectionURI != "" && !strings.HasSuffix(s.CollectionURI, "/") {
		s.CollectionURI += "/"
	}
	return s
}

// RunURL is the web address of this pipeline run: the release for classic
// release pipelines, otherwise the build results page. Empty outside a pipeline.
func (s System) RunURL() string {
	if s.ReleaseURI != "" {
		return s.ReleaseURI
	}
	if s.CollectionURI == "" || s.BuildID == "" {
		return ""
	}
	project := s.ProjectID
	if project == "" {
		project = s.Project
	}
	return s.CollectionURI + url.PathEscape(project) + "/_build/results?buildId=" + url.QueryEscape(s.BuildID)
}

// Attempt is System.JobAttempt as a number (1 when not set).
func (s System) Attempt() int {
	n, err := strconv.Atoi(s.JobAttempt)
	if err != nil || n < 1 {
		return 1
	}
	return n
}
