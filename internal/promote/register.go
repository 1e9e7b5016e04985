package promote

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/loggedmodel"
	"github.com/brickferry/brickferry/internal/registry"
)

// register creates (or reuses) a version of a workspace registry model from
// the source URI and waits until it is READY; Unity Catalog models are
// registered by registerUC (uc.go).
func (s *step) register(ctx context.Context) (*result, error) {
	o := s.opts
	name := o.Model
	if name.UC() {
		return s.registerUC(ctx)
	}
	org, err := s.resolveSource(ctx)
	if err != nil {
		return nil, err
	}
	source, runID := org.source, org.runID

	createdModel, err := s.ws.EnsureModel(ctx, name, s.log)
	if err != nil {
		return nil, err
	}
	if !createdModel {
		existing, _, err := s.existingVersion(ctx, source, runID)
		if err != nil {
			return nil, err
		}
		if existing != nil {
			return s.reuse(ctx, *existing, org)
		}
	}

	tags := []ml.ModelVersionTag{}
	for _, kv := range s.versionTags(runID) {
		tags = append(tags, ml.ModelVersionTag{Key: kv.Key, Value: kv.Value})
	}
	req := ml.CreateModelVersionRequest{Name: name.Full, Source: source, RunId: runID, Description: o.Description, Tags: tags}
	made, err := s.createVersion(ctx, func(ctx context.Context) (*registry.Version, []int, error) {
		return s.existingVersion(ctx, source, runID)
	}, func(ctx context.Context, find registry.FindVersion) (registry.Created, error) {
		return s.ws.CreateVersion(ctx, req, org.modelID(), find)
	})
	if err != nil {
		return nil, err
	}
	if made.Found != nil {
		return s.reuse(ctx, *made.Found, org)
	}
	n := made.Number
	s.log.Info("Created version %d of %s from %s.", n, name.Full, source)
	if first, _, err := s.existingVersion(ctx, source, runID); err != nil {
		return nil, err
	} else if first != nil && first.Number < n {
		s.yield(ctx, n, first.Number)
		return s.reuse(ctx, *first, org)
	}
	v, err := s.waitReady(ctx, n)
	var timeout *timeoutError
	switch {
	case errors.As(err, &timeout):
		return &result{version: n}, err
	case err != nil && ctx.Err() != nil:
		// Cancelled: remove what this step made, so that nothing is left
		// half-registered.
		s.cleanup(ctx, n, createdModel)
		return nil, err
	case err != nil:
		return nil, err
	}
	s.log.Info("Version %d of %s is READY: %s", n, name.Full, s.ws.VersionURL(name, n))
	s.noteVersion(ctx, org, n)
	reused := false
	return &result{version: v.Number, stage: v.Stage, reused: &reused, note: fmt.Sprintf("Registered version %d from `%s`.", n, o.Source.URI)}, nil
}

// versionTags are the tags of a new version: the user's, then lineage.
func (s *step) versionTags(runID string) []agent.KeyValue {
	return append(append([]agent.KeyValue{}, s.opts.Tags...), s.lineage.ActionTags(runID, "register")...)
}

// createVersion creates a version with create (registry.CreateVersion or
// CreateUCVersion), which is not idempotent: after an answer that got lost,
// existing (existingVersion, existingUCVersion) looks for a version from
// the same source, which is taken (made.Found) rather than register the
// model twice, and its duplicates are removed (yield).
func (s *step) createVersion(ctx context.Context, existing func(context.Context) (*registry.Version, []int, error), create func(context.Context, registry.FindVersion) (registry.Created, error)) (registry.Created, error) {
	var later []int
	made, err := create(ctx, func(ctx context.Context) (*registry.Version, error) {
		v, l, err := existing(ctx)
		later = l
		return v, err
	})
	if err != nil {
		return registry.Created{}, fmt.Errorf("creating a version of %s from %s: %w", s.opts.Model.Full, s.opts.Source.URI, err)
	}
	if made.Found != nil {
		s.log.Info("Creating a version of %s got no clear answer (%v); version %d from the same source exists: using it.", s.opts.Model.Full, made.Lost, made.Found.Number)
		for _, n := range later {
			s.yield(ctx, n, made.Found.Number) // a create whose answer was lost
		}
	}
	return made, nil
}

