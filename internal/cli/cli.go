// Package cli is the brickferry command line: `brickferry <Task>` runs a pipeline
// task (under the agent, or locally with --input flags), `brickferry version`
// prints the version. main wires the process into Main; nothing below it
// reads os.Args, os.Environ or calls os.Exit.
package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/buildinfo"
)

// Process is what main hands over: arguments (without the program name), the
// environment, and the output streams.
type Process struct {
	Args    []string
	Environ []string
	Stdout  io.Writer
	Stderr  io.Writer
}

// Exit codes outside the agent. Under the agent the executable always exits
// 0 (a Node-handler task that exits non-zero is an infrastructure failure);
// the result is in task.complete.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitCanceled = 130
)

// Main runs the command line and returns the process exit code. ctx is
// cancelled when the process receives SIGINT or SIGTERM.
func Main(ctx context.Context, p Process, registry Registry) int {
	if len(p.Args) == 0 {
		usage(p.Stderr, registry)
		return exitUsage
	}
	switch name := p.Args[0]; name {
	case "version", "--version", "-v":
		fmt.Fprintf(p.Stdout, "brickferry %s\n", buildinfo.CurrentVersion())
		return exitOK
	case "help", "--help", "-h":
		usage(p.Stdout, registry)
		return exitOK
	default:
		task, ok := registry.lookup(name)
		if !ok {
			fmt.Fprintf(p.Stderr, "brickferry: unknown task or command %q; the tasks are: %s (and: version, help)\n",
				name, strings.Join(registry.Names(), ", "))
			return exitUsage
		}
		return runTask(ctx, p, task)
	}
}

func usage(w io.Writer, registry Registry) {
	fmt.Fprintf(w, `brickferry %s: MLOps on Azure Databricks, as Azure Pipelines tasks.

Usage:
  brickferry <Task>                       run a task with the environment the agent gives it
  brickferry <Task> --input name=value... run a task from a terminal (local mode)
          [--inputs-file inputs.yml|json] [--var name=value] [--secret name=value] [--raw]
  brickferry version                      print the version

Tasks: %s
`, buildinfo.CurrentVersion(), strings.Join(registry.Names(), ", "))
}

// Task is a pipeline task this executable runs: its task.json and its code.
type Task struct {
	Definition agent.Definition
	Run        agent.TaskFunc
}

// Registry maps task names to tasks.
type Registry map[string]Task

// Names returns the task names, sorted.
func (r Registry) Names() []string {
	return slices.Sorted(maps.Keys(r))
}

// lookup finds a task by name, ignoring case ("databrickstrain" works in a shell).
func (r Registry) lookup(name string) (Task, bool) {
	for n, task := range r {
		if strings.EqualFold(n, name) {
			return task, true
		}
	}
	return Task{}, false
}

// runTask runs one task under the agent (no flags, TF_BUILD set by the agent)
// or in local mode.
func runTask(ctx context.Context, p Process, task Task) int {
	def := task.Definition
	env := agent.NewEnv(p.Environ)
	local := len(p.Args) > 1 || env["TF_BUILD"] == ""
	human := local
	if local {
		opts, err := parseLocalFlags(p.Args[1:])
		if err != nil {
			fmt.Fprintf(p.Stderr, "brickferry %s: %v\n", def.Name, err)
			return exitUsage
		}
		env, err = opts.environment(env, def)
		if err != nil {
			fmt.Fprintf(p.Stderr, "brickferry %s: %v\n", def.Name, err)
			return exitUsage
		}
		human = !opts.raw
	}
	sys := env.System()
	log := agent.NewLog(p.Stdout, agent.LogOptions{
		Human: human, Debug: sys.Debug, TempDir: sys.TempDir, HostType: sys.HostType, Definition: def,
	})
	for _, s := range env.Secrets() {
		log.Mask(s)
	}
	result := agent.Run(ctx, task.Run, env, log)
	if !local {
		return exitOK
	}
	switch result {
	case agent.Succeeded, agent.SucceededWithIssues:
		return exitOK
	case agent.Canceled:
		return exitCanceled
	default:
		return exitFailed
	}
}
