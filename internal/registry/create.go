package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/modeluri"
)

// Created is what a version create led to: the version it made, or, after
// a create whose answer got lost, the version the caller's find found.
type Created struct {
	Number   int
	Location string // a Unity Catalog version's storage location
	// Found is the version find found after an ambiguous failure (nil: the
	// create answered); Lost is that create's error, for the log.
	Found *Version
	Lost  error
}

// FindVersion looks for the version a create whose answer got lost may have
// made (nil: none). Each caller knows its own: the same source and run
// (register), a version of its run (copy).
type FindVersion func(ctx context.Context) (*Version, error)

// CreateVersion creates a workspace registry version once: the create is not
// idempotent, so it goes through converge.Converge, which asks find after an
// ambiguous failure and takes what it finds rather than create twice. The
// create's own error is returned as it is, for the caller to say what it
// was doing. modelID, when not empty, is the MLflow 3 logged model the
// version is registered from (its source then is models:/<modelID>).
func (r *Registry) CreateVersion(ctx context.Context, req ml.CreateModelVersionRequest, modelID string, find FindVersion) (Created, error) {
	return createOnce(ctx, find, func(ctx context.Context) (Created, error) {
		resp, err := r.createVersion(ctx, req, modelID)
		if err != nil {
			return Created{}, err
		}
		if resp.ModelVersion == nil {
			return Created{}, errors.New("the answer has no model_version")
		}
		n, _ := strconv.Atoi(resp.ModelVersion.Version)
		return Created{Number: n}, nil
	})
}

// createModelVersionRequest is model-versions/create as MLflow 3 sends it
// for a logged model: databricks-sdk-go v0.81.0's ml.CreateModelVersionRequest
// and model_id, which MLflow 3 added to CreateModelVersion
// (mlflow/protos/model_registry.proto; sent by
// mlflow/store/model_registry/rest_store.py create_model_version).
type createModelVersionRequest struct {
	Name        string               `json:"name"`
	Source      string               `json:"source"`
	RunID       string               `json:"run_id,omitempty"`
	RunLink     string               `json:"run_link,omitempty"`
	Description string               `json:"description,omitempty"`
	Tags        []ml.ModelVersionTag `json:"tags,omitempty"`
	ModelID     string               `json:"model_id"`
}

func (r *Registry) createVersion(ctx context.Context, req ml.CreateModelVersionRequest, modelID string) (*ml.CreateModelVersionResponse, error) {
	if modelID == "" {
		return r.Models.CreateModelVersion(ctx, req)
	}
	var resp ml.CreateModelVersionResponse
	err := r.Client.Do(ctx, http.MethodPost, "/api/2.0/mlflow/model-versions/create", nil, nil, createModelVersionRequest{
		Name: req.Name, Source: req.Source, RunID: req.RunId, RunLink: req.RunLink, Description: req.Description, Tags: req.Tags, ModelID: modelID,
	}, &resp)
	return &resp, err
}

// CreateUCVersion creates a Unity Catalog version (PENDING_REGISTRATION,
// with its own storage location) once, through MLflow's UC create route, as
// CreateVersion does.
//
// A version from a run carries run_tracking_server_id, the id of the
// workspace that holds the run, as MLflow's client sends it
// (UcModelRegistryStore.create_model_version,
// mlflow/store/_unity_catalog/registry/rest_store.py): the value of the
// x-databricks-org-id header of the runs/get answer for the run
// (_get_run_and_headers, _get_workspace_id). The run is in this workspace
// (registered here, or the copy's run in the target). When the run cannot be
// read or the header is missing, the version is created without it and log
// warns, as MLflow does ("No run link will be recorded for the model
// version").
func (r *Registry) CreateUCVersion(ctx context.Context, req UCCreateRequest, find FindVersion, log Logger) (Created, error) {
	if req.RunID != "" && req.RunTrackingServerID == "" {
		id, err := r.RunWorkspaceID(ctx, req.RunID)
		switch {
		case err != nil:
			log.Warning("Could not read run %s to link it to the new version of %s (%v): no run link is recorded for the version.", req.RunID, req.Name, err)
		case id == "":
			log.Warning("The workspace %s did not say its id (x-databricks-org-id) when reading run %s: no run link is recorded for the new version of %s.", r.Host, req.RunID, req.Name)
		}
		req.RunTrackingServerID = id
	}
	made, err := createOnce(ctx, find, func(ctx context.Context) (Created, error) {
		var resp UCVersionResponse
		if err := r.Client.Do(ctx, http.MethodPost, UCRoute+"create", nil, nil, req, &resp); err != nil {
			return Created{}, err
		}
		if resp.ModelVersion == nil {
			return Created{}, nil // answered, but without the version: see below
		}
		n, _ := strconv.Atoi(resp.ModelVersion.Version)
		return Created{Number: n, Location: resp.ModelVersion.StorageLocation}, nil
	})
	if err == nil && made.Found == nil && made.Number == 0 {
		return Created{}, errors.New("the answer has no model_version")
	}
	return made, err
}