// origin is where a new version's files come from, resolved: the source
// the registry is given, the MLflow run the version is linked to, and for an
// MLflow 3 logged model the model (else the run's artifact path).
type origin struct {
	source string
	runID  string
	path   string              // the artifact path in the run (MLflow 2)
	model  *ml.LoggedModelInfo // the logged model (MLflow 3)
}

func (o origin) modelID() string {
	if o.model == nil {
		return ""
	}
	return o.model.ModelId
}

// resolveSource turns the model URI into the source the registry copies
// from, as MLflow 3's register_model does
// (mlflow/tracking/_model_registry/fluent.py _register_model at
// mlflow/mlflow commit 042a29123ef7d1a99ed46e9e3939146a8796539d):
//   - models:/<model id>: the logged model, which must be READY and have
//     files; the source is that URI, the run the model's source run.
//   - runs:/<run id>/<path> with files at path (MLflow 2): the run's
//     artifact location + the path.
//   - runs:/<run id>/<name> without (MLflow 3): the logged model named name
//     whose source is the run, as for models:/<its id>.
func (s *step) resolveSource(ctx context.Context) (origin, error) {
	src := s.opts.Source
	if src.ModelID != "" {
		info, err := s.loggedModel(ctx, src.ModelID, "from modelUri "+src.URI)
		if err != nil {
			return origin{}, err
		}
		return origin{source: src.URI, runID: info.SourceRunId, model: info}, nil
	}
	if src.RunID == "" {
		return origin{source: src.URI}, nil
	}
	run, err := s.ws.run(ctx, src.RunID, "from modelUri "+src.URI)
	if err != nil {
		return origin{}, err
	}
	files, err := s.ws.runs.ListArtifactsAll(ctx, ml.ListArtifactsRequest{RunId: src.RunID, Path: src.Path})
	if err != nil {
		return origin{}, fmt.Errorf("listing the artifacts of run %s at %s: %w", src.RunID, src.Path, err)
	}
	if len(files) > 0 {
		root := strings.TrimSuffix(run.Info.ArtifactUri, "/")
		return origin{source: root + "/" + src.Path, runID: src.RunID, path: src.Path}, nil
	}
	lm, _, err := s.ws.models.OfRun(ctx, src.RunID, run.Info.ExperimentId, src.Path)
	if err != nil && !loggedmodel.Unsupported(err) {
		return origin{}, fmt.Errorf("looking for the logged model %q of MLflow run %s: %w", src.Path, src.RunID, err)
	}
	if lm != nil {
		s.log.Info("MLflow run %s has no artifacts at %s; it logged the MLflow 3 model %s there: registering %s.", src.RunID, src.Path, lm.ModelId, loggedmodel.URI(lm.ModelId))
		info, err := s.loggedModel(ctx, lm.ModelId, "logged by run "+src.RunID)
		if err != nil {
			return origin{}, err
		}
		return origin{source: loggedmodel.URI(lm.ModelId), runID: src.RunID, model: info}, nil
	}
	top, _ := s.ws.runs.ListArtifactsAll(ctx, ml.ListArtifactsRequest{RunId: src.RunID})
	var names []string
	for _, f := range top {
		names = append(names, f.Path)
	}
	have := "it has no artifacts"
	if len(names) > 0 {
		have = "its artifacts are: " + strings.Join(names, ", ")
	}
	return origin{}, fmt.Errorf("MLflow run %s in workspace %s has no model at artifact path %q and no logged model named so (%s)", src.RunID, s.ws.Host, src.Path, have)
}

