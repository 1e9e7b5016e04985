package modelcopy

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/registry"
)

// Two copies of the same source version may run at once (two pipeline runs,
// a stage retried while the first attempt still runs). They take no lock.
// Each makes its own version, then lists the versions of the target model
// with the same lineage (source version, and content digest where it is
// known); the lowest number wins. A copy that finds a lower twin deletes its
// own version, marks its own run FAILED (copy status "superseded") and
// adopts the twin. Version numbers only grow, so a lower twin was created
// before the copy's own version and every copy sees it: all of them settle
// on the same version.
//
// Workspace registry: the check runs after registering, when the files are
// all in the run; the registry finishes a twin on its own. Unity Catalog:
// the check runs right after the version is created (before any upload); a
// twin still PENDING_REGISTRATION is finished by whichever copy gets there
// first (both write the same files, and a finalize that finds the version
// READY is fine), so a twin whose copy died is finished too.

const statusSuperseded = "superseded"

// twin is a version of the target model made by another copy of the same
// source version.
type twin struct {
	version  int
	status   string
	runID    string
	run      *ml.Run // nil when its run is not in the target experiment
	location string  // Unity Catalog storage location
}

// sourceDigest reads the source once and returns its content digest.
func (s *session) sourceDigest(ctx context.Context, sv *sourceVersion) (string, error) {
	if s.digest != "" {
		return s.digest, nil
	}
	m, err := s.copier.Hash(ctx, sv.files, sv.read)
	if err != nil {
		return "", fmt.Errorf("reading the source to compute its digest: %w", err)
	}
	s.digest = m.Digest()
	return s.digest, nil
}

// registryTwin is the lowest workspace registry version below ours with
// the same source version and digest that has not failed registration.
func (s *session) registryTwin(ctx context.Context, sv *sourceVersion, ours int, digest string) (*twin, error) {
	all, err := s.tgt.Models.SearchModelVersionsAll(ctx, ml.SearchModelVersionsRequest{Filter: "name=" + registry.Quote(s.opts.Target.Full)})
	if err != nil {
		return nil, fmt.Errorf("listing the versions of %s in the target: %w", s.opts.Target.Full, err)
	}
	var best *twin
	for _, mv := range all {
		n := atoi(mv.Version)
		tags := map[string]string{}
		for _, t := range mv.Tags {
			tags[t.Key] = t.Value
		}
		if mv.Name != s.opts.Target.Full || n >= ours || !s.sameSource(sv, tags) || tags[registry.TagDigest] != digest || mv.Status == ml.ModelVersionStatusFailedRegistration {
			continue
		}
		if best == nil || n < best.version {
			best = &twin{version: n, status: string(mv.Status), runID: mv.RunId}
		}
	}
	return best, nil
}

// settleRegistry gives way to a lower twin of the version just registered.
func (s *session) settleRegistry(ctx context.Context, sv *sourceVersion, a *attempt) error {
	tw, err := s.registryTwin(ctx, sv, a.version, a.digest)
	if err != nil || tw == nil {
		return err
	}
	s.log.Info("A concurrent copy of the same source version registered version %d of %s first: deleting version %d and using version %d.", tw.version, s.opts.Target.Full, a.version, tw.version)
	err = s.tgt.DeleteVersion(ctx, s.opts.Target, a.version)
	if err != nil && !registry.NotFound(err) {
		return fmt.Errorf("deleting version %d of %s, a duplicate of version %d: %w", a.version, s.opts.Target.Full, tw.version, err)
	}
	return s.adopt(ctx, a, tw)
}

// ucTwin is the lowest Unity Catalog version below ours made from a run of
// this source version: PENDING_REGISTRATION (being filled, or left by a copy
// that died), or READY with the source's digest.
func (s *session) ucTwin(ctx context.Context, sv *sourceVersion, ours int) (*twin, error) {
	runs, err := s.lineageRuns(ctx, sv)
	if err != nil {
		return nil, err
	}
	all, err := s.tgt.UCVersions.ListAll(ctx, catalog.ListModelVersionsRequest{FullName: s.opts.Target.Full})
	if err != nil {
		return nil, fmt.Errorf("listing the versions of %s in the target: %w", s.opts.Target.Full, err)
	}
	var best *twin
	for _, mv := range all {
		r, ok := runs[mv.RunId]
		if !ok || mv.Version >= ours || (best != nil && mv.Version > best.version) {
			continue
		}
		switch mv.Status {
		case catalog.ModelVersionInfoStatusPendingRegistration:
		case catalog.ModelVersionInfoStatusReady:
			digest, err := s.sourceDigest(ctx, sv)
			if err != nil {
				return nil, err
			}
			if tagOf(r, registry.TagDigest) != digest {
				continue
			}
		default:
			continue
		}
		best = &twin{version: mv.Version, status: string(mv.Status), runID: mv.RunId, run: r, location: mv.StorageLocation}
	}
	return best, nil
}

