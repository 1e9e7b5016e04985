// Package registry is the one facade over both model registries of an Azure
// Databricks workspace: the workspace model registry (MLflow's
// /api/2.0/mlflow/registered-models and model-versions routes, with stages)
// and Unity Catalog (/api/2.1/unity-catalog/models, with aliases, plus
// MLflow's UC routes that databricks-sdk-go v0.81.0 lacks, ucroutes.go). It
// reads versions and resolves version references (modeluri.VersionRef),
// creates a version once and deletes one (create.go, through
// converge.Converge with the caller's look-up), waits for a version to be
// READY (converge.Poll), moves a version to a stage or alias
// (transition.go), tags versions (tags.go), links to version pages, and
// builds the brickferry_* lineage tags every task writes (lineage.go).
// MLflowPromote's register, transition, gate and copy commands use it.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/modeluri"
)

// Registry is the model registries of one workspace, built from one client
// (cheaper in executable size than the root WorkspaceClient).
//
// Its SDK services are exported for the writes that stay with a command
// (create a registered model, search with a command's own filter); the
// reads, version creates and deletes, transitions and tags go through its
// methods.
type Registry struct {
	Host string // https://adb-....azuredatabricks.net, no trailing slash
	// Client carries the routes the SDK has no service for (MLflow's Unity
	// Catalog routes, ucroutes.go; run artifacts).
	Client     *client.DatabricksClient
	Models     *ml.ModelRegistryAPI         // workspace model registry
	UCModels   *catalog.RegisteredModelsAPI // Unity Catalog models and aliases
	UCVersions *catalog.ModelVersionsAPI    // Unity Catalog model versions
}

// New is the registries of the workspace at host that c connects to.
func New(host string, c *client.DatabricksClient) *Registry {
	return &Registry{
		Host:       strings.TrimSuffix(host, "/"),
		Client:     c,
		Models:     ml.NewModelRegistry(c),
		UCModels:   catalog.NewRegisteredModels(c),
		UCVersions: catalog.NewModelVersions(c),
	}
}

// Version is a model version of either registry, as the tasks need it.
type Version struct {
	Number  int
	Stage   string   // workspace registry
	Aliases []string // Unity Catalog
	Status  string   // READY, PENDING_REGISTRATION, FAILED_REGISTRATION
	Message string   // status message
	RunID   string
	Source  string
	Created int64 // ms since the epoch
	Tags    map[string]string
	// Location is a Unity Catalog version's storage location.
	Location string
}

// FromRegistry is a workspace registry version as a Version.
func FromRegistry(mv ml.ModelVersion) Version {
	n, _ := strconv.Atoi(mv.Version)
	v := Version{Number: n, Stage: mv.CurrentStage, Status: string(mv.Status), Message: mv.StatusMessage,
		RunID: mv.RunId, Source: mv.Source, Created: mv.CreationTimestamp, Tags: map[string]string{}}
	for _, t := range mv.Tags {
		v.Tags[t.Key] = t.Value
	}
	return v
}

// FromUC is a Unity Catalog version as a Version (without aliases, which
// the model carries).
func FromUC(mv catalog.ModelVersionInfo) Version {
	v := Version{Number: mv.Version, Status: string(mv.Status), RunID: mv.RunId, Source: mv.Source, Created: mv.CreatedAt}
	for _, a := range mv.Aliases {
		v.Aliases = append(v.Aliases, a.AliasName)
	}
	return v
}

// NotFound reports whether err is the API's "does not exist".
func NotFound(err error) bool {
	return errors.Is(err, apierr.ErrResourceDoesNotExist) || errors.Is(err, apierr.ErrNotFound)
}

// modelNotFound is the error for a registered model that does not exist.
func (r *Registry) modelNotFound(name modeluri.Name) error {
	return fmt.Errorf("registered model %s not found in %s of workspace %s", name.Full, name.Registry(), r.Host)
}

