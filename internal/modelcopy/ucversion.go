package modelcopy

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/databricks/databricks-sdk-go/service/catalog"

	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/registry"
)

// Unity Catalog targets: the version is created first (PENDING_REGISTRATION,
// with its own storage location), filled, then finalized.

// copyToUC creates (or, for a resumed run, reuses) a Unity Catalog version,
// settles a race with a concurrent copy (twins.go), uploads the files to the
// version's storage location and finalizes it.
func (s *session) copyToUC(ctx context.Context, sv *sourceVersion, existing []candidate, a *attempt) error {
	// MLflow 3 logs the model first and registers the logged model, whose
	// files Unity Catalog then gets a copy of (loggedmodel.go).
	lm, err := s.targetLoggedModel(ctx, sv, a.run)
	if err != nil {
		return err
	}
	if a.model = lm; lm != nil {
		if _, _, err := s.copyToLoggedModel(ctx, sv, a.run, lm); err != nil {
			return err
		}
	}
	mv, err := s.ucTargetVersion(ctx, sv, existing, a)
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
func (s *session) ucTargetVersion(ctx context.Context, sv *sourceVersion, existing []candidate, a *attempt) (ucTarget, error) {
	name, run := s.opts.Target, a.run
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
	source, modelID := s.versionSource(sv, run, a)
	made, err := s.tgt.CreateUCVersion(ctx, registry.UCCreateRequest{
		Name: name.Full, Source: source, RunID: run.RunId, Tags: registry.ToUCTags(s.lineage(sv)), ModelID: modelID,
		Description: fmt.Sprintf("Copied from %s version %d in %s.", sv.name.Full, sv.number, s.src.Host),
	}, func(ctx context.Context) (*registry.Version, error) {
		all, err := s.tgt.UCVersions.ListAll(ctx, catalog.ListModelVersionsRequest{FullName: name.Full})
		if err != nil {
			return nil, err
		}
		for _, v := range all {
			if v.RunId == run.RunId && v.Status == catalog.ModelVersionInfoStatusPendingRegistration {
				found := registry.FromUC(v)
				found.Location = v.StorageLocation
				return &found, nil
			}
		}
		return nil, nil
	}, s.log)
	if err != nil {
		return ucTarget{}, fmt.Errorf("creating a version of %s: %w", name.Full, err)
	}
	mv := ucTarget{number: made.Number, location: made.Location}
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
	_, err := converge.Converge(ctx, ready, func(ctx context.Context) (struct{}, error) {
		var fin registry.UCVersionResponse
		return struct{}{}, s.tgt.Client.Do(ctx, http.MethodPost, registry.UCRoute+"finalize", nil, nil,
			registry.UCVersionRequest{Name: name.Full, Version: strconv.Itoa(n)}, &fin)
	})
	if err == nil {
		return nil
	}
	if _, ok, _ := ready(ctx); ok {
		return nil
	}
	return fmt.Errorf("finalizing version %d of %s: %w", n, name.Full, err)
}
