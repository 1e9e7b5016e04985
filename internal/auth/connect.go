package auth

import (
	"context"

	"github.com/brickferry/brickferry/internal/agent"
)

// Connector opens one workspace connection. A task gets it while it reads its
// inputs and calls it only once every input is valid, so no remote call is
// made before validation.
type Connector func(ctx context.Context) (*Workspace, error)

// ConnectFunc reads the connection inputs of a group ("" for the task's
// workspace, "target" for the copy's target), recording problems in in, and
// returns the Connector that resolves them. Connect is the production one;
// tests may give a task another (e.g. straight to an emulated workspace).
type ConnectFunc func(env agent.Env, in *agent.Inputs, log *agent.Log, group string) Connector

// Connect is the ConnectFunc that resolves connections with a Resolver.
func Connect(env agent.Env, in *agent.Inputs, log *agent.Log, group string) Connector {
	opts := ReadOptions(in, group)
	r := &Resolver{Env: env, Log: log}
	return func(ctx context.Context) (*Workspace, error) { return r.Resolve(ctx, opts) }
}

// Direct is a ConnectFunc for tests and demos that already hold a workspace
// (e.g. built from an emulator's SDK configuration): it reads the group's
// inputs, so they are validated as in production, and then connects to ws.
func Direct(ws *Workspace) ConnectFunc {
	return func(env agent.Env, in *agent.Inputs, log *agent.Log, group string) Connector {
		ReadOptions(in, group)
		return func(context.Context) (*Workspace, error) {
			out := *ws
			out.log = log
			return &out, nil
		}
	}
}
