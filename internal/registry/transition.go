package registry

import (
	"context"
	"fmt"
	"strconv"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/modeluri"
)

// Logger is where a transition writes what it did (agent.Log).
type Logger interface {
	Info(format string, args ...any)
	Warning(format string, args ...any)
}

// TransitionRequest moves a version to a stage (workspace registry) or sets
// an alias on it (Unity Catalog): the transition command's rules, which the
// copy command follows too.
type TransitionRequest struct {
	Model   modeluri.Name
	Version modeluri.VersionRef
	Stage   string // canonical spelling (workspace registry), or ""
	Alias   string // Unity Catalog, or ""
	// ArchiveExisting archives the other versions in Staging or Production.
	ArchiveExisting bool
	// RemoveAlias is removed from the version once it holds Alias.
	RemoveAlias string
	// Comment goes with a stage transition (aliases carry none: it is logged).
	Comment string
	// Lineage is the pipeline run the version gets tagged with.
	Lineage Lineage
	Log     Logger
}

// TransitionResult is what a transition did.
type TransitionResult struct {
	Version  int    // the version moved
	Previous int    // the other version that held the stage or alias (0: none)
	Note     string // one line for the summary
}

// Transition resolves the version (which must be READY) and moves it. The
// result is nil when nothing was changed; it is returned with the error of a
// later step (tagging, marking archived versions) too.
func (r *Registry) Transition(ctx context.Context, req TransitionRequest) (*TransitionResult, error) {
	v, err := r.Resolve(ctx, req.Model, req.Version)
	if err != nil {
		return nil, err
	}
	if v.Status != "" && v.Status != "READY" {
		return nil, fmt.Errorf("version %d of %s is %s, not READY: only a READY version can be promoted", v.Number, req.Model.Full, v.Status)
	}
	if req.Model.UC() {
		return r.setAlias(ctx, req, v)
	}
	return r.setStage(ctx, req, v)
}

