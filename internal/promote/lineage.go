package promote

import (
	"context"

	"github.com/brickferry/brickferry/internal/modeluri"
	"github.com/brickferry/brickferry/internal/registry"
)

// tagVersion sets the lineage tags (registry.Lineage, the one builder) for
// action (register, ...) on a version: the pipeline run's, the version's
// source run, the action; those already set are skipped.
func (s *step) tagVersion(ctx context.Context, name modeluri.Name, v registry.Version, action string) error {
	return s.ws.TagVersion(ctx, name, v, s.lineage.ActionTags(v.RunID, action))
}
