package modelcopy

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/modeluri"
	"github.com/brickferry/brickferry/internal/registry"
)

// workspace is one connected workspace: its registries (package registry,
// which also holds the SDK services and client the copy writes with) and
// its MLflow experiments.
type workspace struct {
	*registry.Registry
	exps *ml.ExperimentsAPI
}

func newWorkspace(c *client.DatabricksClient) *workspace {
	return &workspace{Registry: registry.New(c.Config.Host, c), exps: ml.NewExperiments(c)}
}

// sourceVersion is the version being copied and where its files are.
type sourceVersion struct {
	name      modeluri.Name
	number    int
	status    string
	runID     string
	run       *ml.Run // nil when the run is not in the source workspace (UC)
	ucID      string  // Unity Catalog: the version's unique id
	metastore string  // Unity Catalog: its metastore
	location  string  // Unity Catalog: storage location
	// artPath is, for a workspace registry version, the model's folder
	// inside its run's artifacts: the name of the folder the copy writes
	// the files to in the target run (artifactDir). The files themselves
	// are read from the registry, never from the run.
	artPath string
	// loggedModel is the logged model a workspace registry version was
	// registered from (MLflow 3): its name names the target's model
	// (loggedmodel.go).
	loggedModel string
	files       []artifacts.File
	read        artifacts.Signer
}

// resolveSource finds the version and lists its files.
func (s *session) resolveSource(ctx context.Context) (*sourceVersion, error) {
	o, w := s.opts, s.src
	sv := &sourceVersion{name: o.Source}
	if o.Source.UC() {
		mv, err := w.ucVersion(ctx, o.Source, o.Version)
		if err != nil {
			return nil, err
		}
		sv.number, sv.status, sv.runID, sv.ucID, sv.metastore, sv.location = mv.Version, string(mv.Status), mv.RunId, mv.Id, mv.MetastoreId, mv.StorageLocation
	} else {
		mv, err := w.registryVersion(ctx, o.Source, o.Version)
		if err != nil {
			return nil, err
		}
		sv.number, _ = strconv.Atoi(mv.Version)
		sv.status, sv.runID = string(mv.Status), mv.RunId
		if sv.runID == "" {
			return nil, fmt.Errorf("version %d of %s has no source run (source %s): only versions registered from an MLflow run can be copied", sv.number, o.Source.Full, mv.Source)
		}
		sv.artPath = mv.Source // resolved against the run below, for the target's folder name
		sv.loggedModel = sourceLoggedModel(mv.Source)
	}
	if sv.status != "READY" {
		return nil, fmt.Errorf("version %d of %s in %s is %s, not READY: only a READY version can be copied", sv.number, o.Source.Full, w.Host, sv.status)
	}
	if sv.runID != "" {
		resp, err := w.exps.GetRun(ctx, ml.GetRunRequest{RunId: sv.runID})
		switch {
		case err == nil:
			sv.run = resp.Run
		case registry.NotFound(err) && o.Source.UC():
			s.log.Warning("The source run %s of %s version %d is not in workspace %s (it was logged in another workspace): the copied run gets the lineage tags but not its parameters and metrics.", sv.runID, o.Source.Full, sv.number, w.Host)
		case registry.NotFound(err):
			// The registry keeps its own copy of the files: a run deleted
			// after registration takes only its data with it.
			s.log.Warning("The source run %s of %s version %d is no longer in workspace %s (deleted after registration): the model's files are read from the registry, and the copied run gets the lineage tags but not the run's parameters and metrics.", sv.runID, o.Source.Full, sv.number, w.Host)
		default:
			return nil, fmt.Errorf("reading the source run %s of %s version %d: %w", sv.runID, o.Source.Full, sv.number, err)
		}
	}
	if !o.Source.UC() {
		// Only names the target's folder: "model" when the source is not a
		// folder of the run's artifacts (or the run is gone).
		sv.artPath = artifactPath(sv.artPath, sv.run)
		if sv.loggedModel != "" {
			s.nameAfterLoggedModel(ctx, sv)
		}
	}
	return sv, nil
}

