// Package promote is the MLflowPromote@1 task: it registers a model version
// from an MLflow run, moves a version to a stage (workspace model registry) or
// an alias (Unity Catalog), gates a candidate version on a metric of its
// source run against the version that holds the target stage or alias, and
// copies a version to another workspace (copy.go, package modelcopy).
//
// Inputs are read and validated into Options before any remote call
// (ReadOptions); the workspace connection is a dependency (Deps) so the task
// runs against any workspace, the emulator included. Every version the task
// changes gets lineage tags naming the pipeline run (lineage.go).
package promote

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/modeluri"
	"github.com/brickferry/brickferry/internal/registry"
)

// Deps are what the task needs from outside. The zero value is the
// production configuration.
type Deps struct {
	// Connect reads the task's workspace connection inputs, recording any
	// problem in in (it is called while the other inputs are validated,
	// before any remote call), and returns how to connect. Nil means
	// auth.Connect, the shared resolver.
	Connect auth.ConnectFunc
	// Clock drives the waits for a version to be READY (default the wall
	// clock); tests advance an emulated workspace with it.
	Clock converge.Clock
}

// Task returns the MLflowPromote task function.
func Task(d Deps) agent.TaskFunc {
	return func(ctx context.Context, env agent.Env, log *agent.Log) error {
		st, err := auth.Begin(env, log, "MLflowPromote", d.Connect)
		if err != nil {
			return err
		}
		opts := ReadOptions(st.In)
		st.Workspace("")
		if opts.Command == Copy {
			st.Workspace("target")
		}
		ws, err := st.Connect(ctx)
		if err != nil {
			return err
		}
		if opts.Command == Copy {
			// Before anything is read or written: a target that is the
			// source workspace (a group or suffix that resolved to the
			// wrong workspace) would copy a version onto itself.
			if err := auth.Distinct(ctx, ws[0], ws[1]); err != nil {
				return err
			}
			return copyVersion(ctx, env, log, *opts.Copy, ws[0], ws[1], converge.Or(d.Clock))
		}
		s, err := d.newStep(env, log, ws[0], opts)
		if err != nil {
			return err
		}
		return s.Run(ws[0].Context(ctx))
	}
}

// step is one run of the task (one step of a pipeline).
type step struct {
	opts    Options
	log     *agent.Log
	ws      *workspace
	lineage registry.Lineage
	// storage carries requests to signed storage URLs (registering into
	// Unity Catalog uploads the model files); nil: Go's default transport.
	storage *http.Client
	clock   converge.Clock
}

// newStep makes the step once every input is valid and ws is connected.
func (d Deps) newStep(env agent.Env, log *agent.Log, ws *auth.Workspace, opts Options) (*step, error) {
	return &step{opts: opts, log: log, ws: newWorkspace(ws.Host, ws.Client), lineage: registry.LineageOf(env.System()), storage: ws.HTTPClient, clock: converge.Or(d.Clock)}, nil
}

// result is what a command leaves for the outputs and the summary.
type result struct {
	version  int
	stage    string
	alias    string
	previous int
	promote  *bool
	reused   *bool
	note     string // one line above the summary's table
}

func (s *step) Run(ctx context.Context) error {
	var (
		res *result
		err error
	)
	switch s.opts.Command {
	case Register:
		res, err = s.register(ctx)
	case Transition:
		res, err = s.transition(ctx)
	case Gate:
		res, err = s.gate(ctx)
	case Approve:
		res, err = s.approve(ctx)
	default:
		return fmt.Errorf("unknown command %q", s.opts.Command)
	}
	if res != nil {
		// Also after a failure that left something to show: a gate that did
		// not pass, a version still registering when time ran out.
		s.outputs(res)
		s.summary(ctx, res)
	}
	return err
}

func (s *step) outputs(r *result) {
	name := s.opts.Model.Full
	s.log.SetOutput("modelName", name)
	if r.version > 0 {
		v := strconv.Itoa(r.version)
		s.log.SetOutput("modelVersion", v)
		s.log.SetOutput("modelUri", modeluri.ModelsURI(name, v))
	}
	if r.stage != "" {
		s.log.SetOutput("stage", r.stage)
	}
	if r.alias != "" {
		s.log.SetOutput("alias", r.alias)
	}
	if s.opts.Command != Register {
		prev := ""
		if r.previous > 0 {
			prev = strconv.Itoa(r.previous)
		}
		s.log.SetOutput("previousVersion", prev)
	}
	if r.promote != nil {
		s.log.SetOutput("promote", strconv.FormatBool(*r.promote))
	}
	if r.reused != nil {
		s.log.SetOutput("reused", strconv.FormatBool(*r.reused))
	}
}
