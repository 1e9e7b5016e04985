// Package tasks embeds the task.json of every task folder, so the executable
// validates inputs, fills defaults and names inputs by their labels exactly as
// the pipeline editor declares them.
package tasks

import (
	"embed"
	"fmt"
	"io/fs"
	"path"

	"github.com/brickferry/brickferry/internal/agent"
)

//go:embed */task.json */example.yml
var files embed.FS

// Example returns the example step of the task with the given name
// (<Name>V<Major>/example.yml), or "" when it has none. The pipeline schema
// check (build/pipelineschema) checks every example.
func Example(name string, major int) string {
	data, err := files.ReadFile(fmt.Sprintf("%sV%d/example.yml", name, major))
	if err != nil {
		return ""
	}
	return string(data)
}

// Definition returns the task.json of the task with the given name
// (the folder is <Name>V<Major>).
func Definition(name string) (agent.Definition, error) {
	dirs, err := fs.Glob(files, "*/task.json")
	if err != nil {
		return agent.Definition{}, err
	}
	for _, p := range dirs {
		data, err := files.ReadFile(p)
		if err != nil {
			return agent.Definition{}, err
		}
		def, err := agent.ParseDefinition(data)
		if err != nil {
			return agent.Definition{}, fmt.Errorf("%s: %w", p, err)
		}
		if def.Name == name {
			return def, nil
		}
	}
	return agent.Definition{}, fmt.Errorf("no task.json declares a task named %q", name)
}

// All returns every embedded task definition, keyed by folder name.
func All() (map[string]agent.Definition, error) {
	paths, err := fs.Glob(files, "*/task.json")
	if err != nil {
		return nil, err
	}
	out := map[string]agent.Definition{}
	for _, p := range paths {
		data, err := files.ReadFile(p)
		if err != nil {
			return nil, err
		}
		def, err := agent.ParseDefinition(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out[path.Dir(p)] = def
	}
	return out, nil
}