// settleUC gives way to a lower twin of the version just created (or
// resumed): ours is deleted; a READY twin is the result (done), a pending one
// is the version to fill.
func (s *session) settleUC(ctx context.Context, sv *sourceVersion, a *attempt, ours ucTarget) (ucTarget, bool, error) {
	tw, err := s.ucTwin(ctx, sv, ours.number)
	if err != nil || tw == nil {
		return ours, false, err
	}
	s.log.Info("A concurrent copy of the same source version created version %d of %s first (%s): deleting version %d and using version %d.", tw.version, s.opts.Target.Full, tw.status, ours.number, tw.version)
	err = s.tgt.DeleteVersion(ctx, s.opts.Target, ours.number)
	if err != nil && !registry.NotFound(err) {
		return ours, false, fmt.Errorf("deleting version %d of %s, a duplicate of version %d: %w", ours.number, s.opts.Target.Full, tw.version, err)
	}
	a.ucOwned = 0
	if err := s.adopt(ctx, a, tw); err != nil {
		return ours, false, err
	}
	if tw.status == string(catalog.ModelVersionInfoStatusReady) {
		a.digest = tagOf(tw.run, registry.TagDigest)
		return ours, true, nil
	}
	return ucTarget{number: tw.version, location: tw.location}, false, nil
}

// adopt makes a twin the attempt's version: the copy's own run (unless the
// twin was made from it, when both copies resumed the same run) is marked
// superseded and the twin's run takes its place.
func (s *session) adopt(ctx context.Context, a *attempt, tw *twin) error {
	a.version, a.adopted = tw.version, true
	if tw.runID == a.run.RunId {
		return nil
	}
	s.supersede(ctx, a.run.RunId, tw.version)
	info := (*ml.RunInfo)(nil)
	if tw.run != nil {
		info = tw.run.Info
	}
	if info == nil {
		got, err := s.tgt.exps.GetRun(ctx, ml.GetRunRequest{RunId: tw.runID})
		if err != nil {
			return fmt.Errorf("reading run %s of version %d of %s: %w", tw.runID, tw.version, s.opts.Target.Full, err)
		}
		info = got.Run.Info
	}
	a.run, a.joined = info, true
	return nil
}

// supersede marks the copy's own run FAILED, naming the version that took
// its place; a later copy never resumes it.
func (s *session) supersede(ctx context.Context, runID string, winner int) {
	err := s.tgt.exps.LogBatch(ctx, ml.LogBatch{RunId: runID, Tags: []ml.RunTag{
		{Key: registry.TagCopyStatus, Value: statusSuperseded}, {Key: registry.TagSupersededBy, Value: strconv.Itoa(winner)},
	}})
	if err == nil {
		_, err = s.tgt.exps.UpdateRun(ctx, ml.UpdateRun{RunId: runID, Status: ml.UpdateRunStatusFailed, EndTime: time.Now().UnixMilli()})
	}
	if err != nil {
		s.log.Warning("Could not mark run %s as superseded by version %d: %v", runID, winner, err)
		return
	}
	s.log.Info("Marked run %s FAILED: superseded by version %d.", runID, winner)
}

// finishedByOther reports whether the joined Unity Catalog version was
// finalized by the copy that created it while this copy was writing (this
// copy's writes are then refused); the digest is read from its run.
func (s *session) finishedByOther(ctx context.Context, a *attempt) bool {
	mv, err := s.tgt.ucGet(ctx, s.opts.Target, a.version)
	if err != nil || mv.Status != catalog.ModelVersionInfoStatusReady {
		return false
	}
	got, err := s.tgt.exps.GetRun(ctx, ml.GetRunRequest{RunId: a.run.RunId})
	if err != nil || tagOf(got.Run, registry.TagDigest) == "" {
		return false
	}
	a.digest, a.manifest = tagOf(got.Run, registry.TagDigest), artifacts.Manifest{}
	s.log.Info("Version %d of %s was finalized by the concurrent copy that created it.", a.version, s.opts.Target.Full)
	return true
}
