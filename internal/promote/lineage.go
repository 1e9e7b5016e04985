package promote

import (
	"context"
	"fmt"

	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/modeluri"
	"github.com/brickferry/brickferry/internal/registry"
)

// lineageTags are the lineage tags (registry.Lineage, the one builder) for
// a version whose source run is runID, after action (register, transition
// to Production, archived, ...): the pipeline run's, the run, the action.
func (s *step) lineageTags(runID, action string) []agent.KeyValue {
	return s.lineage.Tags(nil, agent.KeyValue{Key: registry.TagModelRunID, Value: runID}, agent.KeyValue{Key: registry.TagAction, Value: action})
}

// tagVersion sets the lineage tags on a version, skipping those that
// already have the value (a re-run writes nothing). Unity Catalog versions
// are tagged through MLflow's UC routes (uc.go).
func (s *step) tagVersion(ctx context.Context, name modeluri.Name, v registry.Version, action string) error {
	if name.UC() {
		have, err := s.ws.ucTags(ctx, name.Full, v.Number)
		if err != nil {
			return err
		}
		for _, t := range s.lineageTags(v.RunID, action) {
			if cur, ok := have[t.Key]; ok && cur == t.Value {
				continue
			}
			if err := s.ws.setUCTag(ctx, name.Full, v.Number, t.Key, t.Value); err != nil {
				return fmt.Errorf("tagging version %d of %s with %s: %w", v.Number, name.Full, t.Key, err)
			}
		}
		return nil
	}
	for _, t := range s.lineageTags(v.RunID, action) {
		if cur, ok := v.Tags[t.Key]; ok && cur == t.Value {
			continue
		}
		err := s.ws.registry.SetModelVersionTag(ctx, ml.SetModelVersionTagRequest{Name: name.Full, Version: fmt.Sprint(v.Number), Key: t.Key, Value: t.Value})
		if err != nil {
			return fmt.Errorf("tagging version %d of %s with %s: %w", v.Number, name.Full, t.Key, err)
		}
	}
	return nil
}
