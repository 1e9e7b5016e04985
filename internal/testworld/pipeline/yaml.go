// Package pipeline reads the subset of Azure Pipelines YAML that the Brickferry
// examples use and runs it locally, step by step, through the brickferry
// executable with the environment the agent would give each task. It is what
// `make demo` and the end-to-end test run; it is not shipped in the extension.
//
// Supported: stages (dependsOn, condition, variables), jobs and deployment jobs
// (runOnce strategy; environment, pool and workspace are accepted and ignored),
// steps with task:, name:, displayName:, inputs:, condition:, enabled:,
// continueOnError:, and checkout: (a no-op), variables as a mapping or a list
// of name/value, group and readonly entries, $(...) macros, runtime
// expressions $[ ... ] reading dependencies / stageDependencies outputs, and
// conditions built from succeeded(), failed(), always(), succeededOrFailed(),
// eq, ne, and, or, not, variables['x']. Anything else (templates, ${{ }},
// script steps, matrix strategies, ...) is a clear error naming the YAML line,
// never silently skipped.
package pipeline

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Pipeline is a parsed azure-pipelines.yml.
type Pipeline struct {
	Name      string    `yaml:"name"`
	Trigger   yaml.Node `yaml:"trigger"`
	PR        yaml.Node `yaml:"pr"`
	Pool      yaml.Node `yaml:"pool"`
	Variables Variables `yaml:"variables"`
	Stages    []Stage   `yaml:"stages"`
}

// Stage is one stage.
type Stage struct {
	Stage       string    `yaml:"stage"`
	DisplayName string    `yaml:"displayName"`
	DependsOn   DependsOn `yaml:"dependsOn"`
	Condition   string    `yaml:"condition"`
	Variables   Variables `yaml:"variables"`
	Pool        yaml.Node `yaml:"pool"`
	Jobs        []Job     `yaml:"jobs"`
}

// Job is a job or a deployment job.
type Job struct {
	Job             string    `yaml:"job"`
	Deployment      string    `yaml:"deployment"`
	DisplayName     string    `yaml:"displayName"`
	DependsOn       DependsOn `yaml:"dependsOn"`
	Condition       string    `yaml:"condition"`
	Variables       Variables `yaml:"variables"`
	Pool            yaml.Node `yaml:"pool"`
	Workspace       yaml.Node `yaml:"workspace"`
	Environment     yaml.Node `yaml:"environment"`
	TimeoutMinutes  int       `yaml:"timeoutInMinutes"`
	ContinueOnError bool      `yaml:"continueOnError"`
	Steps           []Step    `yaml:"steps"`
	Strategy        *Strategy `yaml:"strategy"`
}

// Strategy is a deployment job's strategy; only runOnce is supported.
type Strategy struct {
	RunOnce *struct {
		Deploy struct {
			Steps []Step `yaml:"steps"`
		} `yaml:"deploy"`
	} `yaml:"runOnce"`
}

// Name is the job's identifier (job: or deployment:).
func (j Job) Name() string {
	if j.Deployment != "" {
		return j.Deployment
	}
	return j.Job
}

// AllSteps are the steps the job runs.
func (j Job) AllSteps() []Step {
	if j.Strategy != nil && j.Strategy.RunOnce != nil {
		return j.Strategy.RunOnce.Deploy.Steps
	}
	return j.Steps
}

// Step is a task step (or a checkout, which the local runner skips).
type Step struct {
	Task             string            `yaml:"task"`
	Checkout         string            `yaml:"checkout"`
	Name             string            `yaml:"name"`
	DisplayName      string            `yaml:"displayName"`
	Inputs           map[string]Scalar `yaml:"inputs"`
	Condition        string            `yaml:"condition"`
	Enabled          *bool             `yaml:"enabled"`
	ContinueOnError  bool              `yaml:"continueOnError"`
	TimeoutInMinutes int               `yaml:"timeoutInMinutes"`
	Env              map[string]Scalar `yaml:"env"`
}

// Scalar is a YAML scalar kept as the agent passes it: text ("true", "42").
type Scalar string

// UnmarshalYAML accepts strings, numbers and booleans.
func (s *Scalar) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a text, number or boolean value", n.Line)
	}
	*s = Scalar(n.Value)
	return nil
}

