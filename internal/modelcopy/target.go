package modelcopy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"
	wsapi "github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/ucregistry"
)

// Lineage tag keys, on the target run and (workspace registry) the target
// version. The first three identify the source version.
const (
	tagSourceWorkspace   = "brickferry_source_workspace"
	tagSourceModel       = "brickferry_source_model"
	tagSourceVersion     = "brickferry_source_version"
	tagSourceWorkspaceID = "brickferry_source_workspace_id"
	tagSourceRunID       = "brickferry_source_run_id"
	tagSourceRunURL      = "brickferry_source_run_url"
	tagDigest            = "brickferry_content_digest"
	tagCopyStatus        = "brickferry_copy_status" // run only: copying, complete, failed, superseded
	tagSupersededBy      = "brickferry_superseded_by"
	tagAction            = "brickferry_action"
)

func catalogGet(full string, n int) catalog.GetModelVersionRequest {
	return catalog.GetModelVersionRequest{FullName: full, Version: n}
}

// lineage is the tags that tie the target to its source and to this
// pipeline run (empty values left out).
func (s *session) lineage(sv *sourceVersion) []agent.KeyValue {
	p := s.opts.Pipeline
	build := p.BuildID
	if build == "" && p.ReleaseID != "" {
		build = "release-" + p.ReleaseID
	}
	runURL := ""
	if sv.run != nil && sv.run.Info != nil {
		runURL = s.src.runURL(sv.run.Info.ExperimentId, sv.runID)
	}
	var out []agent.KeyValue
	add := func(k, v string) {
		if v != "" {
			out = append(out, agent.KeyValue{Key: k, Value: v})
		}
	}
	add(tagSourceWorkspace, s.src.host)
	add(tagSourceWorkspaceID, workspaceID(s.src.host, sv.run))
	add(tagSourceModel, sv.name.Full)
	add(tagSourceVersion, strconv.Itoa(sv.number))
	add(tagSourceRunID, sv.runID)
	add(tagSourceRunURL, runURL)
	add(tagAction, "copy")
	add("brickferry_build_id", build)
	add("brickferry_run_url", p.RunURL())
	add("brickferry_commit", p.SourceVersion)
	add("brickferry_pipeline", p.DefinitionName)
	return out
}

// sameSource reports whether tags name the same source version.
func (s *session) sameSource(sv *sourceVersion, tags map[string]string) bool {
	return tags[tagSourceWorkspace] == s.src.host && tags[tagSourceModel] == sv.name.Full && tags[tagSourceVersion] == strconv.Itoa(sv.number)
}

// candidate is a target version or run that an earlier copy of the same
// source version left.
type candidate struct {
	version int    // 0: a run without a version
	status  string // version status
	digest  string
	runID   string
	run     *ml.Run
}

// findExisting lists what earlier copies of this source version left in the
// target: versions (newest first) and half-made runs.
func (s *session) findExisting(ctx context.Context, sv *sourceVersion) ([]candidate, error) {
	runs, err := s.lineageRuns(ctx, sv)
	if err != nil {
		return nil, err
	}
	var out []candidate
	if s.opts.Target.UC() {
		all, err := s.tgt.ucVersions.ListAll(ctx, catalog.ListModelVersionsRequest{FullName: s.opts.Target.Full})
		if err != nil && !notFound(err) {
			return nil, fmt.Errorf("listing the versions of %s in the target: %w", s.opts.Target.Full, err)
		}
		for _, mv := range all {
			if r, ok := runs[mv.RunId]; ok {
				out = append(out, candidate{version: mv.Version, status: string(mv.Status), digest: tagOf(r, tagDigest), runID: mv.RunId, run: r})
			}
		}
	} else {
		all, err := s.tgt.registry.SearchModelVersionsAll(ctx, ml.SearchModelVersionsRequest{Filter: "name=" + quote(s.opts.Target.Full)})
		if err != nil && !notFound(err) {
			return nil, fmt.Errorf("listing the versions of %s in the target: %w", s.opts.Target.Full, err)
		}
		for _, mv := range all {
			tags := map[string]string{}
			for _, t := range mv.Tags {
				tags[t.Key] = t.Value
			}
			if mv.Name == s.opts.Target.Full && s.sameSource(sv, tags) {
				out = append(out, candidate{version: atoi(mv.Version), status: string(mv.Status), digest: tags[tagDigest], runID: mv.RunId, run: runs[mv.RunId]})
			}
		}
	}
	used := map[string]bool{}
	for _, c := range out {
		used[c.runID] = true
	}
	for id, r := range runs {
		if !used[id] {
			out = append(out, candidate{runID: id, run: r})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].version > out[j].version })
	return out, nil
}

