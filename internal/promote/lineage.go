package promote

import (
	"context"
	"fmt"

	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/modeluri"
)

// lineagePrefix starts the tags the task sets on every version it changes.
const lineagePrefix = "brickferry_"

// lineage is what ties a model version to the pipeline run that acted on it.
type lineage struct {
	buildID, runURL, commit, pipeline string
}

func lineageFrom(sys agent.System) lineage {
	build := sys.BuildID
	if sys.ReleaseID != "" && build == "" {
		build = "release-" + sys.ReleaseID
	}
	return lineage{buildID: build, runURL: sys.RunURL(), commit: sys.SourceVersion, pipeline: sys.DefinitionName}
}

// tags are the lineage tags for a version whose source run is runID, after
// action (register, transition to Production, archived, ...). Empty values
// (a step run outside a pipeline) are left out.
func (l lineage) tags(runID, action string) []agent.KeyValue {
	var out []agent.KeyValue
	add := func(k, v string) {
		if v != "" {
			out = append(out, agent.KeyValue{Key: lineagePrefix + k, Value: v})
		}
	}
	add("build_id", l.buildID)
	add("run_url", l.runURL)
	add("commit", l.commit)
	add("pipeline", l.pipeline)
	add("model_run_id", runID)
	add("action", action)
	return out
}

// tagVersion sets the lineage tags on a version, skipping those that
// already have the value (a re-run writes nothing). Unity Catalog versions
// are tagged through MLflow's UC routes (uc.go).
func (s *step) tagVersion(ctx context.Context, name modeluri.Name, v version, action string) error {
	if name.UC() {
		have, err := s.ws.ucTags(ctx, name.Full, v.Number)
		if err != nil {
			return err
		}
		for _, t := range s.lineage.tags(v.RunID, action) {
			if cur, ok := have[t.Key]; ok && cur == t.Value {
				continue
			}
			if err := s.ws.setUCTag(ctx, name.Full, v.Number, t.Key, t.Value); err != nil {
				return fmt.Errorf("tagging version %d of %s with %s: %w", v.Number, name.Full, t.Key, err)
			}
		}
		return nil
	}
	for _, t := range s.lineage.tags(v.RunID, action) {
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
