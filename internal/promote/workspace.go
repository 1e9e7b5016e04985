package promote

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

// workspace holds the Databricks services the task uses, built from one
// client (cheaper in executable size than the root WorkspaceClient).
type workspace struct {
	host       string
	c          *client.DatabricksClient // routes the SDK has no service for (uc.go)
	registry   *ml.ModelRegistryAPI
	runs       *ml.ExperimentsAPI
	ucModels   *catalog.RegisteredModelsAPI
	ucVersions *catalog.ModelVersionsAPI
}

func newWorkspace(host string, c *client.DatabricksClient) *workspace {
	return &workspace{
		host:       strings.TrimSuffix(host, "/"),
		c:          c,
		registry:   ml.NewModelRegistry(c),
		runs:       ml.NewExperiments(c),
		ucModels:   catalog.NewRegisteredModels(c),
		ucVersions: catalog.NewModelVersions(c),
	}
}

// version is a model version of either registry, as the task needs it.
type version struct {
	Number  int
	Stage   string   // workspace registry
	Aliases []string // Unity Catalog
	Status  string   // READY, PENDING_REGISTRATION, FAILED_REGISTRATION
	Message string   // status message
	RunID   string
	Source  string
	Created int64 // ms since the epoch
	Tags    map[string]string
	// location is a Unity Catalog version's storage location (uc.go).
	location string
}

func fromRegistry(mv ml.ModelVersion) version {
	n, _ := strconv.Atoi(mv.Version)
	v := version{Number: n, Stage: mv.CurrentStage, Status: string(mv.Status), Message: mv.StatusMessage,
		RunID: mv.RunId, Source: mv.Source, Created: mv.CreationTimestamp, Tags: map[string]string{}}
	for _, t := range mv.Tags {
		v.Tags[t.Key] = t.Value
	}
	return v
}

func fromUC(mv catalog.ModelVersionInfo) version {
	v := version{Number: mv.Version, Status: string(mv.Status), RunID: mv.RunId, Source: mv.Source, Created: mv.CreatedAt}
	for _, a := range mv.Aliases {
		v.Aliases = append(v.Aliases, a.AliasName)
	}
	return v
}

// notFound reports whether err is the API's "does not exist".
func notFound(err error) bool {
	return errors.Is(err, apierr.ErrResourceDoesNotExist) || errors.Is(err, apierr.ErrNotFound)
}

// modelNotFound is the error for a registered model that does not exist.
func (w *workspace) modelNotFound(name modeluri.Name) error {
	return fmt.Errorf("registered model %s not found in %s of workspace %s", name.Full, name.Registry(), w.host)
}

