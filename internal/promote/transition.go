package promote

import (
	"context"
	"fmt"
	"strconv"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/registry"
)

// transition moves a version to a stage (workspace registry) or sets an
// alias on it (Unity Catalog).
func (s *step) transition(ctx context.Context) (*result, error) {
	v, err := s.ws.Resolve(ctx, s.opts.Model, s.opts.Version)
	if err != nil {
		return nil, err
	}
	if v.Status != "" && v.Status != "READY" {
		return nil, fmt.Errorf("version %d of %s is %s, not READY: only a READY version can be promoted", v.Number, s.opts.Model.Full, v.Status)
	}
	if s.opts.Model.UC() {
		return s.setAlias(ctx, v)
	}
	return s.setStage(ctx, v)
}

func (s *step) setStage(ctx context.Context, v registry.Version) (*result, error) {
	o := s.opts
	name := o.Model
	all, err := s.ws.Versions(ctx, name)
	if err != nil {
		return nil, err
	}
	var holders []registry.Version // other versions in the target stage, newest first
	for _, other := range all {
		if other.Stage == o.Stage && other.Number != v.Number {
			holders = append(holders, other)
		}
	}
	res := &result{version: v.Number, stage: o.Stage}
	if len(holders) > 0 {
		res.previous = holders[0].Number
	}
	archive := o.ArchiveExisting && (o.Stage == "Staging" || o.Stage == "Production")
	if v.Stage == o.Stage && (!archive || len(holders) == 0) {
		s.log.Info("Version %d of %s is already in %s: nothing to change.", v.Number, name.Full, o.Stage)
		res.note = fmt.Sprintf("Version %d was already in %s.", v.Number, o.Stage)
		if err := s.tagVersion(ctx, name, v, "transition to "+o.Stage); err != nil {
			return nil, err
		}
		if archive {
			// A step killed after its transition may not have marked what
			// it archived: this rerun does.
			return res, s.markArchived(ctx, all, nil)
		}
		return res, nil
	}
	from := v.Stage
	_, err = s.ws.registry.TransitionStage(ctx, ml.TransitionModelVersionStageDatabricks{
		Name: name.Full, Version: strconv.Itoa(v.Number), Stage: o.Stage,
		ArchiveExistingVersions: archive, Comment: o.Comment,
	})
	if err != nil {
		return nil, fmt.Errorf("moving version %d of %s to %s: %w", v.Number, name.Full, o.Stage, err)
	}
	s.log.Info("Moved version %d of %s from %s to %s: %s", v.Number, name.Full, from, o.Stage, s.ws.VersionURL(name, v.Number))
	res.note = fmt.Sprintf("Moved version %d from %s to %s.", v.Number, from, o.Stage)
	v.Stage = o.Stage
	if err := s.tagVersion(ctx, name, v, "transition to "+o.Stage); err != nil {
		return nil, err
	}
	if !archive {
		for _, h := range holders {
			s.log.Info("Version %d stays in %s as well (archiveExisting is false).", h.Number, o.Stage)
		}
		return res, nil
	}
	// Read the versions again, after this version's tags: what the
	// transition archived (the holders listed before it may have changed
	// if another pipeline run moved a version at the same time), and
	// whether this version still holds the stage.
	after, err := s.ws.Versions(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := s.markArchived(ctx, after, holders); err != nil {
		return nil, err
	}
	if len(holders) > 0 {
		res.note += fmt.Sprintf(" Archived %s.", versionList(holders))
	}
	s.checkHeld(after, v.Number)
	return res, nil
}

// markArchived sets brickferry_action=archived on the versions that are
// Archived and were in the target stage: the holders the step saw, and any
// whose lineage says they were moved to the stage (a concurrent pipeline
// run's version that this step's transition archived, or a holder a killed
// step archived without marking it). Only this one tag is written, with the
// same value whoever writes it, so two pipeline runs archiving the same
// version at once cannot leave its tags half one run's and half the
// other's; the version's other lineage tags still name the pipeline run
// that moved it to the stage.
func (s *step) markArchived(ctx context.Context, versions []registry.Version, holders []registry.Version) error {
	name := s.opts.Model
	held := map[int]bool{}
	for _, h := range holders {
		held[h.Number] = true
	}
	for _, v := range versions {
		action := v.Tags[registry.TagAction]
		if v.Stage != "Archived" || action == "archived" || (!held[v.Number] && action != "transition to "+s.opts.Stage) {
			continue
		}
		err := s.ws.registry.SetModelVersionTag(ctx, ml.SetModelVersionTagRequest{Name: name.Full, Version: strconv.Itoa(v.Number), Key: registry.TagAction, Value: "archived"})
		if err != nil {
			return fmt.Errorf("tagging archived version %d of %s: %w", v.Number, name.Full, err)
		}
		s.log.Info("Version %d, which was in %s, is Archived: tagged brickferry_action=archived.", v.Number, s.opts.Stage)
	}
	return nil
}

// checkHeld warns when the version the step moved no longer holds the
// stage: another pipeline run moved another version there at the same
// time, archiving this one.
func (s *step) checkHeld(after []registry.Version, n int) {
	var holder []registry.Version
	for _, v := range after {
		if v.Stage == s.opts.Stage {
			holder = append(holder, v)
		}
	}
	for _, v := range holder {
		if v.Number == n {
			return
		}
	}
	if len(holder) == 0 {
		s.log.Warning("version %d of %s was moved to %s, then out of it again by someone else: no version is in %s now", n, s.opts.Model.Full, s.opts.Stage, s.opts.Stage)
		return
	}
	s.log.Warning("version %d of %s was moved to %s, then archived: another pipeline run moved %s there at the same time", n, s.opts.Model.Full, s.opts.Stage, versionList(holder))
}

func (s *step) setAlias(ctx context.Context, v registry.Version) (*result, error) {
	o := s.opts
	name := o.Model
	aliases, err := s.ws.Aliases(ctx, name)
	if err != nil {
		return nil, err
	}
	res := &result{version: v.Number, alias: o.Alias}
	holder, held := aliases[o.Alias]
	if held && holder != v.Number {
		res.previous = holder
	}
	if held && holder == v.Number {
		s.log.Info("%s@%s is already version %d: nothing to change.", name.Full, o.Alias, v.Number)
		res.note = fmt.Sprintf("@%s was already on version %d.", o.Alias, v.Number)
	} else {
		_, err := s.ws.ucModels.SetAlias(ctx, catalog.SetRegisteredModelAliasRequest{FullName: name.Full, Alias: o.Alias, VersionNum: v.Number})
		if err != nil {
			return nil, fmt.Errorf("setting alias @%s of %s to version %d: %w", o.Alias, name.Full, v.Number, err)
		}
		if held {
			s.log.Info("Moved %s@%s from version %d to version %d: %s", name.Full, o.Alias, holder, v.Number, s.ws.VersionURL(name, v.Number))
			res.note = fmt.Sprintf("Moved @%s from version %d to version %d.", o.Alias, holder, v.Number)
		} else {
			s.log.Info("Set %s@%s on version %d: %s", name.Full, o.Alias, v.Number, s.ws.VersionURL(name, v.Number))
			res.note = fmt.Sprintf("Set @%s on version %d.", o.Alias, v.Number)
		}
	}
	if o.Comment != "" {
		s.log.Info("Comment: %s (Unity Catalog aliases carry no comment; it is recorded in this log only)", o.Comment)
	}
	if o.RemoveAlias != "" {
		if n, ok := aliases[o.RemoveAlias]; ok && n == v.Number {
			if err := s.ws.ucModels.DeleteAlias(ctx, catalog.DeleteAliasRequest{FullName: name.Full, Alias: o.RemoveAlias}); err != nil {
				return nil, fmt.Errorf("removing alias @%s from version %d of %s: %w", o.RemoveAlias, v.Number, name.Full, err)
			}
			s.log.Info("Removed @%s from version %d.", o.RemoveAlias, v.Number)
			res.note += fmt.Sprintf(" Removed @%s from it.", o.RemoveAlias)
		} else {
			s.log.Info("Version %d does not hold @%s: nothing to remove.", v.Number, o.RemoveAlias)
		}
	}
	return res, s.tagVersion(ctx, name, v, "alias "+o.Alias)
}

func versionList(vs []registry.Version) string {
	out := ""
	for i, v := range vs {
		if i > 0 {
			out += ", "
		}
		out += "version " + strconv.Itoa(v.Number)
	}
	return out
}
