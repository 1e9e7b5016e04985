package train

import (
	"cmp"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sdkcompute "github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/compute"
	"github.com/brickferry/brickferry/internal/jobspec"
)

// What to run (input runType).
const (
	runNotebook    = "notebook"
	runPythonFile  = "pythonFile"
	runPythonWheel = "pythonWheel"
	runExistingJob = "existingJob"
	runJobFile     = "jobFile"
)

// Where the code comes from (input codeSource).
const (
	codeWorkspace       = "workspace"
	codeBuildRepository = "buildRepository"
	codeGitFolder       = "gitFolder"
)

// Options are the task's inputs, read and validated before any remote call.
type Options struct {
	RunType string

	NotebookPath    string
	PythonFile      string
	WheelPackage    string
	WheelEntryPoint string
	JobID           int64  // existing job by id
	JobName         string // existing job by name
	JobFile         string
	Spec            *jobspec.Spec

	CodeSource    string
	Git           *jobs.GitSource // codeSource = buildRepository
	GitFolderPath string          // codeSource = gitFolder
	GitBranch     string          // the branch the Git folder is updated to

	// Compute is where a notebook, Python file or wheel runs (the compute
	// inputs, shared with BatchScore: package compute).
	Compute   compute.Spec
	Libraries []sdkcompute.Library

	Parameters []agent.KeyValue // user's, then trace parameters not overridden
	RunName    string
	// RunNamePrefix is set when RunName is the default (the pipeline's name
	// and the build number): the part every build's runs share, which
	// finds the earlier runs that predict this one's end.
	RunNamePrefix string

	Wait             bool
	Timeout          time.Duration
	Experiment       string
	RequireMLflowRun bool
}

// maxTimeout bounds the timeout input (one week).
const maxTimeout = 7 * 24 * time.Hour

// readOptions reads every input into Options. Problems are recorded in in
// (see agent.Inputs.Err); nothing remote is touched.
func readOptions(env agent.Env, in *agent.Inputs) *Options {
	sys := env.System()
	o := &Options{RunType: in.Choice("runType")}
	switch o.RunType {
	case runNotebook:
		o.NotebookPath = in.String("notebookPath")
	case runPythonFile:
		o.PythonFile = in.String("pythonFile")
	case runPythonWheel:
		o.WheelPackage = in.String("wheelPackage")
		o.WheelEntryPoint = in.String("wheelEntryPoint")
	case runExistingJob:
		job := in.String("job")
		if id, err := strconv.ParseInt(job, 10, 64); err == nil {
			if id <= 0 {
				in.Fail("job", "%d is not a job id", id)
			}
			o.JobID = id
		} else {
			o.JobName = job
		}
	case runJobFile:
		o.JobFile = in.FilePath("jobFile")
		if o.JobFile != "" && !filepath.IsAbs(o.JobFile) && sys.SourcesDir != "" {
			// The agent passes a filePath as typed; it is relative to the sources.
			o.JobFile = filepath.Join(sys.SourcesDir, o.JobFile)
		}
		if o.JobFile != "" {
			o.Spec = readSpec(in, o.JobFile)
		}
	}

	if o.RunType != runExistingJob {
		o.CodeSource = in.Choice("codeSource")
	}
	switch o.CodeSource {
	case codeBuildRepository:
		o.Git = buildGitSource(env, in)
	case codeGitFolder:
		o.GitFolderPath = in.String("gitFolderPath")
		if o.GitFolderPath != "" && !strings.HasPrefix(o.GitFolderPath, "/") {
			in.Fail("gitFolderPath", "%q is not a workspace path: give the folder's absolute path, e.g. /Repos/QA/churn", o.GitFolderPath)
		}
		o.GitBranch = strings.TrimPrefix(sys.SourceBranch, "refs/heads/")
		if o.GitBranch == "" || strings.HasPrefix(o.GitBranch, "refs/") {
			in.Fail("codeSource", "a Git folder can only be updated to a branch, and this build is of %q; use buildRepository to run the exact commit", sys.SourceBranch)
		}
	}
	o.checkCodePaths(in)

	switch o.RunType {
	case runNotebook, runPythonFile, runPythonWheel:
		// No default size: a training run states its cluster (workers,
		// autoscale or single node).
		o.Compute = compute.FromInputs(in, -1)
		o.Libraries = readLibraries(in, o.Compute.Kind, o.RunType)
	}

	o.Parameters = in.KeyValues("parameters")
	if in.Bool("traceParameters") {
		o.Parameters = withTrace(o.Parameters, sys)
	}
	o.RunName = in.String("runName")
	if o.RunName == "" {
		o.RunName = strings.TrimSpace(sys.DefinitionName + " " + sys.BuildNumber)
		if sys.DefinitionName != "" && sys.BuildNumber != "" {
			o.RunNamePrefix = sys.DefinitionName + " "
		}
		if o.RunName == "" {
			o.RunName = "brickferry DatabricksTrain"
		}
	}

	o.Wait = in.Bool("waitForCompletion")
	if o.Wait {
		o.Timeout = in.Minutes("timeoutMinutes", time.Second, maxTimeout)
		o.Experiment = in.String("mlflowExperiment")
		o.RequireMLflowRun = in.Bool("requireMlflowRun")
	}
	return o
}

func readSpec(in *agent.Inputs, path string) *jobspec.Spec {
	data, err := os.ReadFile(path)
	if err != nil {
		in.Fail("jobFile", "cannot read %s: %v", path, err)
		return nil
	}
	spec, err := jobspec.Parse(data)
	if err != nil {
		in.Fail("jobFile", "%s: %v", path, err)
		return nil
	}
	return spec
}