// Versions lists every version of a model, newest first.
func (r *Registry) Versions(ctx context.Context, name modeluri.Name) ([]Version, error) {
	var out []Version
	if name.UC() {
		all, err := r.UCVersions.ListAll(ctx, catalog.ListModelVersionsRequest{FullName: name.Full})
		if err != nil {
			if NotFound(err) {
				return nil, r.modelNotFound(name)
			}
			return nil, fmt.Errorf("listing the versions of %s: %w", name.Full, err)
		}
		aliases, err := r.Aliases(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, mv := range all {
			v := FromUC(mv)
			v.Aliases = nil
			for a, n := range aliases {
				if n == v.Number {
					v.Aliases = append(v.Aliases, a)
				}
			}
			slices.Sort(v.Aliases)
			out = append(out, v)
		}
	} else {
		all, err := r.Models.SearchModelVersionsAll(ctx, ml.SearchModelVersionsRequest{Filter: "name=" + Quote(name.Full)})
		if err != nil {
			return nil, fmt.Errorf("listing the versions of %s: %w", name.Full, err)
		}
		for _, mv := range all {
			if mv.Name == name.Full {
				out = append(out, FromRegistry(mv))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number > out[j].Number })
	return out, nil
}

// Quote writes a string value of an MLflow search filter.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// Aliases returns a UC model's aliases: alias → version.
func (r *Registry) Aliases(ctx context.Context, name modeluri.Name) (map[string]int, error) {
	m, err := r.UCModels.Get(ctx, catalog.GetRegisteredModelRequest{FullName: name.Full, IncludeAliases: true})
	if err != nil {
		if NotFound(err) {
			return nil, r.modelNotFound(name)
		}
		return nil, fmt.Errorf("reading %s: %w", name.Full, err)
	}
	out := map[string]int{}
	for _, a := range m.Aliases {
		out[a.AliasName] = a.VersionNum
	}
	return out, nil
}

// Resolve finds the version a VersionRef names.
func (r *Registry) Resolve(ctx context.Context, name modeluri.Name, ref modeluri.VersionRef) (Version, error) {
	if ref.Number > 0 {
		return r.Get(ctx, name, ref.Number)
	}
	if ref.Alias != "" {
		mv, err := r.UCVersions.GetByAlias(ctx, catalog.GetByAliasRequest{FullName: name.Full, Alias: ref.Alias})
		if err != nil {
			if NotFound(err) {
				if _, err := r.Aliases(ctx, name); err != nil {
					return Version{}, err
				}
				return Version{}, fmt.Errorf("no version of %s has the alias @%s in workspace %s", name.Full, ref.Alias, r.Host)
			}
			return Version{}, fmt.Errorf("reading %s@%s: %w", name.Full, ref.Alias, err)
		}
		return r.Get(ctx, name, mv.Version)
	}
	all, err := r.Versions(ctx, name)
	if err != nil {
		return Version{}, err
	}
	if ref.Stage != "" {
		if err := r.ModelExists(ctx, name); err != nil {
			return Version{}, err
		}
		for _, v := range all {
			if v.Stage == ref.Stage {
				return v, nil
			}
		}
		return Version{}, fmt.Errorf("no version of %s is in stage %s in workspace %s", name.Full, ref.Stage, r.Host)
	}
	if len(all) == 0 {
		if err := r.ModelExists(ctx, name); err != nil {
			return Version{}, err
		}
		return Version{}, fmt.Errorf("registered model %s has no versions in workspace %s", name.Full, r.Host)
	}
	return all[0], nil
}

// ModelExists checks a workspace registry model (the search above answers an
// empty list for a model that does not exist).
func (r *Registry) ModelExists(ctx context.Context, name modeluri.Name) error {
	if name.UC() {
		_, err := r.Aliases(ctx, name)
		return err
	}
	_, err := r.Models.GetModel(ctx, ml.GetModelRequest{Name: name.Full})
	if NotFound(err) {
		return r.modelNotFound(name)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", name.Full, err)
	}
	return nil
}

// Get reads one version by number.
func (r *Registry) Get(ctx context.Context, name modeluri.Name, n int) (Version, error) {
	if name.UC() {
		mv, err := r.UCVersions.Get(ctx, catalog.GetModelVersionRequest{FullName: name.Full, Version: n})
		if err != nil {
			if NotFound(err) {
				if err := r.ModelExists(ctx, name); err != nil {
					return Version{}, err
				}
				return Version{}, fmt.Errorf("version %d of %s not found in Unity Catalog of workspace %s", n, name.Full, r.Host)
			}
			return Version{}, fmt.Errorf("reading version %d of %s: %w", n, name.Full, err)
		}
		v := FromUC(*mv)
		aliases, err := r.Aliases(ctx, name)
		if err != nil {
			return Version{}, err
		}
		v.Aliases = nil
		for a, num := range aliases {
			if num == n {
				v.Aliases = append(v.Aliases, a)
			}
		}
		slices.Sort(v.Aliases)
		return v, nil
	}
	resp, err := r.Models.GetModelVersion(ctx, ml.GetModelVersionRequest{Name: name.Full, Version: strconv.Itoa(n)})
	if err != nil {
		if NotFound(err) {
			if err := r.ModelExists(ctx, name); err != nil {
				return Version{}, err
			}
			return Version{}, fmt.Errorf("version %d of %s not found in the workspace model registry of %s", n, name.Full, r.Host)
		}
		return Version{}, fmt.Errorf("reading version %d of %s: %w", n, name.Full, err)
	}
	return FromRegistry(*resp.ModelVersion), nil
}

// VersionURL links to a version's page in the workspace UI (for the log,
// the summary and the outputs). The one place the model name is path-escaped.
func (r *Registry) VersionURL(name modeluri.Name, n int) string {
	if name.UC() {
		return fmt.Sprintf("%s/explore/data/models/%s/%s/%s/version/%d", r.Host, name.Catalog, name.Schema, name.Model, n)
	}
	return fmt.Sprintf("%s/ml/models/%s/versions/%d", r.Host, url.PathEscape(name.Full), n)
}

// RunURL links to an MLflow run's page in the workspace UI.
func (r *Registry) RunURL(experimentID, runID string) string {
	return fmt.Sprintf("%s/ml/experiments/%s/runs/%s", r.Host, experimentID, runID)
}