// loggedModel reads a logged model to register and checks that it is READY
// and has files; why says where its id came from.
func (s *step) loggedModel(ctx context.Context, id, why string) (*ml.LoggedModelInfo, error) {
	info, err := s.ws.models.Get(ctx, id)
	switch {
	case loggedmodel.Unsupported(err):
		return nil, fmt.Errorf("workspace %s has no MLflow 3 logged models (%s, %s): register from the MLflow run instead (runs:/<run id>/<artifact path>)", s.ws.Host, id, why)
	case loggedmodel.NotFound(err):
		return nil, fmt.Errorf("logged model %s (%s) not found in workspace %s", id, why, s.ws.Host)
	case err != nil:
		return nil, fmt.Errorf("reading logged model %s (%s): %w", id, why, err)
	}
	if err := loggedmodel.CheckReady(info); err != nil {
		return nil, err
	}
	files, err := artifacts.ListLoggedModel(ctx, s.ws.Client, id, "")
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("logged model %s (%s) in workspace %s has no files", id, info.Name, s.ws.Host)
	}
	return info, nil
}

// noteVersion lists version n in the logged model's mlflow.modelVersions
// tag, as MLflow's register_model does; a failure is only a warning (the
// version is registered).
func (s *step) noteVersion(ctx context.Context, org origin, n int) {
	if org.model == nil {
		return
	}
	info, err := s.ws.models.Get(ctx, org.model.ModelId)
	if err == nil {
		err = s.ws.models.NoteVersion(ctx, info, s.opts.Model.Full, strconv.Itoa(n))
	}
	if err != nil {
		s.log.Warning("could not list version %d of %s on logged model %s (tag mlflow.modelVersions): %v", n, s.opts.Model.Full, org.model.ModelId, err)
	}
}

// existingVersion finds the version of the model registered from the same
// source (and run) that did not fail; of several, the first (lowest
// number). Taking the first is what makes two pipeline runs that register
// the same run at the same moment agree: each lists again after creating
// its version, and the one whose version is not the first removes it and
// takes the first (see yield). It also returns the numbers of the others
// (duplicates, e.g. from a create whose answer was lost).
func (s *step) existingVersion(ctx context.Context, source, runID string) (*registry.Version, []int, error) {
	filter := "name=" + registry.Quote(s.opts.Model.Full)
	if runID != "" {
		// Databricks accepts a single condition in this filter.
		filter = "run_id=" + registry.Quote(runID)
	}
	all, err := s.ws.Models.SearchModelVersionsAll(ctx, ml.SearchModelVersionsRequest{Filter: filter})
	if err != nil {
		return nil, nil, fmt.Errorf("looking for an existing version of %s from %s: %w", s.opts.Model.Full, s.opts.Source.URI, err)
	}
	var matches []registry.Version
	for _, mv := range all {
		if mv.Name != s.opts.Model.Full || mv.RunId != runID {
			continue
		}
		src := strings.TrimSuffix(mv.Source, "/")
		if src != source && src != s.opts.Source.URI {
			continue
		}
		if mv.Status == ml.ModelVersionStatusFailedRegistration {
			continue
		}
		v := registry.FromRegistry(mv)
		matches = append(matches, v)
	}
	return lowest(matches)
}

// lowest returns the lowest-numbered of versions and the numbers of the
// others, which duplicate it.
func lowest(versions []registry.Version) (*registry.Version, []int, error) {
	if len(versions) == 0 {
		return nil, nil, nil
	}
	first := slices.MinFunc(versions, func(a, b registry.Version) int { return cmp.Compare(a.Number, b.Number) })
	var later []int
	for _, v := range versions {
		if v.Number != first.Number {
			later = append(later, v.Number)
		}
	}
	return &first, later, nil
}

// yield removes version n, which this step has just created, because
// version first from the same source existed already: another pipeline run
// (or a request of an earlier try whose answer was lost) registered it at
// the same moment. Both steps then report version first, and no second
// version of the same run is left. A version that cannot be removed is
// left with a warning.
func (s *step) yield(ctx context.Context, n, first int) {
	name := s.opts.Model
	s.log.Info("Version %d of %s from the same source was registered at the same moment (by another pipeline run, or by an earlier try of this step): taking it and removing version %d.", first, name.Full, n)
	if err := s.ws.DeleteVersion(ctx, name, n); err != nil && !registry.NotFound(err) {
		s.log.Warning("could not remove version %d of %s, a duplicate of version %d: %v; delete it in the workspace", n, name.Full, first, err)
	}
}

