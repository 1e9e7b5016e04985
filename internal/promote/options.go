package promote

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/modelcopy"
	"github.com/brickferry/brickferry/internal/modeluri"
	"github.com/brickferry/brickferry/internal/registry"
)

// Command is what the step does.
type Command string

const (
	Register   Command = "register"
	Transition Command = "transition"
	Gate       Command = "gate"
	// Copy deploys a version to another workspace (package modelcopy).
	Copy Command = "copy"
	// Approve sets the approval tag a Unity Catalog model's deployment job
	// waits for (approve.go).
	Approve Command = "approve"
)

// Options is everything MLflowPromote@1 was asked to do, read from its inputs
// and validated before any remote call.
type Options struct {
	Command Command
	Model   modeluri.Name

	// register
	Source      modeluri.Source
	Description string
	Tags        []agent.KeyValue
	Timeout     time.Duration

	// transition and gate
	Version modeluri.VersionRef
	Stage   string // canonical spelling; "" when an alias is the target
	Alias   string // "" when a stage is the target

	// transition
	ArchiveExisting bool
	RemoveAlias     string
	Comment         string

	// copy: the copy command's own options (package modelcopy)
	Copy *modelcopy.Options

	// approve (Version and Timeout too)
	ApprovalTag       string // "" : the approval task's own setting
	WaitForDeployment bool

	// gate
	Metric         string
	HigherIsBetter bool
	MinImprovement float64
	Threshold      *float64
	FailOnGate     bool
}

// Target is the stage or alias the step moves to or compares with, for messages.
func (o Options) Target() string {
	if o.Alias != "" {
		return "@" + o.Alias
	}
	return o.Stage
}

const maxTimeout = 24 * time.Hour

// ReadOptions reads the task's inputs into Options, recording every problem
// in in (see agent.Inputs.Err). Only the inputs of the chosen command are read.
func ReadOptions(in *agent.Inputs) Options {
	o := Options{Command: Command(in.Choice("command"))}
	if o.Command == Copy {
		c := modelcopy.ReadOptions(in)
		o.Copy, o.Model = &c, c.Source
		return o
	}
	o.Model = agent.Parse(in, "modelName", modeluri.ParseName)
	switch o.Command {
	case Register:
		readRegister(in, &o)
	case Transition:
		readTarget(in, &o)
		o.ArchiveExisting = in.Bool("archiveExisting")
		o.Comment = in.String("comment")
		if a := in.String("removeAlias"); a != "" {
			if err := modeluri.ValidateAlias(a); err != nil {
				in.Fail("removeAlias", "%s", agent.Neutralize(err.Error()))
			} else if o.Model.Full != "" && !o.Model.UC() {
				in.Fail("removeAlias", "%s is a workspace model registry model, which has no aliases", agent.Neutralize(o.Model.Full))
			} else if a == o.Alias {
				in.Fail("removeAlias", "%q is the alias being set", a)
			}
			o.RemoveAlias = a
		}
	case Gate:
		readTarget(in, &o)
		readGate(in, &o)
	case Approve:
		readApprove(in, &o)
	}
	return o
}

func readApprove(in *agent.Inputs, o *Options) {
	o.Version = agent.Parse(in, "modelVersion", modeluri.ParseVersionRef)
	if err := o.Model.CheckVersion(o.Version); err != nil {
		in.Fail("modelVersion", "%s", agent.Neutralize(err.Error()))
	}
	if o.Model.Full != "" && !o.Model.UC() {
		in.Fail("modelName", "%s is a workspace model registry model: deployment jobs and their approvals are for Unity Catalog models (catalog.schema.model); use the transition command to move a workspace registry version", agent.Neutralize(o.Model.Full))
	}
	o.ApprovalTag = in.String("approvalTag")
	if o.ApprovalTag != "" {
		if err := registry.CheckUCTagKey(o.ApprovalTag); err != nil {
			in.Fail("approvalTag", "%s", agent.Neutralize(err.Error()))
		}
	}
	o.WaitForDeployment = in.Bool("waitForDeployment")
	o.Timeout = in.Minutes("timeoutMinutes", 0, maxTimeout)
}