func (r *Registry) setStage(ctx context.Context, req TransitionRequest, v Version) (*TransitionResult, error) {
	name := req.Model
	all, err := r.Versions(ctx, name)
	if err != nil {
		return nil, err
	}
	var holders []Version // other versions in the target stage, newest first
	for _, other := range all {
		if other.Stage == req.Stage && other.Number != v.Number {
			holders = append(holders, other)
		}
	}
	res := &TransitionResult{Version: v.Number}
	if len(holders) > 0 {
		res.Previous = holders[0].Number
	}
	tags := req.Lineage.ActionTags(v.RunID, "transition to "+req.Stage)
	archive := req.ArchiveExisting && (req.Stage == "Staging" || req.Stage == "Production")
	if v.Stage == req.Stage && (!archive || len(holders) == 0) {
		req.Log.Info("Version %d of %s is already in %s: nothing to change.", v.Number, name.Full, req.Stage)
		res.Note = fmt.Sprintf("Version %d was already in %s.", v.Number, req.Stage)
		if err := r.TagVersion(ctx, name, v, tags); err != nil {
			return nil, err
		}
		if archive {
			// A step killed after its transition may not have marked what
			// it archived: this rerun does.
			return res, r.markArchived(ctx, req, all, nil)
		}
		return res, nil
	}
	from := v.Stage
	_, err = r.Models.TransitionStage(ctx, ml.TransitionModelVersionStageDatabricks{
		Name: name.Full, Version: strconv.Itoa(v.Number), Stage: req.Stage,
		ArchiveExistingVersions: archive, Comment: req.Comment,
	})
	if err != nil {
		return nil, fmt.Errorf("moving version %d of %s to %s: %w", v.Number, name.Full, req.Stage, err)
	}
	req.Log.Info("Moved version %d of %s from %s to %s: %s", v.Number, name.Full, from, req.Stage, r.VersionURL(name, v.Number))
	res.Note = fmt.Sprintf("Moved version %d from %s to %s.", v.Number, from, req.Stage)
	v.Stage = req.Stage
	if err := r.TagVersion(ctx, name, v, tags); err != nil {
		return nil, err
	}
	if !archive {
		for _, h := range holders {
			req.Log.Info("Version %d stays in %s as well (archiveExisting is false).", h.Number, req.Stage)
		}
		return res, nil
	}
	// Read the versions again, after this version's tags: what the
	// transition archived (the holders listed before it may have changed
	// if another pipeline run moved a version at the same time), and
	// whether this version still holds the stage.
	after, err := r.Versions(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := r.markArchived(ctx, req, after, holders); err != nil {
		return nil, err
	}
	if len(holders) > 0 {
		res.Note += fmt.Sprintf(" Archived %s.", versionList(holders))
	}
	checkHeld(req, after, v.Number)
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
func (r *Registry) markArchived(ctx context.Context, req TransitionRequest, versions []Version, holders []Version) error {
	name := req.Model
	held := map[int]bool{}
	for _, h := range holders {
		held[h.Number] = true
	}
	for _, v := range versions {
		action := v.Tags[TagAction]
		if v.Stage != "Archived" || action == "archived" || (!held[v.Number] && action != "transition to "+req.Stage) {
			continue
		}
		if err := r.setTag(ctx, name, v.Number, TagAction, "archived"); err != nil {
			return fmt.Errorf("tagging archived version %d of %s: %w", v.Number, name.Full, err)
		}
		req.Log.Info("Version %d, which was in %s, is Archived: tagged brickferry_action=archived.", v.Number, req.Stage)
	}
	return nil
}

// checkHeld warns when the version the step moved no longer holds the
// stage: another pipeline run moved another version there at the same
// time, archiving this one.
func checkHeld(req TransitionRequest, after []Version, n int) {
	var holder []Version
	for _, v := range after {
		if v.Stage == req.Stage {
			holder = append(holder, v)
		}
	}
	for _, v := range holder {
		if v.Number == n {
			return
		}
	}
	if len(holder) == 0 {
		req.Log.Warning("version %d of %s was moved to %s, then out of it again by someone else: no version is in %s now", n, req.Model.Full, req.Stage, req.Stage)
		return
	}
	req.Log.Warning("version %d of %s was moved to %s, then archived: another pipeline run moved %s there at the same time", n, req.Model.Full, req.Stage, versionList(holder))
}

// setAlias tags the version first and moves the alias after: the tags are
// what a workspace may refuse (a tag key or value it does not take, a
// principal without the privilege to tag), and
// a refused tag must leave the alias where it was rather than move it half
// done. A removeAlias that fails after the move is finished by a rerun,
// which finds the alias in place.
func (r *Registry) setAlias(ctx context.Context, req TransitionRequest, v Version) (*TransitionResult, error) {
	name := req.Model
	aliases, err := r.Aliases(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := r.TagVersion(ctx, name, v, req.Lineage.ActionTags(v.RunID, "alias "+req.Alias)); err != nil {
		return nil, fmt.Errorf("%w; @%s was not moved", err, req.Alias)
	}
	res := &TransitionResult{Version: v.Number}
	holder, held := aliases[req.Alias]
	if held && holder != v.Number {
		res.Previous = holder
	}
	if held && holder == v.Number {
		req.Log.Info("%s@%s is already version %d: nothing to change.", name.Full, req.Alias, v.Number)
		res.Note = fmt.Sprintf("@%s was already on version %d.", req.Alias, v.Number)
	} else {
		_, err := r.UCModels.SetAlias(ctx, catalog.SetRegisteredModelAliasRequest{FullName: name.Full, Alias: req.Alias, VersionNum: v.Number})
		if err != nil {
			return nil, fmt.Errorf("setting alias @%s of %s to version %d: %w", req.Alias, name.Full, v.Number, err)
		}
		if held {
			req.Log.Info("Moved %s@%s from version %d to version %d: %s", name.Full, req.Alias, holder, v.Number, r.VersionURL(name, v.Number))
			res.Note = fmt.Sprintf("Moved @%s from version %d to version %d.", req.Alias, holder, v.Number)
		} else {
			req.Log.Info("Set %s@%s on version %d: %s", name.Full, req.Alias, v.Number, r.VersionURL(name, v.Number))
			res.Note = fmt.Sprintf("Set @%s on version %d.", req.Alias, v.Number)
		}
	}
	if req.Comment != "" {
		req.Log.Info("Comment: %s (Unity Catalog aliases carry no comment; it is recorded in this log only)", req.Comment)
	}
	if req.RemoveAlias != "" {
		if n, ok := aliases[req.RemoveAlias]; ok && n == v.Number {
			if err := r.UCModels.DeleteAlias(ctx, catalog.DeleteAliasRequest{FullName: name.Full, Alias: req.RemoveAlias}); err != nil {
				return res, fmt.Errorf("removing alias @%s from version %d of %s: %w", req.RemoveAlias, v.Number, name.Full, err)
			}
			req.Log.Info("Removed @%s from version %d.", req.RemoveAlias, v.Number)
			res.Note += fmt.Sprintf(" Removed @%s from it.", req.RemoveAlias)
		} else {
			req.Log.Info("Version %d does not hold @%s: nothing to remove.", v.Number, req.RemoveAlias)
		}
	}
	return res, nil
}

// versionList names versions for a message: "version 3, version 2".
func versionList(vs []Version) string {
	out := ""
	for i, v := range vs {
		if i > 0 {
			out += ", "
		}
		out += "version " + strconv.Itoa(v.Number)
	}
	return out
}