// RunWorkspaceID reads run runID and returns the id of the workspace that
// answered, "" when the answer has none: a workspace answers its numeric id
// in the x-databricks-org-id header (databricks-sdk-go's
// WorkspaceClient.CurrentWorkspaceID reads it from SCIM Me, MLflow's UC
// store from runs/get).
func (r *Registry) RunWorkspaceID(ctx context.Context, runID string) (string, error) {
	var resp struct {
		Run   *ml.Run `json:"run"`
		OrgID string  `json:"-" header:"x-databricks-org-id"`
	}
	if err := r.Client.Do(ctx, http.MethodGet, "/api/2.0/mlflow/runs/get", nil, map[string]any{"run_id": runID}, nil, &resp); err != nil {
		return "", err
	}
	return resp.OrgID, nil
}

func createOnce(ctx context.Context, find FindVersion, create func(context.Context) (Created, error)) (Created, error) {
	var lost error
	made, err := converge.Converge(ctx, func(ctx context.Context) (Created, bool, error) {
		v, err := find(ctx)
		if err != nil || v == nil {
			return Created{}, false, err
		}
		return Created{Number: v.Number, Location: v.Location, Found: v, Lost: lost}, true, nil
	}, func(ctx context.Context) (Created, error) {
		c, err := create(ctx)
		lost = err
		return c, err
	})
	return made, err
}

// DeleteVersion deletes version n of either registry (a Unity Catalog
// version's aliases go with it). The API's error is returned as it is:
// NotFound tells a version already gone.
func (r *Registry) DeleteVersion(ctx context.Context, name modeluri.Name, n int) error {
	if name.UC() {
		return r.UCVersions.Delete(ctx, catalog.DeleteModelVersionRequest{FullName: name.Full, Version: n})
	}
	return r.Models.DeleteModelVersion(ctx, ml.DeleteModelVersionRequest{Name: name.Full, Version: strconv.Itoa(n)})
}

// DeleteModel deletes a registered model of either registry, with its
// versions. The API's error is returned as it is.
func (r *Registry) DeleteModel(ctx context.Context, name modeluri.Name) error {
	if name.UC() {
		return r.UCModels.Delete(ctx, catalog.DeleteRegisteredModelRequest{FullName: name.Full})
	}
	return r.Models.DeleteModel(ctx, ml.DeleteModelRequest{Name: name.Full})
}

// EnsureModel makes sure the registered model exists in its registry (the
// workspace registry, or Unity Catalog for a three-part name), creating it
// when it does not (converge.CreateOnce: an "already exists" answer after a
// lost one means it exists). created reports whether this call made it; the
// log line says where.
func (r *Registry) EnsureModel(ctx context.Context, name modeluri.Name, log Logger) (created bool, err error) {
	where := "the workspace model registry"
	get := func(ctx context.Context) error {
		_, err := r.Models.GetModel(ctx, ml.GetModelRequest{Name: name.Full})
		return err
	}
	create := func(ctx context.Context) error {
		_, err := r.Models.CreateModel(ctx, ml.CreateModelRequest{Name: name.Full})
		return err
	}
	if name.UC() {
		where = "Unity Catalog"
		get = func(ctx context.Context) error {
			_, err := r.UCModels.Get(ctx, catalog.GetRegisteredModelRequest{FullName: name.Full})
			return err
		}
		create = func(ctx context.Context) error {
			_, err := r.UCModels.Create(ctx, catalog.CreateRegisteredModelRequest{CatalogName: name.Catalog, SchemaName: name.Schema, Name: name.Model})
			return err
		}
	}
	if err := get(ctx); err == nil {
		return false, nil
	} else if !NotFound(err) {
		return false, fmt.Errorf("reading registered model %s: %w", name.Full, err)
	}
	created, err = converge.CreateOnce(ctx, create)
	if err != nil {
		return false, fmt.Errorf("creating registered model %s in %s: %w", name.Full, where, err)
	}
	if created {
		log.Info("Created the registered model %s in %s.", name.Full, where)
	}
	return created, nil
}
