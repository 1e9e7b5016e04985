package cli

import (
	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/batchscore"
	"github.com/brickferry/brickferry/internal/promote"
	"github.com/brickferry/brickferry/internal/serve"
	"github.com/brickferry/brickferry/internal/train"
	"github.com/brickferry/brickferry/tasks"
)

// Tasks is the registry of the pipeline tasks this executable runs, each with
// the task.json embedded from its task folder.
func Tasks() Registry {
	r := Registry{}
	for name, run := range map[string]agent.TaskFunc{
		"DatabricksTrain": train.Task(train.Deps{}),
		"MLflowPromote":   promote.Task(promote.Deps{}),
		"BatchScore":      batchscore.Deps{}.Task(),
		"ModelServe":      serve.Task(serve.Deps{}),
	} {
		def, err := tasks.Definition(name)
		if err != nil {
			// The task.json files are embedded at build time; TestTasks covers this.
			panic(err)
		}
		r[name] = Task{Definition: def, Run: run, Example: tasks.Example(def.Name, def.Version.Major)}
	}
	return r
}
