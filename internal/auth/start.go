package auth

import (
	"context"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/tasks"
)

// Start is the beginning every Brickferry task shares: the task's inputs read
// against its task.json, the connection inputs of each workspace it works on
// read with the others, and the workspaces connected only once every input
// is valid (no remote call before validation).
//
//	st, err := auth.Begin(env, log, "BatchScore", deps.Connect, "")
//	if err != nil { return err }
//	opts := ReadOptions(st.In)          // the task's own inputs
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
