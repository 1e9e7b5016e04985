package registry

import "github.com/brickferry/brickferry/internal/agent"

// Lineage tag keys (brickferry_*), on the versions and runs the tasks make or
// change. The pipeline run's keys are on every one; register and transition
// add the model's run and the action; copy adds the source's keys.
const (
	TagPrefix     = "brickferry_"
	TagBuildID    = TagPrefix + "build_id"
	TagRunURL     = TagPrefix + "run_url"
	TagCommit     = TagPrefix + "commit"
	TagPipeline   = TagPrefix + "pipeline"
	TagModelRunID = TagPrefix + "model_run_id"
	TagAction     = TagPrefix + "action" // register, transition to <stage>, alias <name>, archived, copy

	// copy: the first three identify the source version.
	TagSourceWorkspace   = TagPrefix + "source_workspace"
	TagSourceModel       = TagPrefix + "source_model"
	TagSourceVersion     = TagPrefix + "source_version"
	TagSourceWorkspaceID = TagPrefix + "source_workspace_id"
	TagSourceRunID       = TagPrefix + "source_run_id"
	TagSourceRunURL      = TagPrefix + "source_run_url"
	TagDigest            = TagPrefix + "content_digest"
	TagCopyStatus        = TagPrefix + "copy_status" // run only: copying, complete, failed, superseded
	TagSupersededBy      = TagPrefix + "superseded_by"
)

// Lineage is the pipeline run that acts on a version: what ties the version
// to it.
type Lineage struct {
	BuildID, RunURL, Commit, Pipeline string
}

// LineageOf reads the pipeline run from the agent's variables; a classic
// release has no build id and is named release-<id>.
func LineageOf(sys agent.System) Lineage {
	build := sys.BuildID
	if build == "" && sys.ReleaseID != "" {
		build = "release-" + sys.ReleaseID
	}
	return Lineage{BuildID: build, RunURL: sys.RunURL(), Commit: sys.SourceVersion, Pipeline: sys.DefinitionName}
}

// Tags is the one builder of lineage tags: first, then the pipeline run's,
// then last. Empty values (a step run outside a pipeline) are left out.
func (l Lineage) Tags(first []agent.KeyValue, last ...agent.KeyValue) []agent.KeyValue {
	var out []agent.KeyValue
	add := func(kvs ...agent.KeyValue) {
		for _, kv := range kvs {
			if kv.Value != "" {
				out = append(out, kv)
			}
		}
	}
	add(first...)
	add(agent.KeyValue{Key: TagBuildID, Value: l.BuildID}, agent.KeyValue{Key: TagRunURL, Value: l.RunURL},
		agent.KeyValue{Key: TagCommit, Value: l.Commit}, agent.KeyValue{Key: TagPipeline, Value: l.Pipeline})
	add(last...)
	return out
}
