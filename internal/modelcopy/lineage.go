package modelcopy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/registry"
)

// Lineage: the tags that tie a target run and version to the source version
// and the pipeline run, and what earlier copies of the same source left.

// lineage is the tags that tie the target (run and version) to its source
// and to this pipeline run (registry.Lineage, the one builder; empty values
// left out).
func (s *session) lineage(sv *sourceVersion) []agent.KeyValue {
	runURL := ""
	if sv.run != nil && sv.run.Info != nil {
		runURL = s.src.RunURL(sv.run.Info.ExperimentId, sv.runID)
	}
	return registry.LineageOf(s.opts.Pipeline).Tags([]agent.KeyValue{
		{Key: registry.TagSourceWorkspace, Value: s.src.Host},
		{Key: registry.TagSourceWorkspaceID, Value: workspaceID(s.src.Host, sv.run)},
		{Key: registry.TagSourceModel, Value: sv.name.Full},
		{Key: registry.TagSourceVersion, Value: strconv.Itoa(sv.number)},
		{Key: registry.TagSourceRunID, Value: sv.runID},
		{Key: registry.TagSourceRunURL, Value: runURL},
		{Key: registry.TagAction, Value: "copy"},
	})
}

// sameSource reports whether tags name the same source version.
func (s *session) sameSource(sv *sourceVersion, tags map[string]string) bool {
	return tags[registry.TagSourceWorkspace] == s.src.Host && tags[registry.TagSourceModel] == sv.name.Full && tags[registry.TagSourceVersion] == strconv.Itoa(sv.number)
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
		all, err := s.tgt.UCVersions.ListAll(ctx, catalog.ListModelVersionsRequest{FullName: s.opts.Target.Full})
		if err != nil && !registry.NotFound(err) {
			return nil, fmt.Errorf("listing the versions of %s in the target: %w", s.opts.Target.Full, err)
		}
		for _, mv := range all {
			if r, ok := runs[mv.RunId]; ok {
				out = append(out, candidate{version: mv.Version, status: string(mv.Status), digest: tagOf(r, registry.TagDigest), runID: mv.RunId, run: r})
			}
		}
	} else {
		all, err := s.tgt.Models.SearchModelVersionsAll(ctx, ml.SearchModelVersionsRequest{Filter: "name=" + registry.Quote(s.opts.Target.Full)})
		if err != nil && !registry.NotFound(err) {
			return nil, fmt.Errorf("listing the versions of %s in the target: %w", s.opts.Target.Full, err)
		}
		for _, mv := range all {
			tags := map[string]string{}
			for _, t := range mv.Tags {
				tags[t.Key] = t.Value
			}
			if mv.Name == s.opts.Target.Full && s.sameSource(sv, tags) {
				out = append(out, candidate{version: atoi(mv.Version), status: string(mv.Status), digest: tags[registry.TagDigest], runID: mv.RunId, run: runs[mv.RunId]})
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
	expID, err := s.experiment(ctx)
	if err != nil {
		return nil, err
	}
	if expID == "" {
		return map[string]*ml.Run{}, nil
	}
	filter := fmt.Sprintf("tags.`%s` = %s AND tags.`%s` = %s AND tags.`%s` = %s",
		registry.TagSourceWorkspace, registry.Quote(s.src.Host), registry.TagSourceModel, registry.Quote(sv.name.Full), registry.TagSourceVersion, registry.Quote(strconv.Itoa(sv.number)))
	found, err := s.tgt.exps.SearchRunsAll(ctx, ml.SearchRuns{ExperimentIds: []string{expID}, Filter: filter})
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
				var failed *registry.RegistrationError
				if errors.As(err, &failed) {
					s.log.Info("Version %d, registered by an earlier attempt, failed registration (%s): copying again.", c.version, failed.Message)
					continue
				}
				return out, false, err
			}
		}
		out.Reused, out.TargetVersion, out.TargetRunID = true, c.version, c.runID
		if c.run != nil && c.run.Info != nil {
			out.TargetExperimentID = c.run.Info.ExperimentId
			out.TargetRunURL = s.tgt.RunURL(out.TargetExperimentID, c.runID)
		}
		out.TargetURL = s.tgt.VersionURL(s.opts.Target, c.version)
		out.Lineage = append(s.lineage(sv), agent.KeyValue{Key: registry.TagDigest, Value: out.Digest})
		s.log.Info("Reusing version %d of %s: same source version, same content (%s). Nothing copied.", c.version, s.opts.Target.Full, out.Digest)
		return out, true, nil
	}
	s.log.Info("The source's content changed since version %d was copied (digest %s, was %s): copying again.", usable[0].version, out.Digest, usable[0].digest)
	return out, false, nil
}
