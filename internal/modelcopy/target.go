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

	"github.com/brickops/brickops/internal/agent"
	"github.com/brickops/brickops/internal/artifacts"
	"github.com/brickops/brickops/internal/auth"
)

// Lineage tag keys, on the target run and (workspace registry) the target
// version. The first three identify the source version.
const (
	tagSourceWorkspace   = "brickops.source_workspace"
	tagSourceModel       = "brickops.source_model"
	tagSourceVersion     = "brickops.source_version"
	tagSourceWorkspaceID = "brickops.source_workspace_id"
	tagSourceRunID       = "brickops.source_run_id"
	tagSourceRunURL      = "brickops.source_run_url"
	tagDigest            = "brickops.content_digest"
	tagCopyStatus        = "brickops.copy_status" // run only: copying, complete, failed
	tagAction            = "brickops.action"
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
	add("brickops.build_id", build)
	add("brickops.run_url", p.RunURL())
	add("brickops.commit", p.SourceVersion)
	add("brickops.pipeline", p.DefinitionName)
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
// and whose digest equals the source's (computed by reading the source).
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
	s.log.Info("Version %d of %s in the target was copied from this source version; reading the source to compare content digests.", usable[0].version, s.opts.Target.Full)
	m, err := s.copier.Hash(ctx, sv.files, sv.read)
	if err != nil {
		return out, false, fmt.Errorf("reading the source to compute its digest: %w", err)
	}
	out.Digest = m.Digest()
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
		if c.version == 0 && c.run != nil && c.run.Info != nil && c.run.Info.Status != ml.RunInfoStatusFinished {
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
	id, err := auth.Converge(ctx, func(ctx context.Context) (string, bool, error) {
		got, err := s.tgt.exps.GetByName(ctx, ml.GetByNameRequest{ExperimentName: s.opts.Experiment})
		if err != nil {
			return "", false, err
		}
		return got.Experiment.ExperimentId, true, nil
	}, func(ctx context.Context) (string, error) {
		created, err := s.tgt.exps.CreateExperiment(ctx, ml.CreateExperiment{Name: s.opts.Experiment})
		if err != nil {
			return "", err
		}
		return created.ExperimentId, nil
	})
	if err != nil {
		return "", fmt.Errorf("creating experiment %s in the target: %w", s.opts.Experiment, err)
	}
	s.log.Info("Created experiment %s in %s.", s.opts.Experiment, s.tgt.host)
	return id, nil
}

// copiedTags are the source run's tags that travel: the user's own tags and
// the run's description, not the workspace-specific mlflow.* system tags nor
// an earlier step's brickops.* lineage. The logged-model history is rewritten
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
		case strings.HasPrefix(t.Key, "mlflow."), strings.HasPrefix(t.Key, "brickops."):
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
		if c.version > 0 && c.status == "READY" {
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
	info, err := auth.Converge(ctx, func(ctx context.Context) (*ml.RunInfo, bool, error) {
		// A run this attempt created although no answer said so: copying,
		// from the same source run.
		runs, err := s.tgt.exps.SearchRunsAll(ctx, ml.SearchRuns{ExperimentIds: []string{expID},
			Filter: fmt.Sprintf("tags.`%s` = 'copying' and tags.`%s` = '%s'", tagCopyStatus, tagSourceRunID, sv.runID)})
		if err != nil || len(runs) == 0 {
			return nil, false, err
		}
		return runs[0].Info, true, nil
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
	out.Resumed, out.TargetRunID, out.TargetExperimentID = resumed, run.RunId, run.ExperimentId
	out.TargetRunURL = s.tgt.runURL(run.ExperimentId, run.RunId)
	ucVersion := 0
	finished := false
	defer func() {
		if !finished {
			s.markFailed(run.RunId, ucVersion)
		}
	}()
	if err := s.ensureModel(ctx); err != nil {
		return out, err
	}
	var m artifacts.Manifest
	if s.opts.Target.UC() {
		ucVersion, m, err = s.copyToUC(ctx, sv, existing, run)
	} else {
		m, err = s.copyToRun(ctx, sv, run)
	}
	if err != nil {
		return out, err
	}
	out.FilesCopied, out.BytesCopied, out.Digest = len(m.Files), m.Bytes, m.Digest()
	out.Lineage = append(s.lineage(sv), agent.KeyValue{Key: tagDigest, Value: out.Digest})
	if s.opts.Target.UC() {
		out.TargetVersion = ucVersion
	} else {
		v, err := s.register(ctx, sv, run, out.Lineage)
		if err != nil {
			return out, err
		}
		out.TargetVersion = v
	}
	if err := s.waitReady(ctx, out.TargetVersion); err != nil {
		return out, err
	}
	if _, err := s.tgt.exps.UpdateRun(ctx, ml.UpdateRun{RunId: run.RunId, Status: ml.UpdateRunStatusFinished, EndTime: time.Now().UnixMilli()}); err != nil {
		return out, fmt.Errorf("finishing run %s: %w", run.RunId, err)
	}
	finished = true
	out.TargetURL = s.tgt.versionURL(s.opts.Target, out.TargetVersion)
	s.log.Info("Version %d of %s is READY in %s: %s", out.TargetVersion, s.opts.Target.Full, s.tgt.host, out.TargetURL)
	return out, nil
}

// artifactDir is the folder of the target run that receives the model.
func (sv *sourceVersion) artifactDir() string {
	if sv.artPath != "" {
		return sv.artPath
	}
	return "model"
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
		found, err := s.tgt.registry.SearchModelVersionsAll(ctx, ml.SearchModelVersionsRequest{
			Filter: fmt.Sprintf("name='%s' and run_id='%s'", s.opts.Target.Full, run.RunId)})
		if err != nil || len(found) == 0 {
			return 0, false, err
		}
		return atoi(found[0].Version), true, nil
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
// uploads the files to its storage location and finalizes it.
func (s *session) copyToUC(ctx context.Context, sv *sourceVersion, existing []candidate, run *ml.RunInfo) (int, artifacts.Manifest, error) {
	name := s.opts.Target
	var mv ucModelVersion
	for _, c := range existing {
		if c.runID == run.RunId && c.version > 0 && c.status == "PENDING_REGISTRATION" {
			got, err := s.tgt.ucGet(ctx, name, c.version)
			if err != nil {
				return 0, artifacts.Manifest{}, err
			}
			mv = ucModelVersion{Version: strconv.Itoa(got.Version), StorageLocation: got.StorageLocation, Status: string(got.Status)}
			s.log.Info("Resuming version %d of %s, which an earlier attempt created and did not finalize.", got.Version, name.Full)
		}
	}
	if mv.Version == "" {
		var tags []ucTag
		for _, kv := range s.lineage(sv) {
			tags = append(tags, ucTag{Key: kv.Key, Value: kv.Value})
		}
		var resp ucVersionResponse
		err := s.tgt.c.Do(ctx, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/create", nil, nil, ucCreateRequest{
			Name: name.Full, Source: strings.TrimSuffix(run.ArtifactUri, "/") + "/" + sv.artifactDir(), RunID: run.RunId, Tags: tags,
			Description: fmt.Sprintf("Copied from %s version %d in %s.", sv.name.Full, sv.number, s.src.host),
		}, &resp)
		if err != nil {
			return 0, artifacts.Manifest{}, fmt.Errorf("creating a version of %s: %w", name.Full, err)
		}
		if resp.ModelVersion == nil {
			return 0, artifacts.Manifest{}, fmt.Errorf("creating a version of %s: the answer has no model_version", name.Full)
		}
		mv = *resp.ModelVersion
		s.log.Info("Created version %s of %s (PENDING_REGISTRATION); uploading %d files to its storage location.", mv.Version, name.Full, len(sv.files))
	}
	n := atoi(mv.Version)
	write := func(ctx context.Context, paths []string) (map[string]artifacts.Credential, error) {
		token, err := s.tgt.ucCredentials(ctx, name, n, true)
		if err != nil {
			return nil, err
		}
		sign, err := artifacts.PrefixSigner(mv.StorageLocation, token)
		if err != nil {
			return nil, err
		}
		return sign(ctx, paths)
	}
	m, err := s.copier.Copy(ctx, sv.files, sv.read, write, write)
	if err != nil {
		return n, m, fmt.Errorf("copying the model files: %w", err)
	}
	if err := s.completeRun(ctx, run.RunId, m.Digest()); err != nil {
		return n, m, err
	}
	var fin ucVersionResponse
	if err := s.tgt.c.Do(ctx, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/finalize", nil, nil, ucFinalizeRequest{Name: name.Full, Version: mv.Version}, &fin); err != nil {
		return n, m, fmt.Errorf("finalizing version %d of %s: %w", n, name.Full, err)
	}
	return n, m, nil
}

// waitReady polls a target version until it is READY.
func (s *session) waitReady(ctx context.Context, n int) error {
	name := s.opts.Target
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
		case <-time.After(s.poll):
		}
	}
}

// markFailed marks a half-made run FAILED (and tries to delete a UC version
// that was never finalized), with a context of its own: the copy's may be
// cancelled or past its deadline.
func (s *session) markFailed(runID string, ucVersion int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.tgt.exps.LogBatch(ctx, ml.LogBatch{RunId: runID, Tags: []ml.RunTag{{Key: tagCopyStatus, Value: "failed"}}})
	if err == nil {
		_, err = s.tgt.exps.UpdateRun(ctx, ml.UpdateRun{RunId: runID, Status: ml.UpdateRunStatusFailed, EndTime: time.Now().UnixMilli()})
	}
	if err != nil {
		s.log.Warning("Could not mark the half-made run %s FAILED: %v", runID, err)
	} else {
		s.log.Info("Marked run %s FAILED; no version was registered from it. Running the step again resumes it.", runID)
	}
	if ucVersion > 0 {
		mv, err := s.tgt.ucGet(ctx, s.opts.Target, ucVersion)
		if err != nil || mv.Status == catalog.ModelVersionInfoStatusReady {
			return
		}
		if err := s.tgt.ucVersions.Delete(ctx, catalog.DeleteModelVersionRequest{FullName: s.opts.Target.Full, Version: ucVersion}); err != nil {
			s.log.Warning("Version %d of %s was not finalized and stays PENDING_REGISTRATION (it cannot be loaded or given an alias); deleting it failed (%v). Running the step again resumes it.", ucVersion, s.opts.Target.Full, err)
		}
	}
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
