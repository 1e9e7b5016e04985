package modelcopy

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/registry"
)

// The copy proper: run, files, registration, READY, and what a failed
// attempt leaves.

// attempt is the target state one copy works on: the run (its own, a resumed
// one, or a concurrent copy's it joined) and the version.
type attempt struct {
	run      *ml.RunInfo
	model    *ml.LoggedModelInfo // the logged model the files go to (MLflow 3 target), nil: the run's artifacts
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
	s.noteTargetVersion(ctx, a)
	out = s.outcome(out, sv, a)
	s.log.Info("Version %d of %s is READY in %s: %s", out.TargetVersion, s.opts.Target.Full, s.tgt.Host, out.TargetURL)
	return out, nil
}

// outcome is what the attempt made, for the outputs and the summary.
func (s *session) outcome(out Outcome, sv *sourceVersion, a *attempt) Outcome {
	out.TargetRunID, out.TargetExperimentID = a.run.RunId, a.run.ExperimentId
	out.TargetRunURL = s.tgt.RunURL(a.run.ExperimentId, a.run.RunId)
	out.FilesCopied, out.BytesCopied = len(a.manifest.Files), a.manifest.Bytes
	out.Reused, out.Concurrent = a.adopted, a.adopted
	if a.digest != "" {
		out.Digest = a.digest
		out.Lineage = append(s.lineage(sv), agent.KeyValue{Key: registry.TagDigest, Value: a.digest})
	}
	if a.version > 0 {
		out.TargetVersion = a.version
		out.TargetURL = s.tgt.VersionURL(s.opts.Target, a.version)
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
	lm, err := s.targetLoggedModel(ctx, sv, a.run)
	if err != nil {
		return err
	}
	a.model = lm
	if lm != nil {
		a.manifest, a.digest, err = s.copyToLoggedModel(ctx, sv, a.run, lm)
	} else {
		a.manifest, err = s.copyToRun(ctx, sv, a.run)
		a.digest = a.manifest.Digest()
	}
	if err != nil {
		return err
	}
	v, err := s.register(ctx, sv, a, append(s.lineage(sv), agent.KeyValue{Key: registry.TagDigest, Value: a.digest}))
	if err != nil {
		return err
	}
	a.version = v
	return s.settleRegistry(ctx, sv, a)
}

func (s *session) copyToRun(ctx context.Context, sv *sourceVersion, run *ml.RunInfo) (artifacts.Manifest, error) {
	dir := sv.artifactDir()
	s.log.Info("Copying %d files into %s/%s of run %s.", len(sv.files), run.ArtifactUri, dir, run.RunId)
	m, err := s.copier.Copy(ctx, sv.files, sv.read, artifacts.RunSigner(s.tgt.Client, run.RunId, dir, true), artifacts.RunSigner(s.tgt.Client, run.RunId, dir, false))
	if err != nil {
		return m, fmt.Errorf("copying the model files: %w", err)
	}
	return m, s.completeRun(ctx, run.RunId, m.Digest())
}

// completeRun records on the run that every file is written and checked.
func (s *session) completeRun(ctx context.Context, runID, digest string) error {
	err := s.tgt.exps.LogBatch(ctx, ml.LogBatch{RunId: runID, Tags: []ml.RunTag{{Key: registry.TagDigest, Value: digest}, {Key: registry.TagCopyStatus, Value: "complete"}}})
	if err != nil {
		return fmt.Errorf("tagging run %s: %w", runID, err)
	}
	return nil
}

func (s *session) register(ctx context.Context, sv *sourceVersion, a *attempt, lineage []agent.KeyValue) (int, error) {
	run := a.run
	var tags []ml.ModelVersionTag
	for _, kv := range lineage {
		tags = append(tags, ml.ModelVersionTag{Key: kv.Key, Value: kv.Value})
	}
	source, modelID := s.versionSource(sv, run, a)
	made, err := s.tgt.CreateVersion(ctx, ml.CreateModelVersionRequest{
		Name: s.opts.Target.Full, Source: source, RunId: run.RunId,
		RunLink: s.tgt.RunURL(run.ExperimentId, run.RunId), Tags: tags,
		Description: fmt.Sprintf("Copied from %s version %d in %s.", sv.name.Full, sv.number, s.src.Host),
	}, modelID, func(ctx context.Context) (*registry.Version, error) {
		// A version this attempt registered although no answer said so.
		// (The workspace registry's search takes one condition: the run.)
		found, err := s.tgt.Models.SearchModelVersionsAll(ctx, ml.SearchModelVersionsRequest{Filter: "run_id=" + registry.Quote(run.RunId)})
		if err != nil {
			return nil, err
		}
		for _, mv := range found {
			if mv.Name == s.opts.Target.Full {
				v := registry.FromRegistry(mv)
				return &v, nil
			}
		}
		return nil, nil
	})
	if err != nil {
		return 0, fmt.Errorf("registering %s from run %s: %w", s.opts.Target.Full, run.RunId, err)
	}
	s.log.Info("Registered version %d of %s from run %s; waiting for READY.", made.Number, s.opts.Target.Full, run.RunId)
	return made.Number, nil
}

// waitReady polls a target version until it is READY, pausing Deps.Poll
// doubling up to 10 s; the copy's own timeout (ctx) bounds the wait.
func (s *session) waitReady(ctx context.Context, n int) error {
	_, err := s.tgt.WaitReady(ctx, s.clock, s.opts.Target, n, converge.Schedule{Pause: converge.Doubling(s.poll, 10*time.Second)}, nil)
	return err
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
	err := s.tgt.exps.LogBatch(ctx, ml.LogBatch{RunId: runID, Tags: []ml.RunTag{{Key: registry.TagCopyStatus, Value: "failed"}}})
	if err == nil {
		_, err = s.tgt.exps.UpdateRun(ctx, ml.UpdateRun{RunId: runID, Status: ml.UpdateRunStatusFailed, EndTime: time.Now().UnixMilli()})
	}
	s.failLoggedModel(ctx, a)
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
		if err := s.tgt.DeleteVersion(ctx, s.opts.Target, a.ucOwned); err != nil {
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
	resp, err := s.tgt.Models.GetModelVersion(ctx, ml.GetModelVersionRequest{Name: s.opts.Target.Full, Version: strconv.Itoa(n)})
	return err == nil && resp.ModelVersion != nil && resp.ModelVersion.Status == ml.ModelVersionStatusReady
}
