// Package loggedmodel holds what the tasks do with MLflow 3 logged models
// (models:/m-<id>): find the logged model an MLflow run produced, read one
// that a URI names, and record the registered versions made from it, the way
// MLflow's own client does. A logged model's files live under its own
// artifact location; package artifacts lists and signs them.
//
// The routes are databricks-sdk-go v0.81.0's (service/ml: GetLoggedModel,
// SearchLoggedModels, SetLoggedModelTags); a run's outputs, which the SDK's
// ml.Run lacks, are read as MLflow's service.proto has them (Run.outputs,
// RunOutputs.model_outputs). A workspace before MLflow 3 has none of these
// routes: it answers 404 ENDPOINT_NOT_FOUND (Unsupported).
package loggedmodel

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/converge"
)

// URI is the models:/ URI of a logged model, as MLflow 3's log_model returns
// it (ModelInfo.model_uri) and registers from it.
func URI(id string) string { return "models:/" + id }

// Models are the logged models of one workspace.
type Models struct {
	c    *client.DatabricksClient
	exps *ml.ExperimentsAPI
}

// New is the logged models of the workspace c connects to.
func New(c *client.DatabricksClient) *Models {
	return &Models{c: c, exps: ml.NewExperiments(c)}
}

// Unsupported reports whether err is the answer of a workspace that has no
// logged-model routes (before MLflow 3): 404 ENDPOINT_NOT_FOUND, which a
// missing logged model (RESOURCE_DOES_NOT_EXIST) is not.
func Unsupported(err error) bool {
	var aerr *apierr.APIError
	return errors.As(err, &aerr) && aerr.StatusCode == http.StatusNotFound && aerr.ErrorCode == "ENDPOINT_NOT_FOUND"
}

// NotFound reports whether err says the logged model does not exist.
func NotFound(err error) bool {
	return errors.Is(err, apierr.ErrResourceDoesNotExist) && !Unsupported(err)
}

// Get reads a logged model. The API's error is returned as it is: see
// Unsupported and NotFound.
func (m *Models) Get(ctx context.Context, id string) (*ml.LoggedModelInfo, error) {
	resp, err := m.exps.GetLoggedModel(ctx, ml.GetLoggedModelRequest{ModelId: id})
	if err != nil {
		return nil, err
	}
	if resp.Model == nil || resp.Model.Info == nil {
		return nil, fmt.Errorf("the answer for logged model %s has no model", id)
	}
	return resp.Model.Info, nil
}

// CheckReady says why a logged model cannot be registered or copied: it is
// not READY (MLflow finalizes it READY once its files are all uploaded,
// UPLOAD_FAILED when logging failed: mlflow/tracking/fluent.py
// _use_logged_model).
func CheckReady(info *ml.LoggedModelInfo) error {
	if info.Status == ml.LoggedModelStatusLoggedModelReady {
		return nil
	}
	msg := fmt.Sprintf("logged model %s (%s) is %s, not %s", info.ModelId, info.Name, info.Status, ml.LoggedModelStatusLoggedModelReady)
	if info.StatusMessage != "" {
		msg += ": " + info.StatusMessage
	}
	if info.Status == ml.LoggedModelStatusLoggedModelPending {
		msg += " (its files are still being uploaded, or the code that logged it stopped before finalizing it)"
	}
	return errors.New(msg)
}

// searchPage is the most logged models one search answers
// (SearchLoggedModelsRequest.MaxResults: "The maximum limit is 50").
const searchPage = 50

// OfRun finds the logged model that MLflow run runID (in experiment
// experimentID) produced, as MLflow resolves runs:/<run id>/<name> to a
// logged model (mlflow/tracking/_model_registry/fluent.py _register_model
// and _get_logged_models_from_run): the experiment's logged models whose
// source_run_id is the run and, if name is given, whose name is name (both
// compared here, as MLflow compares them: Databricks does not filter on
// source_run_id); of several, the one the run logged at the largest
// step of its outputs, then the newest. It returns nil when the run
// produced none, and the names of the others it passed over.
func (m *Models) OfRun(ctx context.Context, runID, experimentID, name string) (*ml.LoggedModelInfo, []string, error) {
	found, err := m.Of(ctx, runID, experimentID, name)
	if err != nil {
		return nil, nil, err
	}
	if len(found) == 0 {
		return nil, nil, nil
	}
	steps := map[string]int64{}
	if len(found) > 1 {
		out, err := m.outputs(ctx, runID)
		if err != nil {
			return nil, nil, err
		}
		for _, o := range out {
			steps[o.ModelId] = max(steps[o.ModelId], o.Step)
		}
	}
	best := slices.MaxFunc(found, func(a, b ml.LoggedModelInfo) int {
		return cmp.Or(cmp.Compare(steps[a.ModelId], steps[b.ModelId]), cmp.Compare(a.CreationTimestampMs, b.CreationTimestampMs))
	})
	var others []string
	for _, lm := range found {
		if lm.ModelId != best.ModelId {
			others = append(others, lm.Name+" ("+lm.ModelId+")")
		}
	}
	return &best, others, nil
}

