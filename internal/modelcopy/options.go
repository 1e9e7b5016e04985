package modelcopy

import (
	"strings"
	"time"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/modeluri"
)

// Options is one copy, read from MLflowPromote's inputs (command = copy) and
// validated before any remote call.
type Options struct {
	Source     modeluri.Name       // model in the source workspace (input modelName)
	Version    modeluri.VersionRef // which version (input modelVersion): 3, latest, Staging, @challenger
	Target     modeluri.Name       // model in the target workspace; the source's name when not given
	Experiment string              // target experiment path
	Stage      string              // optional stage to move the target version to afterwards
	Alias      string              // optional alias to set on it afterwards
	DryRun     bool
	Timeout    time.Duration // copy + registration + wait for READY
	Parallel   int           // files in parallel

	// Pipeline is the run this copy is part of (lineage tags); the caller
	// fills it from agent.Env.System.
	Pipeline agent.System
}

// DefaultExperiment is where the copied run goes when no experiment is given.
func DefaultExperiment(target modeluri.Name) string {
	return "/Shared/brickferry/" + target.Full
}

// ReadOptions reads the copy command's inputs, recording every problem in
// in (see agent.Inputs.Err).
func ReadOptions(in *agent.Inputs) Options {
	var o Options
	o.Source = agent.Parse(in, "modelName", modeluri.ParseName)
	o.Version = agent.Parse(in, "modelVersion", modeluri.ParseVersionRef)
	if err := o.Source.CheckVersion(o.Version); err != nil {
		in.Fail("modelVersion", "%s", agent.Neutralize(err.Error()))
	}
	o.Target = o.Source
	if in.String("targetModelName") != "" {
		o.Target = agent.Parse(in, "targetModelName", modeluri.ParseName)
	}
	o.Experiment = in.String("targetExperiment")
	if o.Experiment == "" && o.Target.Full != "" {
		o.Experiment = DefaultExperiment(o.Target)
	} else if o.Experiment != "" && (!strings.HasPrefix(o.Experiment, "/") || strings.HasSuffix(o.Experiment, "/") || strings.Contains(o.Experiment, "//")) {
		in.Fail("targetExperiment", "%q is not an absolute workspace path such as /Shared/churn-prod", agent.Neutralize(o.Experiment))
	}
	o.Stage = in.Choice("targetStage")
	if a := in.String("targetAlias"); a != "" {
		if err := modeluri.ValidateAlias(strings.TrimPrefix(a, "@")); err != nil {
			in.Fail("targetAlias", "%s", agent.Neutralize(err.Error()))
		}
		o.Alias = strings.TrimPrefix(a, "@")
	}
	switch {
	case o.Target.Full == "":
	case o.Stage != "" && o.Alias != "":
		in.Fail("targetAlias", "give a stage or an alias, not both")
	case o.Target.UC() && o.Stage != "":
		in.Fail("targetStage", "%s is a Unity Catalog model: Unity Catalog has no stages; set an alias instead (e.g. champion)", agent.Neutralize(o.Target.Full))
	case !o.Target.UC() && o.Alias != "":
		in.Fail("targetAlias", "%s is a workspace model registry model: it has stages (Staging, Production), not aliases", agent.Neutralize(o.Target.Full))
	}
	o.DryRun = in.Bool("dryRun")
	o.Timeout = in.Minutes("copyTimeoutMinutes", 0, maxTimeout)
	o.Parallel = 8
	if v := in.String("copyParallelism"); v != "" {
		o.Parallel = in.Int("copyParallelism", 1, 64)
	}
	return o
}

const maxTimeout = 24 * time.Hour