// listFiles lists the source files and prepares their read URLs.
func (s *session) listFiles(ctx context.Context, sv *sourceVersion) error {
	if sv.name.UC() {
		token, err := s.src.ucCredentials(ctx, sv.name, sv.number, false)
		if err != nil {
			return err
		}
		files, err := s.copier.ListPrefix(ctx, sv.location, token)
		if err != nil {
			return fmt.Errorf("listing the files of %s version %d: %w", sv.name.Full, sv.number, err)
		}
		sv.files = files
		// A UC read token is for the whole folder: refresh it when a file is retried.
		sv.read = func(ctx context.Context, paths []string) (map[string]artifacts.Credential, error) {
			fresh, err := s.src.ucCredentials(ctx, sv.name, sv.number, false)
			if err != nil {
				return nil, err
			}
			sign, err := artifacts.PrefixSigner(sv.location, fresh)
			if err != nil {
				return nil, err
			}
			return sign(ctx, paths)
		}
	} else {
		// The version the registry holds, not its run's artifacts: the run
		// may have been changed or deleted after registration. Read the
		// way MLflow's client reads a registered version
		// (artifacts.ListModelVersion, artifacts.ModelVersionSigner).
		version := strconv.Itoa(sv.number)
		files, err := artifacts.ListModelVersion(ctx, s.src.Client, sv.name.Full, version)
		if err != nil {
			return err
		}
		sv.files = files
		sv.read = artifacts.ModelVersionSigner(s.src.Client, sv.name.Full, version)
	}
	if len(sv.files) == 0 {
		return fmt.Errorf("version %d of %s has no files to copy", sv.number, sv.name.Full)
	}
	return nil
}

// artifactPath is the model's folder inside its run's artifacts, from a
// version's source: runs:/<run>/<path>, or a location under the run's
// artifact URI (dbfs:/databricks/mlflow-tracking/<exp>/<run>/artifacts/<path>);
// "" when the source is no folder of the run's artifacts or the run is gone.
func artifactPath(source string, run *ml.Run) string {
	if rest, ok := strings.CutPrefix(source, "runs:/"); ok {
		_, p, _ := strings.Cut(rest, "/")
		return strings.Trim(p, "/")
	}
	if run != nil && run.Info != nil && run.Info.ArtifactUri != "" {
		if p, ok := strings.CutPrefix(source, strings.TrimSuffix(run.Info.ArtifactUri, "/")+"/"); ok {
			return strings.Trim(p, "/")
		}
	}
	return ""
}

// registryVersion resolves a workspace registry version reference.
func (w *workspace) registryVersion(ctx context.Context, name modeluri.Name, ref modeluri.VersionRef) (*ml.ModelVersion, error) {
	if ref.Number > 0 {
		resp, err := w.Models.GetModelVersion(ctx, ml.GetModelVersionRequest{Name: name.Full, Version: strconv.Itoa(ref.Number)})
		if err != nil {
			if registry.NotFound(err) {
				return nil, fmt.Errorf("version %d of %s not found in the workspace model registry of %s", ref.Number, name.Full, w.Host)
			}
			return nil, fmt.Errorf("reading version %d of %s: %w", ref.Number, name.Full, err)
		}
		return resp.ModelVersion, nil
	}
	all, err := w.Models.SearchModelVersionsAll(ctx, ml.SearchModelVersionsRequest{Filter: "name=" + registry.Quote(name.Full)})
	if err != nil {
		return nil, fmt.Errorf("listing the versions of %s: %w", name.Full, err)
	}
	sort.Slice(all, func(i, j int) bool { return atoi(all[i].Version) > atoi(all[j].Version) })
	for i, mv := range all {
		if mv.Name != name.Full {
			continue
		}
		if ref.Latest || (ref.Stage != "" && mv.CurrentStage == ref.Stage) {
			return &all[i], nil
		}
	}
	if ref.Stage != "" {
		return nil, fmt.Errorf("no version of %s is in stage %s in workspace %s", name.Full, ref.Stage, w.Host)
	}
	return nil, fmt.Errorf("registered model %s has no versions in workspace %s", name.Full, w.Host)
}