// checkCodePaths: workspace paths are absolute; paths in the build's
// repository are relative to its root (Jobs git_source).
func (o *Options) checkCodePaths(in *agent.Inputs) {
	check := func(name, path string) {
		if path == "" {
			return
		}
		repo := o.CodeSource == codeBuildRepository
		switch {
		case repo && strings.HasPrefix(path, "/"):
			in.Fail(name, "%q: with the code from the build's repository, give the path relative to the repository root (e.g. notebooks/train)", path)
		case !repo && name == "notebookPath" && !strings.HasPrefix(path, "/"):
			in.Fail(name, "%q is not a workspace path: it must start with / (e.g. /Repos/mlops/churn/notebooks/train), or choose the build's repository as the code source", path)
		}
	}
	check("notebookPath", o.NotebookPath)
	check("pythonFile", o.PythonFile)
}

// buildGitSource is the Jobs git_source for the commit being built.
func buildGitSource(env agent.Env, in *agent.Inputs) *jobs.GitSource {
	sys := env.System()
	provider, ok := gitProviders[strings.ToLower(env.Get("BUILD_REPOSITORY_PROVIDER"))]
	if env.Get("BUILD_REPOSITORY_PROVIDER") == "" {
		provider, ok = guessProvider(sys.RepositoryURI)
	}
	switch {
	case sys.RepositoryURI == "" || sys.SourceVersion == "":
		in.Fail("codeSource", "the build's repository is not known (Build.Repository.Uri and Build.SourceVersion are empty): run in a pipeline that checks out a Git repository, or use the workspace")
		return nil
	case !ok:
		in.Fail("codeSource", "Databricks cannot check out a %s repository (%s); use the workspace or a Git folder", env.Get("BUILD_REPOSITORY_PROVIDER"), sys.RepositoryURI)
		return nil
	}
	return &jobs.GitSource{GitUrl: stripUserInfo(sys.RepositoryURI), GitProvider: provider, GitCommit: sys.SourceVersion}
}

// gitProviders maps Build.Repository.Provider to the Jobs API git_provider.
var gitProviders = map[string]jobs.GitProvider{
	"tfsgit":           jobs.GitProviderAzureDevOpsServices,
	"github":           jobs.GitProviderGitHub,
	"githubenterprise": jobs.GitProviderGitHubEnterprise,
	"bitbucket":        jobs.GitProviderBitbucketCloud,
}

func guessProvider(uri string) (jobs.GitProvider, bool) {
	switch {
	case strings.Contains(uri, "dev.azure.com") || strings.Contains(uri, ".visualstudio.com"):
		return jobs.GitProviderAzureDevOpsServices, true
	case strings.Contains(uri, "github.com"):
		return jobs.GitProviderGitHub, true
	}
	return "", false
}

// stripUserInfo drops "org@" from https://org@dev.azure.com/... (the agent's
// Build.Repository.Uri often has it; Databricks uses its own Git credential).
func stripUserInfo(uri string) string {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return uri
	}
	host, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndex(host, "@"); at >= 0 {
		host = host[at+1:]
	}
	return scheme + "://" + host + "/" + path
}

// readLibraries parses the libraries lines.
func readLibraries(in *agent.Inputs, computeKind compute.Kind, runType string) []sdkcompute.Library {
	var out []sdkcompute.Library
	for _, line := range in.Lines("libraries") {
		kind, value, hasKind := strings.Cut(line, ":")
		kind = strings.ToLower(strings.TrimSpace(kind))
		if !hasKind || !libraryKinds[kind] {
			kind, value = "pypi", line
			if strings.HasSuffix(strings.ToLower(line), ".whl") {
				kind = "whl"
			}
		}
		value = strings.TrimSpace(value)
		if value == "" {
			in.Fail("libraries", "%q names no library", line)
			continue
		}
		var lib sdkcompute.Library
		switch kind {
		case "pypi":
			lib.Pypi = &sdkcompute.PythonPyPiLibrary{Package: value}
		case "whl":
			lib.Whl = value
		case "jar":
			lib.Jar = value
		case "requirements":
			lib.Requirements = value
		case "maven":
			if strings.Count(value, ":") != 2 {
				in.Fail("libraries", "%q: Maven coordinates are group:artifact:version", line)
				continue
			}
			lib.Maven = &sdkcompute.MavenLibrary{Coordinates: value}
		}
		if computeKind == compute.Serverless {
			switch {
			case runType == runNotebook:
				in.Fail("libraries", "serverless notebooks install their libraries themselves (%%pip install); remove %q or use a cluster", line)
				continue
			case lib.Pypi == nil && lib.Whl == "":
				in.Fail("libraries", "%q: serverless compute takes only PyPI packages and wheels", line)
				continue
			}
		}
		out = append(out, lib)
	}
	return out
}

var libraryKinds = map[string]bool{"pypi": true, "whl": true, "jar": true, "maven": true, "requirements": true}

// Trace parameter names (the example notebook logs them as run tags).
const (
	paramBuildID = "brickferry_build_id"
	paramCommit  = "brickferry_commit"
	paramBranch  = "brickferry_branch"
	paramRunURL  = "brickferry_run_url"
)

// withTrace adds the trace parameters the user did not set.
func withTrace(params []agent.KeyValue, sys agent.System) []agent.KeyValue {
	have := map[string]bool{}
	for _, p := range params {
		have[p.Key] = true
	}
	for _, kv := range []agent.KeyValue{
		{Key: paramBuildID, Value: cmp.Or(sys.BuildID, sys.ReleaseID)},
		{Key: paramCommit, Value: sys.SourceVersion},
		{Key: paramBranch, Value: sys.SourceBranch},
		{Key: paramRunURL, Value: sys.RunURL()},
	} {
		if kv.Value != "" && !have[kv.Key] {
			params = append(params, kv)
		}
	}
	return params
}
