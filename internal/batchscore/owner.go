package batchscore

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/brickferry/brickferry/internal/agent"
)

// The job's tags: which task keeps it, and which pipeline owns it. Job
// tags are forwarded to the job's clusters as cluster tags and to their
// Azure VMs (databricks-sdk-go service/jobs model.go JobSettings.Tags;
// https://learn.microsoft.com/azure/databricks/admin/account-settings/usage-detail-tags),
// whose tag names may not hold '/', so the keys use dashes.
const (
	tagTask    = "brickferry-task"
	tagOwner   = "brickferry-pipeline"    // the owner pipeline, for people
	tagOwnerID = "brickferry-pipeline-id" // the owner pipeline, compared by the task
	taskName   = "BatchScore"
)

// Owner is the pipeline a job belongs to: the pipeline that created it, or
// took it over with allowJobTakeover.
type Owner struct {
	ID   string // <project id>/<definition id>, or <project id>/release/<definition id>; empty outside a pipeline
	Name string // <project>/<pipeline name>
}

// OwnerOf is the pipeline of this run, from the agent's predefined
// variables: System.TeamProjectId and System.DefinitionId with
// Build.DefinitionName for a YAML or classic build pipeline, Release.DefinitionId
// and Release.DefinitionName for a classic release
// (https://learn.microsoft.com/azure/devops/pipelines/build/variables,
// https://learn.microsoft.com/azure/devops/pipelines/release/variables).
// Ids, not names, decide: a pipeline can be renamed.
func OwnerOf(sys agent.System) Owner {
	switch {
	case sys.ProjectID == "":
		return Owner{}
	case sys.ReleaseDefinitionID != "":
		return Owner{ID: sys.ProjectID + "/release/" + sys.ReleaseDefinitionID, Name: sys.Project + "/" + sys.ReleaseDefinitionName}
	case sys.DefinitionID != "":
		return Owner{ID: sys.ProjectID + "/" + sys.DefinitionID, Name: sys.Project + "/" + sys.DefinitionName}
	}
	return Owner{}
}

func (o Owner) String() string {
	switch {
	case o.ID == "":
		return "no pipeline (a run outside a pipeline)"
	case o.Name == "" || strings.HasSuffix(o.Name, "/"):
		return "pipeline " + o.ID
	}
	return fmt.Sprintf("pipeline %s (%s)", o.Name, o.ID)
}

// ownerOfJob reads a job's owner from its tags.
func ownerOfJob(s *jobs.JobSettings) Owner {
	if s == nil {
		return Owner{}
	}
	return Owner{ID: s.Tags[tagOwnerID], Name: s.Tags[tagOwner]}
}

// jobChange is what writing the new settings would do to an existing job.
type jobChange struct {
	diff            []string // "path: old → new" lines
	removesSchedule bool
	owner           Owner // the job's owner, as its tags say
	foreign         bool  // the job is not Brickferry's BatchScore job at all
	otherOwner      bool  // the job belongs to another pipeline
}

// compareJob compares the job's current settings with the new ones.
func compareJob(old *jobs.JobSettings, new jobs.JobSettings, me Owner) jobChange {
	c := jobChange{owner: ownerOfJob(old)}
	if old == nil {
		old = &jobs.JobSettings{}
	}
	c.foreign = old.Tags[tagTask] != taskName
	c.otherOwner = c.owner.ID != "" && c.owner.ID != me.ID
	c.removesSchedule = (old.Schedule != nil || old.Trigger != nil || old.Continuous != nil) &&
		new.Schedule == nil && new.Trigger == nil && new.Continuous == nil
	c.diff = diffSettings(flatten(*old), flatten(new))
	return c
}

// refusal says why the change needs allowJobTakeover, or "" when it does not.
func (c jobChange) refusal(me Owner) string {
	var why []string
	switch {
	case c.otherOwner:
		why = append(why, fmt.Sprintf("it belongs to %s, and this run is %s", c.owner, me))
	case c.foreign:
		why = append(why, "it was not made by the BatchScore task (it has no "+tagTask+": "+taskName+" tag): someone made it by hand or with another tool")
	}
	if c.removesSchedule {
		why = append(why, "the new settings have no schedule, so its schedule (or trigger) would be removed")
	}
	return strings.Join(why, "; and ")
}