func readRegister(in *agent.Inputs, o *Options) {
	o.Source = agent.Parse(in, "modelUri", modeluri.ParseSource)
	o.Description = in.String("description")
	o.Tags = in.KeyValues("versionTags")
	for _, kv := range o.Tags {
		if strings.HasPrefix(kv.Key, registry.TagPrefix) {
			in.Fail("versionTags", "%q: tags starting with %q are set by the task itself", agent.Neutralize(kv.Key), registry.TagPrefix)
		} else if o.Model.UC() {
			if err := registry.CheckUCTagKey(kv.Key); err != nil {
				in.Fail("versionTags", "%s, as %s is a Unity Catalog model", agent.Neutralize(err.Error()), agent.Neutralize(o.Model.Full))
			}
		}
	}
	o.Timeout = in.Minutes("timeoutMinutes", 0, maxTimeout)
	if o.Model.UC() && o.Source.URI != "" && o.Source.RunID == "" && o.Source.ModelID == "" {
		// A Unity Catalog version gets its own copy of the files, uploaded
		// by the task from the run's artifacts or the logged model's (uc.go).
		in.Fail("modelUri", "registering into Unity Catalog (%s) needs a models:/m-<id> or runs:/<run id>/<artifact path> URI: the task uploads the model from the logged model's or the run's artifacts", agent.Neutralize(o.Model.Full))
	}
}

// readTarget reads the version and the stage or alias, and checks that they
// fit the model's registry.
func readTarget(in *agent.Inputs, o *Options) {
	o.Version = agent.Parse(in, "modelVersion", modeluri.ParseVersionRef)
	if err := o.Model.CheckVersion(o.Version); err != nil {
		in.Fail("modelVersion", "%s", agent.Neutralize(err.Error()))
	}
	stageGiven := in.String("stage") != "" // a bad stage is reported once, by Choice
	o.Stage = in.Choice("stage")
	o.Alias = in.String("alias")
	if o.Alias != "" {
		if err := modeluri.ValidateAlias(o.Alias); err != nil {
			in.Fail("alias", "%s", agent.Neutralize(err.Error()))
		}
	}
	switch {
	case o.Model.Full == "":
	case o.Stage != "" && o.Alias != "":
		in.Fail("alias", "give a stage or an alias, not both")
	case o.Model.UC() && o.Stage != "":
		in.Fail("stage", "%s is a Unity Catalog model: Unity Catalog has no stages; set an alias instead (e.g. challenger or champion)", agent.Neutralize(o.Model.Full))
	case !o.Model.UC() && o.Alias != "":
		in.Fail("alias", "%s is a workspace model registry model: it has stages (Staging, Production), not aliases; aliases are for Unity Catalog models (catalog.schema.model)", agent.Neutralize(o.Model.Full))
	case o.Model.UC() && o.Alias == "":
		in.Fail("alias", "is required for the Unity Catalog model %s: give the alias to set or compare with (e.g. champion)", agent.Neutralize(o.Model.Full))
	case !o.Model.UC() && o.Stage == "" && !stageGiven:
		in.Fail("stage", "is required for the workspace model registry model %s: choose Staging, Production, Archived or None", agent.Neutralize(o.Model.Full))
	}
}

func readGate(in *agent.Inputs, o *Options) {
	o.Metric = in.String("metricName")
	o.HigherIsBetter = in.Choice("direction") != "lower"
	o.FailOnGate = in.Choice("onGateFail") != "warn"
	if v := in.String("minImprovement"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			in.Fail("minImprovement", "%q is not a number of 0 or more", agent.Neutralize(v))
		}
		o.MinImprovement = f
	}
	if v := in.String("threshold"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			in.Fail("threshold", "%q is not a number", agent.Neutralize(v))
		} else {
			o.Threshold = &f
		}
	}
	if o.Stage == "None" || o.Stage == "Archived" {
		in.Fail("stage", "a gate compares with the version in Staging or Production, not %s", o.Stage)
	}
}
