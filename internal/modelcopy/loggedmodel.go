package modelcopy

import (
	"context"
	"fmt"
	"strings"

	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/loggedmodel"
	"github.com/brickferry/brickferry/internal/modeluri"
)

// MLflow 3: logged models.
//
// A source version registered from a logged model (source models:/m-<id>,
// as MLflow 3 registers) is read from the registry like any other
// (listFiles); its logged model's name names the target's model. In a target workspace of MLflow 3 (one that has the
// logged-model routes) the copy logs the model as MLflow 3's log_model does
// (mlflow/models/model.py Model.log): a logged model in the target
// experiment whose source is the target run, with the source run's params,
// its files uploaded to the logged model's own location, linked to the run
// as an output and finalized READY; the version is then registered from
// models:/<its id> with its model_id, as MLflow 3's register_model does
// (mlflow/tracking/_model_registry/fluent.py _register_model). A target
// without logged models (before MLflow 3: 404 ENDPOINT_NOT_FOUND) gets the
// files in the run's artifacts and a version registered from them, as
// before.

// sourceLoggedModel is the id of the logged model a version's source names
// (models:/m-<id>), "" for any other source.
func sourceLoggedModel(source string) string {
	s, err := modeluri.ParseSource(source)
	if err != nil {
		return ""
	}
	return s.ModelID
}

// nameAfterLoggedModel names the target's model after the logged model the
// source version was registered from. The files are the registry's copy
// (listFiles), so a logged model that cannot be read is only a warning.
func (s *session) nameAfterLoggedModel(ctx context.Context, sv *sourceVersion) {
	info, err := loggedmodel.New(s.src.Client).Get(ctx, sv.loggedModel)
	if err != nil {
		s.log.Warning("Could not read logged model %s, the source of %s version %d (%v): the target's model is named %q.", sv.loggedModel, sv.name.Full, sv.number, err, sv.artifactDir())
		return
	}
	sv.artPath = info.Name
}

// targetLoggedModel is the logged model of run in the target: the one an
// earlier attempt left (not UPLOAD_FAILED), else a new one. It is nil when
// the target has no logged models (before MLflow 3).
func (s *session) targetLoggedModel(ctx context.Context, sv *sourceVersion, run *ml.RunInfo) (*ml.LoggedModelInfo, error) {
	models := loggedmodel.New(s.tgt.Client)
	name := sv.artifactDir()
	usable := func(ctx context.Context) (*ml.LoggedModelInfo, bool, error) {
		found, err := models.Of(ctx, run.RunId, run.ExperimentId, name)
		if err != nil {
			return nil, false, err
		}
		for i := range found {
			if found[i].Status != ml.LoggedModelStatusLoggedModelUploadFailed {
				return &found[i], true, nil
			}
		}
		return nil, false, nil
	}
	lm, ok, err := usable(ctx)
	switch {
	case loggedmodel.Unsupported(err):
		s.log.Info("The target workspace %s has no logged models (MLflow 2): the model goes into the run's artifacts.", s.tgt.Host)
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("looking for the logged model of run %s in the target: %w", run.RunId, err)
	case ok:
		s.log.Info("Resuming logged model %s (%s) that an earlier attempt left %s.", lm.ModelId, lm.Name, lm.Status)
		return lm, nil
	}
	var params []ml.LoggedModelParameter
	if sv.run != nil && sv.run.Data != nil {
		for _, p := range sv.run.Data.Params {
			params = append(params, ml.LoggedModelParameter{Key: p.Key, Value: p.Value})
		}
	}
	lm, err = converge.Converge(ctx, usable, func(ctx context.Context) (*ml.LoggedModelInfo, error) {
		return models.Create(ctx, ml.CreateLoggedModelRequest{ExperimentId: run.ExperimentId, Name: name, SourceRunId: run.RunId, Params: params})
	})
	if err != nil {
		return nil, fmt.Errorf("creating a logged model in the target: %w", err)
	}
	s.log.Info("Created logged model %s (%s) of run %s in %s.", lm.ModelId, name, run.RunId, s.tgt.Host)
	return lm, nil
}