// reuse takes an existing version instead of registering the same model again.
func (s *step) reuse(ctx context.Context, v registry.Version, org origin) (*result, error) {
	name := s.opts.Model
	s.log.Info("Version %d of %s was already registered from %s (%s): reusing it instead of creating another.",
		v.Number, name.Full, s.opts.Source.URI, v.Status)
	if v.Status != string(ml.ModelVersionStatusReady) {
		w, err := s.waitReady(ctx, v.Number)
		if err != nil {
			return nil, err
		}
		v = w
	}
	if err := s.tagVersion(ctx, name, v, "register"); err != nil {
		return nil, err
	}
	s.noteVersion(ctx, org, v.Number)
	reused := true
	return &result{version: v.Number, stage: v.Stage, reused: &reused, note: fmt.Sprintf("Reused version %d, already registered from `%s`.", v.Number, s.opts.Source.URI)}, nil
}

// waitReady polls a new version until it is READY, pausing 250 ms doubling
// up to 10 s (registrations take seconds to minutes). FAILED_REGISTRATION,
// the timeout and a cancelled context are errors.
func (s *step) waitReady(ctx context.Context, n int) (registry.Version, error) {
	name := s.opts.Model
	start := s.clock.Now()
	s.log.Info("Waiting up to %s for version %d of %s to be READY...", s.opts.Timeout, n, name.Full)
	schedule := converge.Schedule{Pause: converge.Doubling(250*time.Millisecond, 10*time.Second), Timeout: s.opts.Timeout}
	v, err := s.ws.WaitReady(ctx, s.clock, name, n, schedule, func(v registry.Version) {
		s.log.Debug("version %d is %s after %s", n, v.Status, s.clock.Now().Sub(start).Round(time.Second))
	})
	var failed *registry.RegistrationError
	switch {
	case errors.Is(err, converge.ErrTimeout):
		return registry.Version{}, &timeoutError{msg: fmt.Sprintf("version %d of %s was not READY after %s (timeoutMinutes); it is left to finish: running the step again reuses it", n, name.Full, s.opts.Timeout)}
	case errors.As(err, &failed):
		return registry.Version{}, fmt.Errorf("version %d of %s failed to register (FAILED_REGISTRATION): %s", n, name.Full, failed.Message)
	case err != nil && ctx.Err() != nil:
		return registry.Version{}, fmt.Errorf("waiting for version %d of %s: %w", n, name.Full, ctx.Err())
	case err != nil:
		return registry.Version{}, err
	}
	return v, nil
}

// timeoutError is a version that was still registering when time was up.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }

// cleanup removes what a cancelled registration left: the registered model
// when this step created it (deleting a model deletes its versions), else the
// pending version n. It runs within the cleanup deadline after the pipeline's
// signal (agent.Cleanup; the agent stops waiting for the process 7.5 s after
// SIGINT, Agent.Sdk/ProcessInvoker.cs).
func (s *step) cleanup(ctx context.Context, n int, createdModel bool) {
	name := s.opts.Model
	model, version := name.Full, strconv.Itoa(n)
	what := "removing the unfinished version " + version + " of " + model
	if createdModel {
		what = "removing the registered model " + model + " created by this step"
	}
	ctx, cancel := agent.Cleanup(ctx, s.log, 5*time.Second, what)
	defer cancel()
	where := "the workspace"
	if name.UC() {
		where = "Unity Catalog"
	}
	if createdModel {
		if err := s.ws.DeleteModel(ctx, name); err != nil {
			s.log.Warning("could not remove the registered model %s created by this step: %v; delete it in %s", model, err, where)
			return
		}
		s.log.Info("Removed the registered model %s created by this step.", model)
		return
	}
	if err := s.ws.DeleteVersion(ctx, name, n); err != nil {
		s.log.Warning("could not remove the unfinished version %s of %s: %v; delete it in %s", version, model, err, where)
		return
	}
	s.log.Info("Removed the unfinished version %s of %s.", version, model)
}
