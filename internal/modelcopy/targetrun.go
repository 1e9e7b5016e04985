package modelcopy

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"
	wsapi "github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/registry"
)

// The target's registered model, experiment and run (a new one, or the one
// an interrupted attempt left).

func (s *session) targetModelExists(ctx context.Context) (bool, error) {
	var err error
	if s.opts.Target.UC() {
		_, err = s.tgt.UCModels.Get(ctx, catalog.GetRegisteredModelRequest{FullName: s.opts.Target.Full})
	} else {
		_, err = s.tgt.Models.GetModel(ctx, ml.GetModelRequest{Name: s.opts.Target.Full})
	}
	if err == nil {
		return true, nil
	}
	if registry.NotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("reading %s in the target: %w", s.opts.Target.Full, err)
}

func (s *session) ensureModel(ctx context.Context) error {
	exists, err := s.targetModelExists(ctx)
	if err != nil || exists {
		return err
	}
	t := s.opts.Target
	created, err := converge.CreateOnce(ctx, func(ctx context.Context) error {
		var err error
		if t.UC() {
			_, err = s.tgt.UCModels.Create(ctx, catalog.CreateRegisteredModelRequest{CatalogName: t.Catalog, SchemaName: t.Schema, Name: t.Model})
		} else {
			_, err = s.tgt.Models.CreateModel(ctx, ml.CreateModelRequest{Name: t.Full})
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("creating registered model %s in the target: %w", t.Full, err)
	}
	if created {
		s.log.Info("Created registered model %s in %s.", t.Full, s.tgt.Host)
	}
	return nil
}

// experiment is the id of the target experiment, "" when it does not exist;
// read once per session (session.expID).
func (s *session) experiment(ctx context.Context) (string, error) {
	if s.expID != "" {
		return s.expID, nil
	}
	got, err := s.tgt.exps.GetByName(ctx, ml.GetByNameRequest{ExperimentName: s.opts.Experiment})
	switch {
	case err == nil:
		s.expID = got.Experiment.ExperimentId
		return s.expID, nil
	case registry.NotFound(err):
		s.expMissing = true
		return "", nil
	default:
		return "", fmt.Errorf("reading experiment %s in the target: %w", s.opts.Experiment, err)
	}
}

// ensureExperiment returns the id of the target experiment, creating it
// (and its folder) when it does not exist.
func (s *session) ensureExperiment(ctx context.Context) (string, error) {
	if !s.expMissing {
		id, err := s.experiment(ctx)
		if err != nil || id != "" {
			return id, err
		}
	}
	if err := wsapi.NewWorkspace(s.tgt.Client).Mkdirs(ctx, wsapi.Mkdirs{Path: path.Dir(s.opts.Experiment)}); err != nil {
		return "", fmt.Errorf("creating folder %s in the target: %w", path.Dir(s.opts.Experiment), err)
	}
	// CreateOnce: a concurrent copy may create the experiment first (then
	// the create answers RESOURCE_ALREADY_EXISTS), and an ambiguous failure
	// is repeated; either way the experiment is read back by name.
	var id string
	created, err := converge.CreateOnce(ctx, func(ctx context.Context) error {
		made, err := s.tgt.exps.CreateExperiment(ctx, ml.CreateExperiment{Name: s.opts.Experiment})
		if err == nil {
			id = made.ExperimentId
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("creating experiment %s in the target: %w", s.opts.Experiment, err)
	}
	if id == "" { // made by another copy, or by an attempt whose answer was lost
		got, err := s.tgt.exps.GetByName(ctx, ml.GetByNameRequest{ExperimentName: s.opts.Experiment})
		if err != nil {
			return "", fmt.Errorf("reading experiment %s in the target: %w", s.opts.Experiment, err)
		}
		id = got.Experiment.ExperimentId
	}
	s.expID, s.expMissing = id, false
	if created {
		s.log.Info("Created experiment %s in %s.", s.opts.Experiment, s.tgt.Host)
	}
	return id, nil
}

// copiedTags are the source run's tags that travel: the user's own tags and
// the run's description, not the workspace-specific mlflow.* system tags nor
// an earlier step's brickferry_* lineage. The logged-model history is rewritten
// to name the new run, so the target's UI shows the model.
func copiedTags(run *ml.Run, newRunID string) []ml.RunTag {
	var out []ml.RunTag
	if run == nil || run.Data == nil {
		return nil
	}
	for _, t := range run.Data.Tags {
		switch {
		case t.Key == "mlflow.note.content":
			out = append(out, ml.RunTag{Key: t.Key, Value: t.Value})
		case t.Key == "mlflow.log-model.history" && newRunID != "":
			out = append(out, ml.RunTag{Key: t.Key, Value: strings.ReplaceAll(t.Value, run.Info.RunId, newRunID)})
		case strings.HasPrefix(t.Key, "mlflow."), strings.HasPrefix(t.Key, registry.TagPrefix):
		default:
			out = append(out, ml.RunTag{Key: t.Key, Value: t.Value})
		}
	}
	return out
}

// targetRun resumes the run an interrupted earlier attempt left (not
// FINISHED) or creates a new one, and logs the source run's data into it.
func (s *session) targetRun(ctx context.Context, sv *sourceVersion, existing []candidate, expID string) (*ml.RunInfo, bool, error) {
	for _, c := range existing {
		if c.run == nil || c.run.Info == nil || c.run.Info.Status == ml.RunInfoStatusFinished {
			continue
		}
		if (c.version > 0 && c.status == "READY") || tagOf(c.run, registry.TagCopyStatus) == statusSuperseded {
			continue
		}
		info := c.run.Info
		if _, err := s.tgt.exps.UpdateRun(ctx, ml.UpdateRun{RunId: info.RunId, Status: ml.UpdateRunStatusRunning}); err != nil {
			return nil, false, fmt.Errorf("resuming run %s in the target: %w", info.RunId, err)
		}
		s.log.Info("Resuming run %s that an earlier attempt left %s: %s", info.RunId, info.Status, s.tgt.RunURL(info.ExperimentId, info.RunId))
		return info, true, s.logRunData(ctx, sv, info.RunId)
	}
	name := fmt.Sprintf("%s v%d", sv.name.Full, sv.number)
	if sv.run != nil && sv.run.Info != nil && sv.run.Info.RunName != "" {
		name = sv.run.Info.RunName
	}
	tags := []ml.RunTag{{Key: registry.TagCopyStatus, Value: "copying"}}
	for _, kv := range s.lineage(sv) {
		tags = append(tags, ml.RunTag{Key: kv.Key, Value: kv.Value})
	}
	known := map[string]bool{}
	for _, c := range existing {
		known[c.runID] = true
	}
	info, err := converge.Converge(ctx, func(ctx context.Context) (*ml.RunInfo, bool, error) {
		// A run this attempt created although no answer said so: a run of
		// this source version, copying, that was not there before.
		runs, err := s.lineageRuns(ctx, sv)
		if err != nil {
			return nil, false, err
		}
		for id, r := range runs {
			if !known[id] && tagOf(r, registry.TagCopyStatus) == "copying" {
				return r.Info, true, nil
			}
		}
		return nil, false, nil
	}, func(ctx context.Context) (*ml.RunInfo, error) {
		created, err := s.tgt.exps.CreateRun(ctx, ml.CreateRun{ExperimentId: expID, RunName: name, StartTime: time.Now().UnixMilli(), Tags: tags})
		if err != nil {
			return nil, err
		}
		return created.Run.Info, nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("creating a run in %s: %w", s.opts.Experiment, err)
	}
	s.log.Info("Created run %s in %s: %s", info.RunId, s.opts.Experiment, s.tgt.RunURL(info.ExperimentId, info.RunId))
	return info, false, s.logRunData(ctx, sv, info.RunId)
}

// logRunData logs the source run's params, latest metrics and tags into the
// target run, in as few log-batch requests as its limits allow (batches).
func (s *session) logRunData(ctx context.Context, sv *sourceVersion, runID string) error {
	if sv.run == nil || sv.run.Data == nil {
		return nil
	}
	d := sv.run.Data
	for _, b := range batches(runID, d.Params, d.Metrics, copiedTags(sv.run, runID)) {
		if err := s.tgt.exps.LogBatch(ctx, b); err != nil {
			return fmt.Errorf("logging the source run's parameters, metrics and tags into run %s: %w", runID, err)
		}
	}
	return nil
}

// The limits of one log-batch request (databricks-sdk-go v0.81.0
// service/ml LogBatch doc comments; MLflow refuses a request over any of
// them with INVALID_PARAMETER_VALUE).
const (
	batchParams  = 100
	batchTags    = 100
	batchMetrics = 1000
	batchItems   = 1000 // params, metrics and tags together
)

// batches splits a run's data into log-batch requests that keep every
// limit: each takes up to 100 params and 100 tags, and metrics up to 1000
// items in all.
func batches(runID string, params []ml.Param, metrics []ml.Metric, tags []ml.RunTag) []ml.LogBatch {
	var out []ml.LogBatch
	for len(params)+len(metrics)+len(tags) > 0 {
		b := ml.LogBatch{RunId: runID}
		b.Params, params = cut(params, batchParams)
		b.Tags, tags = cut(tags, batchTags)
		b.Metrics, metrics = cut(metrics, min(batchMetrics, batchItems-len(b.Params)-len(b.Tags)))
		out = append(out, b)
	}
	return out
}

// cut splits s after at most n items.
func cut[T any](s []T, n int) (head, rest []T) {
	n = min(n, len(s))
	return s[:n:n], s[n:]
}
