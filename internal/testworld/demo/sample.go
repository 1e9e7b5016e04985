package demo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// Sample is one of the shipped sample pipelines and the names it uses, which
// the demo needs to read back the state the pipeline left.
type Sample struct {
	// File is the pipeline, relative to the repository root.
	File string
	// DevModel and ProdModel are the registered models of the two
	// workspaces: a workspace-registry name, or a Unity Catalog
	// catalog.schema.model name.
	DevModel, ProdModel string
	// InputTable is the table the batch scoring step reads in the prod
	// workspace; OutputTable the one it writes.
	InputTable, OutputTable string
	// Endpoint is the prod workspace's serving endpoint.
	Endpoint string
	// MLflow is the MLflow era of both workspaces: the runtime the
	// pipeline's training job runs on logs its model the MLflow 2 way (run
	// artifacts) or the MLflow 3 way (a logged model, models:/m-<id>).
	MLflow emulator.MLflowEra
}

// WorkspaceRegistry is examples/azure-pipelines.yml: the reference
// pipeline's flow on the workspace model registry, promoted by stages.
func WorkspaceRegistry() Sample {
	return Sample{File: "examples/azure-pipelines.yml", DevModel: "churn", ProdModel: "churn",
		InputTable: "main.default.customer", OutputTable: "main.ml.churn_predictions", Endpoint: Endpoint}
}

// UnityCatalog is examples/azure-pipelines-uc.yml: Unity Catalog in both
// workspaces (dev.ml.churn, prod.ml.churn), promoted by aliases, trained on
// a runtime of MLflow 3 (the default runtime, 17.3 LTS ML).
func UnityCatalog() Sample {
	return Sample{File: "examples/azure-pipelines-uc.yml", DevModel: "dev.ml.churn", ProdModel: "prod.ml.churn",
		InputTable: "prod.ml.customer", OutputTable: "prod.ml.churn_predictions", Endpoint: Endpoint, MLflow: emulator.MLflow3}
}

// Samples are the shipped sample pipelines, by the name brickferry-demo's
// -sample flag takes.
func Samples() map[string]Sample {
	return map[string]Sample{"uc": UnityCatalog(), "workspace": WorkspaceRegistry()}
}

// orDefault is the sample an Options without one runs.
func (s Sample) orDefault() Sample {
	if s.File == "" {
		return WorkspaceRegistry()
	}
	return s
}

// inUnityCatalog reports whether name is a Unity Catalog model
// (catalog.schema.model).
func inUnityCatalog(name string) bool { return strings.Count(name, ".") == 2 }

// UnityCatalog reports whether the sample's models are in Unity Catalog
// (promoted by aliases) rather than the workspace registry (stages).
func (s Sample) UnityCatalog() bool { return inUnityCatalog(s.DevModel) }

// ModelVersion is one registered version as the demo reads it back, from
// either registry: Where is its stage (workspace registry) or its aliases
// ("@champion @challenger", Unity Catalog).
type ModelVersion struct {
	Version string
	Where   string
	Status  string
	RunID   string
	Tags    map[string]string
}

// ModelVersions reads every version of model from the workspace cfg
// configures through the Databricks API: the workspace registry's search, or Unity Catalog's version list
// (aliases) and MLflow's Unity Catalog get route (tags, which the catalog
// API does not return). Oldest first.
func ModelVersions(ctx context.Context, cfg *config.Config, model string) ([]ModelVersion, error) {
	c, err := client.New(cfg)
	if err != nil {
		return nil, err
	}
	var out []ModelVersion
	if !inUnityCatalog(model) {
		versions, err := ml.NewModelRegistry(c).SearchModelVersionsAll(ctx, ml.SearchModelVersionsRequest{Filter: "name='" + model + "'"})
		if err != nil {
			return nil, err
		}
		for _, v := range versions {
			tags := map[string]string{}
			for _, t := range v.Tags {
				tags[t.Key] = t.Value
			}
			out = append(out, ModelVersion{Version: v.Version, Where: v.CurrentStage, Status: string(v.Status), RunID: v.RunId, Tags: tags})
		}
	} else {
		uc := catalog.NewRegisteredModels(c)
		m, err := uc.Get(ctx, catalog.GetRegisteredModelRequest{FullName: model, IncludeAliases: true})
		if err != nil {
			// apierr's, not the root package's alias of it: the root
			// package (WorkspaceClient) links every service of the SDK,
			// 18 more packages for make demo's cold build to compile.
			if errors.Is(err, apierr.ErrResourceDoesNotExist) {
				return nil, nil
			}
			return nil, err
		}
		aliases := map[int][]string{}
		for _, a := range m.Aliases {
			aliases[a.VersionNum] = append(aliases[a.VersionNum], "@"+a.AliasName)
		}
		versions, err := catalog.NewModelVersions(c).ListAll(ctx, catalog.ListModelVersionsRequest{FullName: model})
		if err != nil {
			return nil, err
		}
		for _, v := range versions {
			var got emulator.UCModelVersionResponse
			q := map[string]any{"name": model, "version": fmt.Sprint(v.Version)}
			if err := c.Do(ctx, http.MethodGet, "/api/2.0/mlflow/unity-catalog/model-versions/get", nil, nil, q, &got); err != nil {
				return nil, fmt.Errorf("version %d of %s: %w", v.Version, model, err)
			}
			tags := map[string]string{}
			if got.ModelVersion != nil {
				for _, t := range got.ModelVersion.Tags {
					tags[t.Key] = t.Value
				}
			}
			where := aliases[v.Version]
			runID := v.RunId
			sort.Strings(where)
			out = append(out, ModelVersion{Version: fmt.Sprint(v.Version), Where: strings.Join(where, " "), Status: string(v.Status), RunID: runID, Tags: tags})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].Version) != len(out[j].Version) {
			return len(out[i].Version) < len(out[j].Version)
		}
		return out[i].Version < out[j].Version
	})
	return out, nil
}