// copyToLoggedModel copies the files into the target's logged model,
// records the digest on the run and finalizes the model READY. A model an
// earlier attempt finalized already is not written again: its files are
// read back for the digest.
func (s *session) copyToLoggedModel(ctx context.Context, sv *sourceVersion, run *ml.RunInfo, lm *ml.LoggedModelInfo) (artifacts.Manifest, string, error) {
	models := loggedmodel.New(s.tgt.Client)
	read := artifacts.LoggedModelSigner(s.tgt.Client, lm.ModelId, false)
	if lm.Status == ml.LoggedModelStatusLoggedModelReady {
		files, err := artifacts.ListLoggedModel(ctx, s.tgt.Client, lm.ModelId, "")
		if err != nil {
			return artifacts.Manifest{}, "", err
		}
		m, err := s.copier.Hash(ctx, files, read)
		if err != nil {
			return artifacts.Manifest{}, "", fmt.Errorf("reading logged model %s back: %w", lm.ModelId, err)
		}
		return artifacts.Manifest{}, m.Digest(), s.completeRun(ctx, run.RunId, m.Digest())
	}
	s.log.Info("Copying %d files into logged model %s of run %s.", len(sv.files), lm.ModelId, run.RunId)
	m, err := s.copier.Copy(ctx, sv.files, sv.read, artifacts.LoggedModelSigner(s.tgt.Client, lm.ModelId, true), read)
	if err != nil {
		return m, "", fmt.Errorf("copying the model files: %w", err)
	}
	if err := s.completeRun(ctx, run.RunId, m.Digest()); err != nil {
		return m, "", err
	}
	return m, m.Digest(), models.Finish(ctx, lm)
}

// failLoggedModel finalizes a logged model that a failed attempt did not
// finish UPLOAD_FAILED (within markFailed's cleanup).
func (s *session) failLoggedModel(ctx context.Context, a *attempt) {
	if a.model == nil || a.model.Status == ml.LoggedModelStatusLoggedModelReady {
		return
	}
	if err := loggedmodel.New(s.tgt.Client).Fail(ctx, a.model.ModelId); err != nil {
		s.log.Warning("Could not mark logged model %s UPLOAD_FAILED: %v", a.model.ModelId, err)
	}
}

// noteTargetVersion lists the registered version on the target's logged
// model (tag mlflow.modelVersions), as MLflow's register_model does; a
// failure is a warning.
func (s *session) noteTargetVersion(ctx context.Context, a *attempt) {
	if a.model == nil || a.version == 0 {
		return
	}
	models := loggedmodel.New(s.tgt.Client)
	info, err := models.Get(ctx, a.model.ModelId)
	if err == nil {
		err = models.NoteVersion(ctx, info, s.opts.Target.Full, fmt.Sprint(a.version))
	}
	if err != nil {
		s.log.Warning("could not list version %d of %s on logged model %s (tag mlflow.modelVersions): %v", a.version, s.opts.Target.Full, a.model.ModelId, err)
	}
}

// versionSource is what a target version is registered from: the logged
// model (MLflow 3) or the model's folder in the run's artifacts, with the
// logged model's id ("" for a folder).
func (s *session) versionSource(sv *sourceVersion, run *ml.RunInfo, a *attempt) (source, modelID string) {
	if a.model != nil {
		return loggedmodel.URI(a.model.ModelId), a.model.ModelId
	}
	return strings.TrimSuffix(run.ArtifactUri, "/") + "/" + sv.artifactDir(), ""
}

// targetHasLoggedModels reports whether the target workspace has logged
// models (MLflow 3), for the dry run's plan: reading a logged model that
// does not exist answers 404 RESOURCE_DOES_NOT_EXIST there, and 404
// ENDPOINT_NOT_FOUND in a workspace without the routes.
func (s *session) targetHasLoggedModels(ctx context.Context) (bool, error) {
	_, err := loggedmodel.New(s.tgt.Client).Get(ctx, "m-00000000000000000000000000000000")
	switch {
	case err == nil, loggedmodel.NotFound(err):
		return true, nil
	case loggedmodel.Unsupported(err):
		return false, nil
	}
	return false, fmt.Errorf("asking the target workspace for logged models: %w", err)
}
