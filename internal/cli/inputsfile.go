package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/brickferry/brickferry/internal/agent"
)

// readInputsFile reads the inputs of one step of the task from a YAML file
// (JSON is YAML too) holding what a user copies from a pipeline:
//   - a step (- task: Name@1 ... inputs: ...), or a list of steps of which
//     exactly one runs this task (script steps and other tasks are skipped);
//   - a step written as a mapping (task: and inputs:);
//   - an inputs: block on its own;
//   - a mapping of input names to values.
//
// Values are taken as written in the file, as the agent passes them
// (true, 100, 0.005); a list or mapping as a value is a mistake.
func readInputsFile(path string, def agent.Definition) ([]agent.KeyValue, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the inputs file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s is not YAML: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s is empty: write the step (- task: %s@%d with inputs:) or its inputs", path, def.Name, def.Version.Major)
	}
	root := doc.Content[0]
	var inputs *yaml.Node
	switch root.Kind {
	case yaml.SequenceNode:
		step, err := findStep(path, root, def)
		if err != nil {
			return nil, err
		}
		inputs = step
	case yaml.MappingNode:
		if task := mappingValue(root, "task"); task != nil {
			if err := checkTaskRef(path, task, def); err != nil {
				return nil, err
			}
			inputs = mappingValue(root, "inputs")
		} else if in := mappingValue(root, "inputs"); in != nil {
			inputs = in
		} else {
			inputs = root
		}
	default:
		return nil, fmt.Errorf("%s holds neither a step nor a mapping of input names to values", path)
	}
	if inputs == nil || inputs.Kind == yaml.ScalarNode && inputs.Tag == "!!null" {
		return nil, nil
	}
	if inputs.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s line %d: inputs: must be a mapping of input names to values", path, inputs.Line)
	}
	out := make([]agent.KeyValue, 0, len(inputs.Content)/2)
	for i := 0; i+1 < len(inputs.Content); i += 2 {
		k, v := inputs.Content[i], inputs.Content[i+1]
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s line %d: input %q must be a string, number or boolean", path, v.Line, k.Value)
		}
		value := v.Value
		if v.Tag == "!!null" {
			value = ""
		}
		out = append(out, agent.KeyValue{Key: k.Value, Value: value})
	}
	return out, nil
}

// findStep returns the inputs of the one step in a list that runs the task.
func findStep(path string, steps *yaml.Node, def agent.Definition) (*yaml.Node, error) {
	var found []*yaml.Node
	var others []string
	var otherVersion error
	for _, item := range steps.Content {
		if item.Kind != yaml.MappingNode {
			continue
		}
		task := mappingValue(item, "task")
		switch {
		case task == nil:
			if len(item.Content) > 0 {
				others = append(others, item.Content[0].Value) // script, bash, checkout, ...
			}
			continue
		case !runsTask(task, def):
			others = append(others, task.Value)
		default:
			if err := checkTaskRef(path, task, def); err != nil {
				otherVersion = err
				continue
			}
			found = append(found, item)
		}
	}
	switch {
	case len(found) == 1:
		return mappingValue(found[0], "inputs"), nil
	case len(found) == 0 && otherVersion != nil:
		return nil, otherVersion
	case len(found) == 0:
		return nil, fmt.Errorf("%s has no step of task %s@%d (its steps: %s)", path, def.Name, def.Version.Major, strings.Join(others, ", "))
	}
	var names []string
	for _, s := range found {
		name := "line " + strconv.Itoa(s.Line)
		if n := mappingValue(s, "name"); n != nil && n.Value != "" {
			name = n.Value + " (" + name + ")"
		}
		names = append(names, name)
	}
	return nil, fmt.Errorf("%s has %d steps of task %s@%d (%s): keep only the one to run", path, len(found), def.Name, def.Version.Major, strings.Join(names, ", "))
}

// runsTask reports whether a step's task: names this task, whatever the
// version: Name[@Major], or a qualified name ending in .Name (the
// extension's contribution id).
func runsTask(task *yaml.Node, def agent.Definition) bool {
	name, _, _ := strings.Cut(strings.TrimSpace(task.Value), "@")
	if i := strings.LastIndex(name, "."); i >= 0 {
		name = name[i+1:]
	}
	return strings.EqualFold(name, def.Name)
}

// checkTaskRef checks that a step's task: names this task and major version.
func checkTaskRef(path string, task *yaml.Node, def agent.Definition) error {
	ref := strings.TrimSpace(task.Value)
	if !runsTask(task, def) {
		return fmt.Errorf("%s line %d: the step runs task %s, not %s", path, task.Line, ref, def.Name)
	}
	if _, version, hasVersion := strings.Cut(ref, "@"); hasVersion && version != strconv.Itoa(def.Version.Major) {
		return fmt.Errorf("%s line %d: the step runs %s; this executable runs %s@%d", path, task.Line, ref, def.Name, def.Version.Major)
	}
	return nil
}

// mappingValue returns the value of key in a YAML mapping, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