// managed are the settings the task writes, compared key by key; the rest
// of what jobs/get answers (server defaults such as format or run_if, the
// description with the last run's link) is left out of the diff.
var managed = []string{"name", "tasks", "job_clusters", "parameters", "schedule", "trigger", "continuous", "tags", "timeout_seconds", "max_concurrent_runs", "queue"}

// removable are the paths a removal is shown under even though the new
// settings do not name them: a schedule or trigger dropped, a tag, a
// parameter or a task that goes away.
var removable = []string{"schedule", "trigger", "continuous", "tags.", "parameters.", "tasks."}

// flatten writes job settings as path → JSON value, lists keyed by what
// identifies their items (tasks by task_key, job clusters by
// job_cluster_key, parameters by name), so that a diff reads like the
// settings a person sees.
func flatten(s jobs.JobSettings) map[string]string {
	raw, err := json.Marshal(s)
	if err != nil {
		return map[string]string{}
	}
	var top map[string]any
	if json.Unmarshal(raw, &top) != nil {
		return map[string]string{}
	}
	out := map[string]string{}
	for _, k := range managed {
		v, ok := top[k]
		if !ok {
			continue
		}
		switch k {
		case "tasks":
			v = byKey(v, "task_key", withoutKey("task_key"))
		case "job_clusters":
			v = byKey(v, "job_cluster_key", withoutKey("job_cluster_key"))
		case "parameters":
			v = byKey(v, "name", func(obj map[string]any) any { return obj["default"] })
		}
		flattenInto(out, k, v)
	}
	return out
}

// byKey turns a list of objects into a map by their string field key, each
// item becoming value(item).
func byKey(v any, key string, value func(map[string]any) any) any {
	list, ok := v.([]any)
	if !ok {
		return v
	}
	m := map[string]any{}
	for _, item := range list {
		if obj, ok := item.(map[string]any); ok {
			if name, ok := obj[key].(string); ok {
				m[name] = value(obj)
			}
		}
	}
	return m
}

// withoutKey is the item without its key field, which the map key holds.
func withoutKey(key string) func(map[string]any) any {
	return func(obj map[string]any) any {
		delete(obj, key)
		return obj
	}
}

func flattenInto(out map[string]string, path string, v any) {
	if m, ok := v.(map[string]any); ok && len(m) > 0 {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			flattenInto(out, path+"."+k, m[k])
		}
		return
	}
	b, _ := json.Marshal(v)
	out[path] = string(b)
}

// diffSettings lists what changes from old to new: every value the new
// settings write that differs, and the removals shown under removable.
func diffSettings(old, new map[string]string) []string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(new)) {
		switch was, ok := old[p]; {
		case !ok:
			out = append(out, fmt.Sprintf("+ %s: %s", p, new[p]))
		case was != new[p]:
			out = append(out, fmt.Sprintf("~ %s: %s → %s", p, was, new[p]))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(old)) {
		if _, kept := new[p]; kept || !shownRemoved(p, new) {
			continue
		}
		out = append(out, fmt.Sprintf("- %s: %s", p, old[p]))
	}
	return out
}

// shownRemoved reports whether a path of the old settings that the new ones
// lack is worth a line: a schedule, trigger, tag or parameter, or a whole
// task the new settings do not have (not a server default inside a task
// that stays).
func shownRemoved(p string, new map[string]string) bool {
	if rest, ok := strings.CutPrefix(p, "tasks."); ok {
		key, _, _ := strings.Cut(rest, ".")
		for q := range new {
			if strings.HasPrefix(q, "tasks."+key+".") {
				return false
			}
		}
		return true
	}
	for _, r := range removable {
		if p == r || strings.HasPrefix(p, r) || strings.HasPrefix(p, r+".") {
			return true
		}
	}
	return false
}
