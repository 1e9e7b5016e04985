package promote

import (
	"context"

	"github.com/brickferry/brickferry/internal/registry"
)

// transition moves a version to a stage (workspace registry) or sets an
// alias on it (Unity Catalog), with registry.Transition.
func (s *step) transition(ctx context.Context) (*result, error) {
	o := s.opts
	r, err := s.ws.Transition(ctx, registry.TransitionRequest{
		Model: o.Model, Version: o.Version, Stage: o.Stage, Alias: o.Alias,
		ArchiveExisting: o.ArchiveExisting, RemoveAlias: o.RemoveAlias, Comment: o.Comment,
		Lineage: s.lineage, Log: s.log,
	})
	if r == nil {
		return nil, err
	}
	return &result{version: r.Version, stage: o.Stage, alias: o.Alias, previous: r.Previous, note: r.Note}, err
}