// Of lists the logged models of experiment experimentID whose source run is
// runID and, if name is given, whose name is name, in the order the search
// answers them (newest first).
func (m *Models) Of(ctx context.Context, runID, experimentID, name string) ([]ml.LoggedModelInfo, error) {
	var found []ml.LoggedModelInfo
	req := ml.SearchLoggedModelsRequest{ExperimentIds: []string{experimentID}, MaxResults: searchPage}
	for {
		resp, err := m.exps.SearchLoggedModels(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, lm := range resp.Models {
			if lm.Info != nil && lm.Info.SourceRunId == runID && (name == "" || lm.Info.Name == name) {
				found = append(found, *lm.Info)
			}
		}
		if resp.NextPageToken == "" || resp.NextPageToken == req.PageToken || len(resp.Models) == 0 {
			return found, nil
		}
		req.PageToken = resp.NextPageToken
	}
}

// Create creates a logged model (LOGGED_MODEL_PENDING) as MLflow 3's
// log_model does before it uploads the files. The create is not
// idempotent: see converge.Converge.
func (m *Models) Create(ctx context.Context, req ml.CreateLoggedModelRequest) (*ml.LoggedModelInfo, error) {
	resp, err := m.exps.CreateLoggedModel(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.Model == nil || resp.Model.Info == nil {
		return nil, errors.New("the answer has no model")
	}
	return resp.Model.Info, nil
}

// Finish finalizes a logged model READY once its files are all uploaded
// and links it to its run as an output at step 0, as MLflow 3's log_model
// does (log_outputs, then finalize on leaving _use_logged_model). Linking is
// not known to be idempotent: after an ambiguous failure the run's outputs
// are read to see whether it was done (converge.Converge).
func (m *Models) Finish(ctx context.Context, info *ml.LoggedModelInfo) error {
	if run := info.SourceRunId; run != "" {
		linked := func(ctx context.Context) (struct{}, bool, error) {
			outs, err := m.outputs(ctx, run)
			return struct{}{}, slices.ContainsFunc(outs, func(o ml.ModelOutput) bool { return o.ModelId == info.ModelId }), err
		}
		if _, ok, err := linked(ctx); err != nil || !ok {
			_, err = converge.Converge(ctx, linked, func(ctx context.Context) (struct{}, error) {
				return struct{}{}, m.exps.LogOutputs(ctx, ml.LogOutputsRequest{RunId: run, Models: []ml.ModelOutput{{ModelId: info.ModelId, Step: 0}}})
			})
			if err != nil {
				return fmt.Errorf("linking logged model %s to run %s: %w", info.ModelId, run, err)
			}
		}
	}
	if _, err := m.exps.FinalizeLoggedModel(ctx, ml.FinalizeLoggedModelRequest{ModelId: info.ModelId, Status: ml.LoggedModelStatusLoggedModelReady}); err != nil {
		return fmt.Errorf("finalizing logged model %s: %w", info.ModelId, err)
	}
	info.Status = ml.LoggedModelStatusLoggedModelReady
	return nil
}

// Fail finalizes a logged model LOGGED_MODEL_UPLOAD_FAILED, as MLflow does
// when logging fails, so that no half-uploaded model looks usable.
func (m *Models) Fail(ctx context.Context, id string) error {
	_, err := m.exps.FinalizeLoggedModel(ctx, ml.FinalizeLoggedModelRequest{ModelId: id, Status: ml.LoggedModelStatusLoggedModelUploadFailed})
	return err
}

// runWithOutputs is the part of runs/get that the SDK's ml.GetRunResponse
// drops: the run's outputs.
type runWithOutputs struct {
	Run struct {
		Outputs struct {
			ModelOutputs []ml.ModelOutput `json:"model_outputs"`
		} `json:"outputs"`
	} `json:"run"`
}

// outputs are the logged models a run lists as its outputs.
func (m *Models) outputs(ctx context.Context, runID string) ([]ml.ModelOutput, error) {
	var raw json.RawMessage
	if err := m.c.Do(ctx, http.MethodGet, "/api/2.0/mlflow/runs/get", nil, nil, map[string]any{"run_id": runID}, &raw); err != nil {
		return nil, fmt.Errorf("reading the outputs of MLflow run %s: %w", runID, err)
	}
	var r runWithOutputs
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("reading the outputs of MLflow run %s: %w", runID, err)
	}
	return r.Run.Outputs.ModelOutputs, nil
}

// versionsTag is the logged model tag in which MLflow lists the registered
// versions made from the model (mlflow.utils.mlflow_tags
// MLFLOW_MODEL_VERSIONS, written by _register_model).
const versionsTag = "mlflow.modelVersions"

type versionEntry struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// NoteVersion adds version of the registered model name to the logged
// model's mlflow.modelVersions tag, as MLflow's register_model does, unless
// it is listed already (a rerun changes nothing).
func (m *Models) NoteVersion(ctx context.Context, info *ml.LoggedModelInfo, name, version string) error {
	var list []versionEntry
	for _, t := range info.Tags {
		if t.Key == versionsTag {
			if err := json.Unmarshal([]byte(t.Value), &list); err != nil {
				return fmt.Errorf("reading tag %s of logged model %s: %w", versionsTag, info.ModelId, err)
			}
		}
	}
	entry := versionEntry{Name: name, Version: version}
	if slices.Contains(list, entry) {
		return nil
	}
	value, _ := json.Marshal(append(list, entry))
	return m.exps.SetLoggedModelTags(ctx, ml.SetLoggedModelTagsRequest{ModelId: info.ModelId, Tags: []ml.LoggedModelTag{{Key: versionsTag, Value: string(value)}}})
}