// lineageRuns finds the runs of the target experiment that earlier copies
// of this source version made.
func (s *session) lineageRuns(ctx context.Context, sv *sourceVersion) (map[string]*ml.Run, error) {
	exp, err := s.tgt.exps.GetByName(ctx, ml.GetByNameRequest{ExperimentName: s.opts.Experiment})
	if err != nil {
		if notFound(err) {
			return map[string]*ml.Run{}, nil
		}
		return nil, fmt.Errorf("reading experiment %s in the target: %w", s.opts.Experiment, err)
	}
	filter := fmt.Sprintf("tags.`%s` = %s AND tags.`%s` = %s AND tags.`%s` = %s",
		tagSourceWorkspace, quote(s.src.host), tagSourceModel, quote(sv.name.Full), tagSourceVersion, quote(strconv.Itoa(sv.number)))
	found, err := s.tgt.exps.SearchRunsAll(ctx, ml.SearchRuns{ExperimentIds: []string{exp.Experiment.ExperimentId}, Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("searching runs in %s: %w", s.opts.Experiment, err)
	}
	out := map[string]*ml.Run{}
	for i := range found {
		r := &found[i]
		if r.Info != nil && s.sameSource(sv, runTags(r)) {
			out[r.Info.RunId] = r
		}
	}
	return out, nil
}

func runTags(r *ml.Run) map[string]string {
	out := map[string]string{}
	if r != nil && r.Data != nil {
		for _, t := range r.Data.Tags {
			out[t.Key] = t.Value
		}
	}
	return out
}

func tagOf(r *ml.Run, key string) string { return runTags(r)[key] }

// tryReuse reuses a target version whose lineage names this source version
// and whose digest equals the source's (computed by reading the source); of
// several, the lowest number, as concurrent copies settle (twins.go).
func (s *session) tryReuse(ctx context.Context, sv *sourceVersion, existing []candidate, out Outcome) (Outcome, bool, error) {
	var usable []candidate
	for _, c := range existing {
		pendingRegistry := c.status == "PENDING_REGISTRATION" && !s.opts.Target.UC()
		if c.version > 0 && c.digest != "" && (c.status == "READY" || pendingRegistry) {
			usable = append(usable, c)
		}
	}
	if len(usable) == 0 {
		return out, false, nil
	}
	sort.SliceStable(usable, func(i, j int) bool { return usable[i].version < usable[j].version })
	s.log.Info("Version %d of %s in the target was copied from this source version; reading the source to compare content digests.", usable[0].version, s.opts.Target.Full)
	digest, err := s.sourceDigest(ctx, sv)
	if err != nil {
		return out, false, err
	}
	out.Digest = digest
	for _, c := range usable {
		if c.digest != out.Digest {
			continue
		}
		if c.status != "READY" {
			if err := s.waitReady(ctx, c.version); err != nil {
				var failed *registrationError
				if errors.As(err, &failed) {
					s.log.Info("Version %d, registered by an earlier attempt, failed registration (%s): copying again.", c.version, failed.msg)
					continue
				}
				return out, false, err
			}
		}
		out.Reused, out.TargetVersion, out.TargetRunID = true, c.version, c.runID
		if c.run != nil && c.run.Info != nil {
			out.TargetExperimentID = c.run.Info.ExperimentId
			out.TargetRunURL = s.tgt.runURL(out.TargetExperimentID, c.runID)
		}
		out.TargetURL = s.tgt.versionURL(s.opts.Target, c.version)
		out.Lineage = append(s.lineage(sv), agent.KeyValue{Key: tagDigest, Value: out.Digest})
		s.log.Info("Reusing version %d of %s: same source version, same content (%s). Nothing copied.", c.version, s.opts.Target.Full, out.Digest)
		return out, true, nil
	}
	s.log.Info("The source's content changed since version %d was copied (digest %s, was %s): copying again.", usable[0].version, out.Digest, usable[0].digest)
	return out, false, nil
}

// plan prints what a copy would do.
func (s *session) plan(ctx context.Context, sv *sourceVersion, existing []candidate, out Outcome) error {
	o := s.opts
	s.log.Section("Dry run: the plan (nothing is changed)")
	s.log.Info("Source: %s version %d in %s, run %s: %d files, %s.", o.Source.Full, sv.number, s.src.host, orNone(sv.runID), out.Files, mib(out.Bytes))
	for _, c := range existing {
		if c.version > 0 && (c.status == "READY" || c.status == "PENDING_REGISTRATION") && c.digest != "" {
			s.log.Info("Target version %d of %s was copied from this source version (digest %s): a real run reads the source (%s), and reuses it if the content is unchanged.", c.version, o.Target.Full, c.digest, mib(out.Bytes))
			break
		}
	}
	modelExists, err := s.targetModelExists(ctx)
	if err != nil {
		return err
	}
	_, expErr := s.tgt.exps.GetByName(ctx, ml.GetByNameRequest{ExperimentName: o.Experiment})
	s.log.Info("Target workspace: %s", s.tgt.host)
	s.log.Info("  experiment %s: %s", o.Experiment, existsWord(expErr == nil, "exists", "would be created"))
	resume := ""
	for _, c := range existing {
		if c.version == 0 && c.run != nil && c.run.Info != nil && c.run.Info.Status != ml.RunInfoStatusFinished && tagOf(c.run, tagCopyStatus) != statusSuperseded {
			resume = c.runID
		}
	}
	params, metrics, tags := 0, 0, 0
	if sv.run != nil && sv.run.Data != nil {
		params, metrics, tags = len(sv.run.Data.Params), len(sv.run.Data.Metrics), len(copiedTags(sv.run, ""))
	}
	if resume != "" {
		s.log.Info("  run %s left by an earlier attempt would be resumed", resume)
	} else {
		s.log.Info("  a new run would get %d parameters, %d metrics, %d tags and %d lineage tags", params, metrics, tags, len(s.lineage(sv))+2)
	}
	s.log.Info("  registered model %s (%s): %s", o.Target.Full, registryName(o.Target.UC()), existsWord(modelExists, "exists", "would be created"))
	if o.Target.UC() {
		s.log.Info("  a new version would be created, %d files (%s) uploaded to its storage location, then finalized", out.Files, mib(out.Bytes))
	} else {
		s.log.Info("  %d files (%s) would be copied into the run's artifacts, then a new version registered from them", out.Files, mib(out.Bytes))
	}
	if o.Stage != "" || o.Alias != "" {
		s.log.Info("  the version would then be moved to %s", s.targetLabel())
	}
	return nil
}

func existsWord(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

func registryName(uc bool) string {
	if uc {
		return "Unity Catalog"
	}
	return "workspace model registry"
}

func (s *session) targetModelExists(ctx context.Context) (bool, error) {
	var err error
	if s.opts.Target.UC() {
		_, err = s.tgt.ucModels.Get(ctx, catalog.GetRegisteredModelRequest{FullName: s.opts.Target.Full})
	} else {
		_, err = s.tgt.registry.GetModel(ctx, ml.GetModelRequest{Name: s.opts.Target.Full})
	}
	if err == nil {
		return true, nil
	}
	if notFound(err) {
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
	created, err := auth.CreateOnce(ctx, func(ctx context.Context) error {
		var err error
		if t.UC() {
			_, err = s.tgt.ucModels.Create(ctx, catalog.CreateRegisteredModelRequest{CatalogName: t.Catalog, SchemaName: t.Schema, Name: t.Model})
		} else {
			_, err = s.tgt.registry.CreateModel(ctx, ml.CreateModelRequest{Name: t.Full})
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("creating registered model %s in the target: %w", t.Full, err)
	}
	if created {
		s.log.Info("Created registered model %s in %s.", t.Full, s.tgt.host)
	}
	return nil
}

func (s *session) ensureExperiment(ctx context.Context) (string, error) {
	got, err := s.tgt.exps.GetByName(ctx, ml.GetByNameRequest{ExperimentName: s.opts.Experiment})
	if err == nil {
		return got.Experiment.ExperimentId, nil
	}
	if !notFound(err) {
		return "", fmt.Errorf("reading experiment %s in the target: %w", s.opts.Experiment, err)
	}
	if err := wsapi.NewWorkspace(s.tgt.c).Mkdirs(ctx, wsapi.Mkdirs{Path: path.Dir(s.opts.Experiment)}); err != nil {
		return "", fmt.Errorf("creating folder %s in the target: %w", path.Dir(s.opts.Experiment), err)
	}
	// CreateOnce: a concurrent copy may create the experiment first (then
	// the create answers RESOURCE_ALREADY_EXISTS), and an ambiguous failure
	// is repeated; either way the experiment is read back by name.
	created, err := auth.CreateOnce(ctx, func(ctx context.Context) error {
		_, err := s.tgt.exps.CreateExperiment(ctx, ml.CreateExperiment{Name: s.opts.Experiment})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("creating experiment %s in the target: %w", s.opts.Experiment, err)
	}
	got, err = s.tgt.exps.GetByName(ctx, ml.GetByNameRequest{ExperimentName: s.opts.Experiment})
	if err != nil {
		return "", fmt.Errorf("reading experiment %s in the target: %w", s.opts.Experiment, err)
	}
	id := got.Experiment.ExperimentId
	if !created {
		return id, nil
	}
	s.log.Info("Created experiment %s in %s.", s.opts.Experiment, s.tgt.host)
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
		case strings.HasPrefix(t.Key, "mlflow."), strings.HasPrefix(t.Key, "brickferry_"):
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
		if (c.version > 0 && c.status == "READY") || tagOf(c.run, tagCopyStatus) == statusSuperseded {
			continue
		}
		info := c.run.Info
		if _, err := s.tgt.exps.UpdateRun(ctx, ml.UpdateRun{RunId: info.RunId, Status: ml.UpdateRunStatusRunning}); err != nil {
			return nil, false, fmt.Errorf("resuming run %s in the target: %w", info.RunId, err)
		}
		s.log.Info("Resuming run %s that an earlier attempt left %s: %s", info.RunId, info.Status, s.tgt.runURL(info.ExperimentId, info.RunId))
		return info, true, s.logRunData(ctx, sv, info.RunId)
	}
	name := fmt.Sprintf("%s v%d", sv.name.Full, sv.number)
	if sv.run != nil && sv.run.Info != nil && sv.run.Info.RunName != "" {
		name = sv.run.Info.RunName
	}
	tags := []ml.RunTag{{Key: tagCopyStatus, Value: "copying"}}
	for _, kv := range s.lineage(sv) {
		tags = append(tags, ml.RunTag{Key: kv.Key, Value: kv.Value})
	}
	known := map[string]bool{}
	for _, c := range existing {
		known[c.runID] = true
	}
	info, err := auth.Converge(ctx, func(ctx context.Context) (*ml.RunInfo, bool, error) {
		// A run this attempt created although no answer said so: a run of
		// this source version, copying, that was not there before.
		runs, err := s.lineageRuns(ctx, sv)
		if err != nil {
			return nil, false, err
		}
		for id, r := range runs {
			if !known[id] && tagOf(r, tagCopyStatus) == "copying" {
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
	s.log.Info("Created run %s in %s: %s", info.RunId, s.opts.Experiment, s.tgt.runURL(info.ExperimentId, info.RunId))
	return info, false, s.logRunData(ctx, sv, info.RunId)
}

// logRunData logs the source run's params, latest metrics and tags, within
// MLflow's log-batch limits (100 params, 1000 metrics, 1000 items).
func (s *session) logRunData(ctx context.Context, sv *sourceVersion, runID string) error {
	if sv.run == nil || sv.run.Data == nil {
		return nil
	}
	d := sv.run.Data
	tags := copiedTags(sv.run, runID)
	for i := 0; i < len(d.Params); i += 100 {
		if err := s.tgt.exps.LogBatch(ctx, ml.LogBatch{RunId: runID, Params: d.Params[i:min(i+100, len(d.Params))]}); err != nil {
			return fmt.Errorf("logging parameters into run %s: %w", runID, err)
		}
	}
	for i := 0; i < len(d.Metrics); i += 1000 {
		if err := s.tgt.exps.LogBatch(ctx, ml.LogBatch{RunId: runID, Metrics: d.Metrics[i:min(i+1000, len(d.Metrics))]}); err != nil {
			return fmt.Errorf("logging metrics into run %s: %w", runID, err)
		}
	}
	for i := 0; i < len(tags); i += 1000 {
		if err := s.tgt.exps.LogBatch(ctx, ml.LogBatch{RunId: runID, Tags: tags[i:min(i+1000, len(tags))]}); err != nil {
			return fmt.Errorf("logging tags into run %s: %w", runID, err)
		}
	}
	return nil
}

// attempt is the target state one copy works on: the run (its own, a resumed
// one, or a concurrent copy's it joined) and the version.
type attempt struct {
	run      *ml.RunInfo
	version  int
	ucOwned  int  // a Unity Catalog version this copy created and has not finalized
	joined   bool // run belongs to a concurrent copy (see twins.go)
	adopted  bool // the version was made by another copy
	manifest artifacts.Manifest
	digest   string
	finished bool
}

// copy makes the target version: run, files, registration, READY.
func (s *session) copy(ctx context.Context, sv *sourceVersion, existing []candidate, out Outcome) (Outcome, error) {
	expID, err := s.ensureExperiment(ctx)
	if err != nil {
		return out, err
	}
	run, resumed, err := s.targetRun(ctx, sv, existing, expID)
	if err != nil {
		return out, err
	}
	a := &attempt{run: run}
	out.Resumed = resumed
	defer func() {
		if !a.finished {
			s.markFailed(ctx, a)
		}
	}()
	if err := s.ensureModel(ctx); err != nil {
		return s.outcome(out, sv, a), err
	}
	if s.opts.Target.UC() {
		err = s.copyToUC(ctx, sv, existing, a)
	} else {
		err = s.copyToRegistry(ctx, sv, a)
	}
	if err != nil {
		return s.outcome(out, sv, a), err
	}
	if err := s.waitReady(ctx, a.version); err != nil {
		return s.outcome(out, sv, a), err
	}
	if _, err := s.tgt.exps.UpdateRun(ctx, ml.UpdateRun{RunId: a.run.RunId, Status: ml.UpdateRunStatusFinished, EndTime: time.Now().UnixMilli()}); err != nil {
		return s.outcome(out, sv, a), fmt.Errorf("finishing run %s: %w", a.run.RunId, err)
	}
	a.finished = true
	out = s.outcome(out, sv, a)
	s.log.Info("Version %d of %s is READY in %s: %s", out.TargetVersion, s.opts.Target.Full, s.tgt.host, out.TargetURL)
	return out, nil
}

// outcome is what the attempt made, for the outputs and the summary.
func (s *session) outcome(out Outcome, sv *sourceVersion, a *attempt) Outcome {
	out.TargetRunID, out.TargetExperimentID = a.run.RunId, a.run.ExperimentId
	out.TargetRunURL = s.tgt.runURL(a.run.ExperimentId, a.run.RunId)
	out.FilesCopied, out.BytesCopied = len(a.manifest.Files), a.manifest.Bytes
	out.Reused, out.Concurrent = a.adopted, a.adopted
	if a.digest != "" {
		out.Digest = a.digest
		out.Lineage = append(s.lineage(sv), agent.KeyValue{Key: tagDigest, Value: a.digest})
	}
	if a.version > 0 {
		out.TargetVersion = a.version
		out.TargetURL = s.tgt.versionURL(s.opts.Target, a.version)
	}
	return out
}

// artifactDir is the folder of the target run that receives the model.
func (sv *sourceVersion) artifactDir() string {
	if sv.artPath != "" {
		return sv.artPath
	}
	return "model"
}

// copyToRegistry copies the files into the run, registers a version from
// them and settles a race with a concurrent copy (twins.go).
func (s *session) copyToRegistry(ctx context.Context, sv *sourceVersion, a *attempt) error {
	m, err := s.copyToRun(ctx, sv, a.run)
	if err != nil {
		return err
	}
	a.manifest, a.digest = m, m.Digest()
	v, err := s.register(ctx, sv, a.run, append(s.lineage(sv), agent.KeyValue{Key: tagDigest, Value: a.digest}))
	if err != nil {
		return err
	}
	a.version = v
	return s.settleRegistry(ctx, sv, a)
}

func (s *session) copyToRun(ctx context.Context, sv *sourceVersion, run *ml.RunInfo) (artifacts.Manifest, error) {
	dir := sv.artifactDir()
	s.log.Info("Copying %d files into %s/%s of run %s.", len(sv.files), run.ArtifactUri, dir, run.RunId)
	m, err := s.copier.Copy(ctx, sv.files, sv.read, artifacts.RunSigner(s.tgt.c, run.RunId, dir, true), artifacts.RunSigner(s.tgt.c, run.RunId, dir, false))
	if err != nil {
		return m, fmt.Errorf("copying the model files: %w", err)
	}
	return m, s.completeRun(ctx, run.RunId, m.Digest())
}

// completeRun records on the run that every file is written and checked.
func (s *session) completeRun(ctx context.Context, runID, digest string) error {
	err := s.tgt.exps.LogBatch(ctx, ml.LogBatch{RunId: runID, Tags: []ml.RunTag{{Key: tagDigest, Value: digest}, {Key: tagCopyStatus, Value: "complete"}}})
	if err != nil {
		return fmt.Errorf("tagging run %s: %w", runID, err)
	}
	return nil
}

func (s *session) register(ctx context.Context, sv *sourceVersion, run *ml.RunInfo, lineage []agent.KeyValue) (int, error) {
	var tags []ml.ModelVersionTag
	for _, kv := range lineage {
		tags = append(tags, ml.ModelVersionTag{Key: kv.Key, Value: kv.Value})
	}
	v, err := auth.Converge(ctx, func(ctx context.Context) (int, bool, error) {
		// A version this attempt registered although no answer said so.
		// (The workspace registry's search takes one condition: the run.)
		found, err := s.tgt.registry.SearchModelVersionsAll(ctx, ml.SearchModelVersionsRequest{Filter: "run_id=" + quote(run.RunId)})
		if err != nil {
			return 0, false, err
		}
		for _, mv := range found {
			if mv.Name == s.opts.Target.Full {
				return atoi(mv.Version), true, nil
			}
		}
		return 0, false, nil
	}, func(ctx context.Context) (int, error) {
		resp, err := s.tgt.registry.CreateModelVersion(ctx, ml.CreateModelVersionRequest{
			Name: s.opts.Target.Full, Source: strings.TrimSuffix(run.ArtifactUri, "/") + "/" + sv.artifactDir(), RunId: run.RunId,
			RunLink: s.tgt.runURL(run.ExperimentId, run.RunId), Tags: tags,
			Description: fmt.Sprintf("Copied from %s version %d in %s.", sv.name.Full, sv.number, s.src.host),
		})
		if err != nil {
			return 0, err
		}
		return atoi(resp.ModelVersion.Version), nil
	})
	if err != nil {
		return 0, fmt.Errorf("registering %s from run %s: %w", s.opts.Target.Full, run.RunId, err)
	}
	s.log.Info("Registered version %d of %s from run %s; waiting for READY.", v, s.opts.Target.Full, run.RunId)
	return v, nil
}

// copyToUC creates (or, for a resumed run, reuses) a Unity Catalog version,
// settles a race with a concurrent copy (twins.go), uploads the files to the
// version's storage location and finalizes it.
func (s *session) copyToUC(ctx context.Context, sv *sourceVersion, existing []candidate, a *attempt) error {
	mv, err := s.ucTargetVersion(ctx, sv, existing, a.run)
	if err != nil {
		return err
	}
	a.version, a.ucOwned = mv.number, mv.number
	mv, done, err := s.settleUC(ctx, sv, a, mv)
	if err != nil || done {
		return err
	}
	write := func(ctx context.Context, paths []string) (map[string]artifacts.Credential, error) {
		token, err := s.tgt.ucCredentials(ctx, s.opts.Target, mv.number, true)
		if err != nil {
			return nil, err
		}
		sign, err := artifacts.PrefixSigner(mv.location, token)
		if err != nil {
			return nil, err
		}
		return sign(ctx, paths)
	}
	m, err := s.copier.Copy(ctx, sv.files, sv.read, write, write)
	if err != nil {
		// Another copy working on the same version (this copy joined it,
		// or it joined this copy's) may have finalized it first; writes
		// are refused from then on.
		if s.finishedByOther(ctx, a) {
			return nil
		}
		return fmt.Errorf("copying the model files: %w", err)
	}
	a.manifest, a.digest = m, m.Digest()
	if err := s.completeRun(ctx, a.run.RunId, a.digest); err != nil {
		return err
	}
	return s.finalize(ctx, mv.number)
}

// ucTarget is a Unity Catalog version being filled.
type ucTarget struct {
	number   int
	location string
}

// ucTargetVersion resumes the version an earlier attempt created for this
// run and did not finalize, or creates one. Creating is not idempotent: after
// an ambiguous failure the version may exist, so it is looked for (a
// PENDING_REGISTRATION version of this run) before creating again.
func (s *session) ucTargetVersion(ctx context.Context, sv *sourceVersion, existing []candidate, run *ml.RunInfo) (ucTarget, error) {
	name := s.opts.Target
	for _, c := range existing {
		if c.runID == run.RunId && c.version > 0 && c.status == "PENDING_REGISTRATION" {
			got, err := s.tgt.ucGet(ctx, name, c.version)
			if err != nil {
				return ucTarget{}, err
			}
			s.log.Info("Resuming version %d of %s, which an earlier attempt created and did not finalize.", got.Version, name.Full)
			return ucTarget{number: got.Version, location: got.StorageLocation}, nil
		}
	}
	var tags []ucregistry.Tag
	for _, kv := range s.lineage(sv) {
		tags = append(tags, ucregistry.Tag{Key: kv.Key, Value: kv.Value})
	}
	mv, err := auth.Converge(ctx, func(ctx context.Context) (ucTarget, bool, error) {
		all, err := s.tgt.ucVersions.ListAll(ctx, catalog.ListModelVersionsRequest{FullName: name.Full})
		if err != nil {
			return ucTarget{}, false, err
		}
		for _, v := range all {
			if v.RunId == run.RunId && v.Status == catalog.ModelVersionInfoStatusPendingRegistration {
				return ucTarget{number: v.Version, location: v.StorageLocation}, true, nil
			}
		}
		return ucTarget{}, false, nil
	}, func(ctx context.Context) (ucTarget, error) {
		var resp ucregistry.VersionResponse
		err := s.tgt.c.Do(ctx, http.MethodPost, ucregistry.Route+"create", nil, nil, ucregistry.CreateRequest{
			Name: name.Full, Source: strings.TrimSuffix(run.ArtifactUri, "/") + "/" + sv.artifactDir(), RunID: run.RunId, Tags: tags,
			Description: fmt.Sprintf("Copied from %s version %d in %s.", sv.name.Full, sv.number, s.src.host),
		}, &resp)
		if err != nil {
			return ucTarget{}, err
		}
		if resp.ModelVersion == nil {
			return ucTarget{}, errors.New("the answer has no model_version")
		}
		return ucTarget{number: atoi(resp.ModelVersion.Version), location: resp.ModelVersion.StorageLocation}, nil
	})
	if err != nil {
		return ucTarget{}, fmt.Errorf("creating a version of %s: %w", name.Full, err)
	}
	s.log.Info("Created version %d of %s (PENDING_REGISTRATION); uploading %d files to its storage location.", mv.number, name.Full, len(sv.files))
	return mv, nil
}

// finalize makes a Unity Catalog version READY. After an ambiguous failure
// it looks whether the version is READY before asking again; a version a
// concurrent copy finalized first is fine too (both wrote the same files).
func (s *session) finalize(ctx context.Context, n int) error {
	name := s.opts.Target
	ready := func(ctx context.Context) (struct{}, bool, error) {
		mv, err := s.tgt.ucGet(ctx, name, n)
		return struct{}{}, err == nil && mv.Status == catalog.ModelVersionInfoStatusReady, err
	}
	_, err := auth.Converge(ctx, ready, func(ctx context.Context) (struct{}, error) {
		var fin ucregistry.VersionResponse
		return struct{}{}, s.tgt.c.Do(ctx, http.MethodPost, ucregistry.Route+"finalize", nil, nil,
			ucregistry.VersionRequest{Name: name.Full, Version: strconv.Itoa(n)}, &fin)
	})
	if err == nil {
		return nil
	}
	if _, ok, _ := ready(ctx); ok {
		return nil
	}
	return fmt.Errorf("finalizing version %d of %s: %w", n, name.Full, err)
}

// waitReady polls a target version until it is READY.
func (s *session) waitReady(ctx context.Context, n int) error {
	name := s.opts.Target
	delay := s.poll
	for {
		var status, msg string
		if name.UC() {
			mv, err := s.tgt.ucGet(ctx, name, n)
			if err != nil {
				return err
			}
			status = string(mv.Status)
		} else {
			resp, err := s.tgt.registry.GetModelVersion(ctx, ml.GetModelVersionRequest{Name: name.Full, Version: strconv.Itoa(n)})
			if err != nil {
				return fmt.Errorf("reading version %d of %s: %w", n, name.Full, err)
			}
			status, msg = string(resp.ModelVersion.Status), resp.ModelVersion.StatusMessage
		}
		switch status {
		case "READY":
			return nil
		case "FAILED_REGISTRATION":
			return &registrationError{version: n, model: name.Full, host: s.tgt.host, msg: agent.Neutralize(msg)}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for version %d of %s to be READY (now %s): %w", n, name.Full, status, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// markFailed marks a half-made run FAILED (and tries to delete a UC version
// this copy created and never finalized), on one cleanup context
// (agent.Cleanup): the copy's may be cancelled or past its deadline, and
// after the pipeline's signal all of it must end within agent.GracePeriod.
// Each call is logged first. A run joined from a
// concurrent copy is left to that copy, and so is a run whose version a
// concurrent copy has made READY meanwhile: it is not half-made.
func (s *session) markFailed(ctx context.Context, a *attempt) {
	if a.joined {
		return
	}
	runID := a.run.RunId
	ctx, cancel := agent.Cleanup(ctx, s.log, 30*time.Second, "checking whether the half-made run "+runID+" has a READY version")
	defer cancel()
	if s.versionReady(ctx, a.version) {
		s.log.Info("Version %d of %s is READY (finished by a concurrent copy): its run %s stays as it is.", a.version, s.opts.Target.Full, a.run.RunId)
		return
	}
	agent.CleanupStep(ctx, s.log, "marking run "+runID+" FAILED")
	err := s.tgt.exps.LogBatch(ctx, ml.LogBatch{RunId: runID, Tags: []ml.RunTag{{Key: tagCopyStatus, Value: "failed"}}})
	if err == nil {
		_, err = s.tgt.exps.UpdateRun(ctx, ml.UpdateRun{RunId: runID, Status: ml.UpdateRunStatusFailed, EndTime: time.Now().UnixMilli()})
	}
	if err != nil {
		s.log.Warning("Could not mark the half-made run %s FAILED: %v", runID, err)
	} else {
		s.log.Info("Marked run %s FAILED; no version was registered from it. Running the step again resumes it.", runID)
	}
	if a.ucOwned > 0 {
		agent.CleanupStep(ctx, s.log, fmt.Sprintf("removing the unfinalized version %d of %s", a.ucOwned, s.opts.Target.Full))
		mv, err := s.tgt.ucGet(ctx, s.opts.Target, a.ucOwned)
		if err != nil || mv.Status == catalog.ModelVersionInfoStatusReady {
			return
		}
		if err := s.tgt.ucVersions.Delete(ctx, catalog.DeleteModelVersionRequest{FullName: s.opts.Target.Full, Version: a.ucOwned}); err != nil {
			s.log.Warning("Version %d of %s was not finalized and stays PENDING_REGISTRATION (it cannot be loaded or given an alias); deleting it failed (%v). Running the step again resumes it.", a.ucOwned, s.opts.Target.Full, err)
		}
	}
}

// versionReady reports whether target version n (0: none yet) is READY;
// a version that cannot be read counts as not ready.
func (s *session) versionReady(ctx context.Context, n int) bool {
	if n <= 0 {
		return false
	}
	if s.opts.Target.UC() {
		mv, err := s.tgt.ucGet(ctx, s.opts.Target, n)
		return err == nil && mv.Status == catalog.ModelVersionInfoStatusReady
	}
	resp, err := s.tgt.registry.GetModelVersion(ctx, ml.GetModelVersionRequest{Name: s.opts.Target.Full, Version: strconv.Itoa(n)})
	return err == nil && resp.ModelVersion != nil && resp.ModelVersion.Status == ml.ModelVersionStatusReady
}

// registrationError is a version that ended FAILED_REGISTRATION.
type registrationError struct {
	version     int
	model, host string
	msg         string
}

func (e *registrationError) Error() string {
	return fmt.Sprintf("version %d of %s failed registration in %s: %s", e.version, e.model, e.host, e.msg)
}
