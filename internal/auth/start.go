package auth

import (
	"context"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/tasks"
)

// Step is one run of a task (one step of a pipeline), made once its inputs
// are valid and its workspace is connected.
type Step interface {
	// Run does the task's work; ctx carries the workspace's SDK logger.
	Run(ctx context.Context) error
}

// Task is the function of a task that works on one workspace (the task's
// connection group ""): it starts the task (Begin), reads the task's own
// options with read, connects once every input is valid, makes the step
// with newStep and runs it. A task with more workspaces, or whose
// workspaces depend on its options, uses Begin itself.
func Task[O any, S Step](task string, connect ConnectFunc, read func(agent.Env, *agent.Inputs) O, newStep func(agent.Env, *agent.Log, *Workspace, O) (S, error)) agent.TaskFunc {
	return func(ctx context.Context, env agent.Env, log *agent.Log) error {
		st, err := Begin(env, log, task, connect, "")
		if err != nil {
			return err
		}
		opts := read(env, st.In)
		ws, err := st.Connect(ctx)
		if err != nil {
			return err
		}
		s, err := newStep(env, log, ws[0], opts)
		if err != nil {
			return err
		}
		return s.Run(ws[0].Context(ctx))
	}
}

// Start is the beginning every Brickferry task shares: the task's inputs read
// against its task.json, the connection inputs of each workspace it works on
// read with the others, and the workspaces connected only once every input
// is valid (no remote call before validation).
//
//	st, err := auth.Begin(env, log, "MLflowPromote", deps.Connect)
//	if err != nil { return err }
//	opts := ReadOptions(st.In)          // the task's own inputs
//	st.Workspace("")                    // the connection inputs of a group
//	ws, err := st.Connect(ctx)         // every bad input, or the workspaces
type Start struct {
	// In are the task's inputs; problems found reading them are recorded
	// here and reported together by Connect.
	In *agent.Inputs

	env        agent.Env
	log        *agent.Log
	connect    ConnectFunc
	connectors []Connector
}

// Begin starts the task named task (as in its task.json) and reads the
// connection inputs of each group ("" for the task's workspace). connect nil
// means Connect, the production resolver.
func Begin(env agent.Env, log *agent.Log, task string, connect ConnectFunc, groups ...string) (*Start, error) {
	def, err := tasks.Definition(task)
	if err != nil {
		return nil, err
	}
	if connect == nil {
		connect = Connect
	}
	s := &Start{In: def.InputsFrom(env), env: env, log: log, connect: connect}
	for _, g := range groups {
		s.Workspace(g)
	}
	return s, nil
}

// Workspace reads the connection inputs of one more group, for a workspace
// the task needs only with some inputs (the copy's "target"), or whose
// inputs it reads after its own.
func (s *Start) Workspace(group string) {
	s.connectors = append(s.connectors, s.connect(s.env, s.In, s.log, group))
}

// Connect returns every input problem found so far or, when there is none,
// connects the workspaces in the order their groups were read. The harness
// (agent.Run) explains the task's errors with each connected workspace: a
// 401/403 at any point of the task names the connection and what to fix.
func (s *Start) Connect(ctx context.Context) ([]*Workspace, error) {
	if err := s.In.Err(); err != nil {
		return nil, err
	}
	out := make([]*Workspace, 0, len(s.connectors))
	for _, c := range s.connectors {
		ws, err := c(ctx)
		if err != nil {
			return nil, err
		}
		s.log.AddExplainer(ws)
		out = append(out, ws)
	}
	return out, nil
}
