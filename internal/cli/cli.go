// Package cli is the brickferry command line: `brickferry <Task>` runs a pipeline
// task (under the agent, or locally with --input flags), `brickferry help
// <Task>` describes it from its task.json, `brickferry version` prints the
// version. main wires the process into Main; nothing below it reads os.Args,
// os.Environ, the terminal or calls os.Exit.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/buildinfo"
	"github.com/brickferry/brickferry/internal/doctor"
)

// Process is what main hands over: arguments (without the program name), the
// environment, and the output streams.
type Process struct {
	Args    []string
	Environ []string
	Stdout  io.Writer
	Stderr  io.Writer
	// ReadSecret asks for a secret on the terminal without echoing it, for
	// --secret name without a value; nil when there is no terminal.
	ReadSecret func(prompt string) (string, error)
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
	case "help", "--help", "-h", "-help":
		return help(p, registry, p.Args[1:])
	case doctor.Name:
		def, err := doctor.Definition()
		if err != nil {
			fmt.Fprintf(p.Stderr, "brickferry: %v\n", err)
			return exitFailed
		}
		return runTask(ctx, p, Task{Definition: def, Run: doctor.Task(def)})
	default:
		task, ok := lookupTask(p, registry, name)
		if !ok {
			return exitUsage
		}
		return runTask(ctx, p, task)
	}
}

// lookupTask finds a task by name, or says which names are close.
func lookupTask(p Process, registry Registry, name string) (Task, bool) {
	task, ok := registry.lookup(name)
	if !ok {
		fmt.Fprintf(p.Stderr, "brickferry: unknown task or command %q%s; the tasks are: %s (and: version, help)\n",
			name, agent.Suggestion(name, registry.Names()), strings.Join(registry.Names(), ", "))
	}
	return task, ok
}

// help is `brickferry help [<Task> [input]]`.
func help(p Process, registry Registry, args []string) int {
	if len(args) == 0 {
		usage(p.Stdout, registry)
		return exitOK
	}
	task, ok := lookupTask(p, registry, args[0])
	if !ok {
		return exitUsage
	}
	switch len(args) {
	case 1:
		taskHelp(p.Stdout, task)
		return exitOK
	case 2:
		def := task.Definition
		in, ok := def.Input(args[1])
		if !ok {
			fmt.Fprintf(p.Stderr, "brickferry: task %s has no input %q%s (brickferry help %s lists them)\n",
				def.Name, args[1], agent.Suggestion(args[1], inputNames(def)), def.Name)
			return exitUsage
		}
		inputHelp(p.Stdout, def, in)
		return exitOK
	}
	fmt.Fprintln(p.Stderr, "brickferry: usage: brickferry help [<Task> [input]]")
	return exitUsage
}

// usageError prints each problem of a command line on its own line.
func usageError(w io.Writer, task string, err error) {
	problems := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok { //nolint:errorlint // only the top-level errors.Join is one line per problem
		problems = joined.Unwrap()
	}
	for _, e := range problems {
		fmt.Fprintf(w, "brickferry %s: %v\n", task, e)
	}
}

// Task is a pipeline task this executable runs: its task.json, its code and
// an example step for its help.
type Task struct {
	Definition agent.Definition
	Run        agent.TaskFunc
	Example    string
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
	var notes []string
	if local {
		opts, err := parseLocalFlags(p.Args[1:])
		if errors.Is(err, flag.ErrHelp) {
			taskHelp(p.Stdout, task)
			return exitOK
		}
		if err != nil {
			usageError(p.Stderr, def.Name, err)
			return exitUsage
		}
		run, err := opts.prepare(env, def, p.ReadSecret)
		if err != nil {
			usageError(p.Stderr, def.Name, err)
			return exitUsage
		}
		defer run.cleanup()
		env, notes, human = run.env, run.notes, !opts.raw
	}
	sys := env.System()
	log := agent.NewLog(p.Stdout, agent.LogOptions{
		Human: human, Debug: sys.Debug, TempDir: sys.TempDir, HostType: sys.HostType, Definition: def,
	})
	for _, s := range env.Secrets() {
		log.Mask(s)
	}
	for _, n := range notes {
		log.Info("%s", n)
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