// DependsOn is a name or a list of names; nil means "the previous one" and an
// explicit empty list means "none".
type DependsOn struct {
	Set   bool
	Names []string
}

// UnmarshalYAML accepts a single name or a list.
func (d *DependsOn) UnmarshalYAML(n *yaml.Node) error {
	d.Set = true
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value != "" {
			d.Names = []string{n.Value}
		}
		return nil
	case yaml.SequenceNode:
		return n.Decode(&d.Names)
	}
	return fmt.Errorf("line %d: dependsOn must be a name or a list of names", n.Line)
}

// Variable is one entry of a variables block.
type Variable struct {
	Name     string
	Value    string
	Group    string // a variable group reference
	ReadOnly bool
}

// Variables is a variables block: a mapping, or a list of name/value and
// group entries.
type Variables []Variable

// UnmarshalYAML reads both forms.
func (v *Variables) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if val.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: variable %s must have a text value", val.Line, k.Value)
			}
			*v = append(*v, Variable{Name: k.Value, Value: val.Value})
		}
		return nil
	case yaml.SequenceNode:
		for _, item := range n.Content {
			var e struct {
				Name     string `yaml:"name"`
				Value    Scalar `yaml:"value"`
				Group    string `yaml:"group"`
				ReadOnly bool   `yaml:"readonly"`
			}
			if err := decodeStrict(item, &e); err != nil {
				return err
			}
			if (e.Name == "") == (e.Group == "") {
				return fmt.Errorf("line %d: a variables entry needs name and value, or group (templates are not supported)", item.Line)
			}
			*v = append(*v, Variable{Name: e.Name, Value: string(e.Value), Group: e.Group, ReadOnly: e.ReadOnly})
		}
		return nil
	}
	return fmt.Errorf("line %d: variables must be a mapping or a list", n.Line)
}

// decodeStrict decodes a node, refusing keys the target does not declare.
func decodeStrict(n *yaml.Node, v any) error {
	data, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

// Load reads and checks a pipeline file.
func Load(path string) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Parse reads and checks pipeline YAML. Unknown keys are errors.
func Parse(data []byte) (*Pipeline, error) {
	if bytes.Contains(data, []byte("${{")) {
		return nil, fmt.Errorf("template expressions ${{ }} are not supported by the local runner")
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Pipeline
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("unsupported or invalid pipeline YAML: %w", err)
	}
	if len(p.Stages) == 0 {
		return nil, fmt.Errorf("the pipeline has no stages (the local runner needs stages: with jobs:)")
	}
	seenStage := map[string]bool{}
	for si, s := range p.Stages {
		if s.Stage == "" {
			return nil, fmt.Errorf("stages[%d] has no stage: name", si)
		}
		if seenStage[s.Stage] {
			return nil, fmt.Errorf("stage %s is declared twice", s.Stage)
		}
		seenStage[s.Stage] = true
		seenJob := map[string]bool{}
		for ji, j := range s.Jobs {
			if (j.Job == "") == (j.Deployment == "") {
				return nil, fmt.Errorf("stage %s jobs[%d]: give job: or deployment: (templates are not supported)", s.Stage, ji)
			}
			if seenJob[j.Name()] {
				return nil, fmt.Errorf("stage %s: job %s is declared twice", s.Stage, j.Name())
			}
			seenJob[j.Name()] = true
			if j.Deployment != "" && (j.Strategy == nil || j.Strategy.RunOnce == nil) {
				return nil, fmt.Errorf("deployment job %s: only strategy: runOnce: deploy: steps: is supported", j.Name())
			}
			if j.Deployment == "" && j.Strategy != nil {
				return nil, fmt.Errorf("job %s: strategies (matrix, parallel) are not supported", j.Name())
			}
			for k, st := range j.AllSteps() {
				if (st.Task == "") == (st.Checkout == "") {
					return nil, fmt.Errorf("job %s steps[%d]: only task: and checkout: steps are supported (not script, bash, pwsh or template)", j.Name(), k)
				}
				if st.Task != "" && !strings.Contains(st.Task, "@") {
					return nil, fmt.Errorf("job %s steps[%d]: task %q needs a major version, e.g. %s@1", j.Name(), k, st.Task, st.Task)
				}
			}
		}
	}
	return &p, nil
}