// versions lists every version of a model, newest first.
func (w *workspace) versions(ctx context.Context, name modeluri.Name) ([]version, error) {
	var out []version
	if name.UC() {
		all, err := w.ucVersions.ListAll(ctx, catalog.ListModelVersionsRequest{FullName: name.Full})
		if err != nil {
			if notFound(err) {
				return nil, w.modelNotFound(name)
			}
			return nil, fmt.Errorf("listing the versions of %s: %w", name.Full, err)
		}
		aliases, err := w.ucAliases(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, mv := range all {
			v := fromUC(mv)
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
		all, err := w.registry.SearchModelVersionsAll(ctx, ml.SearchModelVersionsRequest{Filter: "name=" + quote(name.Full)})
		if err != nil {
			return nil, fmt.Errorf("listing the versions of %s: %w", name.Full, err)
		}
		for _, mv := range all {
			if mv.Name == name.Full {
				out = append(out, fromRegistry(mv))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number > out[j].Number })
	return out, nil
}

// quote writes a string value of an MLflow search filter.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// ucAliases returns a UC model's aliases: alias → version.
func (w *workspace) ucAliases(ctx context.Context, name modeluri.Name) (map[string]int, error) {
	m, err := w.ucModels.Get(ctx, catalog.GetRegisteredModelRequest{FullName: name.Full, IncludeAliases: true})
	if err != nil {
		if notFound(err) {
			return nil, w.modelNotFound(name)
		}
		return nil, fmt.Errorf("reading %s: %w", name.Full, err)
	}
	out := map[string]int{}
	for _, a := range m.Aliases {
		out[a.AliasName] = a.VersionNum
	}
	return out, nil
}

// resolve finds the version a VersionRef names.
func (w *workspace) resolve(ctx context.Context, name modeluri.Name, ref modeluri.VersionRef) (version, error) {
	if ref.Number > 0 {
		return w.get(ctx, name, ref.Number)
	}
	if ref.Alias != "" {
		mv, err := w.ucVersions.GetByAlias(ctx, catalog.GetByAliasRequest{FullName: name.Full, Alias: ref.Alias})
		if err != nil {
			if notFound(err) {
				if _, err := w.ucAliases(ctx, name); err != nil {
					return version{}, err
				}
				return version{}, fmt.Errorf("no version of %s has the alias @%s in workspace %s", name.Full, ref.Alias, w.host)
			}
			return version{}, fmt.Errorf("reading %s@%s: %w", name.Full, ref.Alias, err)
		}
		return w.get(ctx, name, mv.Version)
	}
	all, err := w.versions(ctx, name)
	if err != nil {
		return version{}, err
	}
	if ref.Stage != "" {
		if err := w.modelExists(ctx, name); err != nil {
			return version{}, err
		}
		for _, v := range all {
			if v.Stage == ref.Stage {
				return v, nil
			}
		}
		return version{}, fmt.Errorf("no version of %s is in stage %s in workspace %s", name.Full, ref.Stage, w.host)
	}
	if len(all) == 0 {
		if err := w.modelExists(ctx, name); err != nil {
			return version{}, err
		}
		return version{}, fmt.Errorf("registered model %s has no versions in workspace %s", name.Full, w.host)
	}
	return all[0], nil
}

// modelExists checks a workspace registry model (the search above answers an
// empty list for a model that does not exist).
func (w *workspace) modelExists(ctx context.Context, name modeluri.Name) error {
	if name.UC() {
		_, err := w.ucAliases(ctx, name)
		return err
	}
	_, err := w.registry.GetModel(ctx, ml.GetModelRequest{Name: name.Full})
	if notFound(err) {
		return w.modelNotFound(name)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", name.Full, err)
	}
	return nil
}

// get reads one version by number.
func (w *workspace) get(ctx context.Context, name modeluri.Name, n int) (version, error) {
	if name.UC() {
		mv, err := w.ucVersions.Get(ctx, catalog.GetModelVersionRequest{FullName: name.Full, Version: n})
		if err != nil {
			if notFound(err) {
				if err := w.modelExists(ctx, name); err != nil {
					return version{}, err
				}
				return version{}, fmt.Errorf("version %d of %s not found in Unity Catalog of workspace %s", n, name.Full, w.host)
			}
			return version{}, fmt.Errorf("reading version %d of %s: %w", n, name.Full, err)
		}
		v := fromUC(*mv)
		aliases, err := w.ucAliases(ctx, name)
		if err != nil {
			return version{}, err
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
	resp, err := w.registry.GetModelVersion(ctx, ml.GetModelVersionRequest{Name: name.Full, Version: strconv.Itoa(n)})
	if err != nil {
		if notFound(err) {
			if err := w.modelExists(ctx, name); err != nil {
				return version{}, err
			}
			return version{}, fmt.Errorf("version %d of %s not found in the workspace model registry of %s", n, name.Full, w.host)
		}
		return version{}, fmt.Errorf("reading version %d of %s: %w", n, name.Full, err)
	}
	return fromRegistry(*resp.ModelVersion), nil
}

// run reads an MLflow run; a run that does not exist is an error that says
// where the task looked and why it wanted the run.
func (w *workspace) run(ctx context.Context, runID, why string) (*ml.Run, error) {
	resp, err := w.runs.GetRun(ctx, ml.GetRunRequest{RunId: runID})
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("MLflow run %s (%s) not found in workspace %s", runID, why, w.host)
		}
		return nil, fmt.Errorf("reading MLflow run %s (%s): %w", runID, why, err)
	}
	return resp.Run, nil
}

// Links into the workspace UI, for the log and the summary.

func (w *workspace) versionURL(name modeluri.Name, n int) string {
	if name.UC() {
		return fmt.Sprintf("%s/explore/data/models/%s/%s/%s/version/%d", w.host, name.Catalog, name.Schema, name.Model, n)
	}
	return fmt.Sprintf("%s/ml/models/%s/versions/%d", w.host, url.PathEscape(name.Full), n)
}

func (w *workspace) runURL(experimentID, runID string) string {
	return fmt.Sprintf("%s/ml/experiments/%s/runs/%s", w.host, experimentID, runID)
}