// ucVersion resolves a Unity Catalog version reference.
func (w *workspace) ucVersion(ctx context.Context, name modeluri.Name, ref modeluri.VersionRef) (*catalog.ModelVersionInfo, error) {
	switch {
	case ref.Alias != "":
		mv, err := w.UCVersions.GetByAlias(ctx, catalog.GetByAliasRequest{FullName: name.Full, Alias: ref.Alias})
		if err != nil {
			if registry.NotFound(err) {
				return nil, fmt.Errorf("no version of %s has the alias @%s in workspace %s", name.Full, ref.Alias, w.Host)
			}
			return nil, fmt.Errorf("reading %s@%s: %w", name.Full, ref.Alias, err)
		}
		return w.ucGet(ctx, name, mv.Version)
	case ref.Latest:
		all, err := w.UCVersions.ListAll(ctx, catalog.ListModelVersionsRequest{FullName: name.Full})
		if err != nil {
			return nil, fmt.Errorf("listing the versions of %s: %w", name.Full, err)
		}
		best := 0
		for _, mv := range all {
			best = max(best, mv.Version)
		}
		if best == 0 {
			return nil, fmt.Errorf("registered model %s has no versions in workspace %s", name.Full, w.Host)
		}
		return w.ucGet(ctx, name, best)
	default:
		return w.ucGet(ctx, name, ref.Number)
	}
}

func (w *workspace) ucGet(ctx context.Context, name modeluri.Name, n int) (*catalog.ModelVersionInfo, error) {
	mv, err := w.UCVersions.Get(ctx, catalog.GetModelVersionRequest{FullName: name.Full, Version: n})
	if err != nil {
		if registry.NotFound(err) {
			return nil, fmt.Errorf("version %d of %s not found in Unity Catalog of workspace %s", n, name.Full, w.Host)
		}
		return nil, fmt.Errorf("reading version %d of %s: %w", n, name.Full, err)
	}
	return mv, nil
}

// ucCredentials returns a SAS token for a UC version's storage location.
func (w *workspace) ucCredentials(ctx context.Context, name modeluri.Name, n int, write bool) (string, error) {
	op := "MODEL_VERSION_OPERATION_READ"
	if write {
		op = "MODEL_VERSION_OPERATION_READ_WRITE"
	}
	var resp registry.UCCredentialsResponse
	err := w.Client.Do(ctx, http.MethodPost, registry.UCRoute+"generate-temporary-credentials", nil, nil,
		registry.UCCredentialsRequest{Name: name.Full, Version: strconv.Itoa(n), Operation: op}, &resp)
	if err != nil {
		return "", fmt.Errorf("getting storage credentials for %s version %d: %w", name.Full, n, err)
	}
	if resp.Credentials.AzureUserDelegationSAS == nil || resp.Credentials.AzureUserDelegationSAS.SASToken == "" {
		return "", fmt.Errorf("storage credentials for %s version %d are not an Azure SAS: this task copies Unity Catalog models on Azure storage only", name.Full, n)
	}
	return resp.Credentials.AzureUserDelegationSAS.SASToken, nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

var adbHost = regexp.MustCompile(`adb-(\d+)\.`)

// workspaceID is the numeric id of the source workspace, from the run's tags
// or the host name (adb-<id>.<n>.azuredatabricks.net); "" when unknown.
func workspaceID(host string, run *ml.Run) string {
	if run != nil && run.Data != nil {
		for _, t := range run.Data.Tags {
			if t.Key == "mlflow.databricks.workspaceID" && t.Value != "" {
				return t.Value
			}
		}
	}
	if m := adbHost.FindStringSubmatch(host); m != nil {
		return m[1]
	}
	return ""
}
