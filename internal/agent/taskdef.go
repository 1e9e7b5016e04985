package agent

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Definition is the part of a task's task.json that the executable uses: the
// declared inputs (names, labels, types, defaults, pick-list options, visible
// rules) and output variables. The same file the agent reads is embedded in
// the executable (package tasks), so labels in error messages and defaults in
// local mode cannot drift from what the user sees in the pipeline editor.
type Definition struct {
	ID              string      `json:"id"`
	Name            string      `json:"name"`
	FriendlyName    string      `json:"friendlyName"`
	Description     string      `json:"description"`
	Groups          []GroupDef  `json:"groups"`
	Inputs          []InputDef  `json:"inputs"`
	OutputVariables []OutputDef `json:"outputVariables"`
	Version         struct {
		Major int `json:"Major"`
		Minor int `json:"Minor"`
		Patch int `json:"Patch"`
	} `json:"version"`
}

// InputDef is one entry of task.json "inputs".
type InputDef struct {
	Name         string            `json:"name"`
	Type         string            `json:"type"` // string, multiLine, boolean, int, pickList, radio, filePath, connectedService:<kind>, ...
	Label        string            `json:"label"`
	DefaultValue string            `json:"defaultValue"`
	Required     bool              `json:"required"`
	Options      map[string]string `json:"options"`
	Properties   map[string]string `json:"properties"`
	VisibleRule  string            `json:"visibleRule"`
	GroupName    string            `json:"groupName"`
	HelpMarkDown string            `json:"helpMarkDown"`
	Aliases      []string          `json:"aliases"`
}

// GroupDef is one entry of task.json "groups": a titled section of inputs.
type GroupDef struct {
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
	VisibleRule string `json:"visibleRule"`
}

// OutputDef is one entry of task.json "outputVariables".
type OutputDef struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// ParseDefinition reads a task.json. The file may start with a UTF-8 BOM, as
// files written by some editors do.
func ParseDefinition(data []byte) (Definition, error) {
	var d Definition
	data = []byte(strings.TrimPrefix(string(data), "\uFEFF"))
	if err := json.Unmarshal(data, &d); err != nil {
		return Definition{}, fmt.Errorf("task.json: %w", err)
	}
	if d.Name == "" {
		return Definition{}, fmt.Errorf("task.json: no task name")
	}
	return d, nil
}

// Input returns the declaration of an input by name (or alias).
func (d Definition) Input(name string) (InputDef, bool) {
	for _, in := range d.Inputs {
		if strings.EqualFold(in.Name, name) {
			return in, true
		}
		for _, a := range in.Aliases {
			if strings.EqualFold(a, name) {
				return in, true
			}
		}
	}
	return InputDef{}, false
}

// IsOutput reports whether name is declared in outputVariables.
func (d Definition) IsOutput(name string) bool {
	for _, o := range d.OutputVariables {
		if o.Name == name {
			return true
		}
	}
	return false
}

// visible evaluates an input's visibleRule ("a = x", "a != x", "a == x",
// joined by && or ||, as the task editor does) against the given input
// values. An input without a rule is visible. The agent fills hidden inputs
// with their defaults, so "required" only holds for visible ones.
func (d Definition) visible(in InputDef, value func(name string) string) bool {
	rule := strings.TrimSpace(in.VisibleRule)
	if rule == "" {
		return true
	}
	and := !strings.Contains(rule, "||")
	sep := "&&"
	if !and {
		sep = "||"
	}
	for _, clause := range strings.Split(rule, sep) {
		ok := evalClause(strings.TrimSpace(clause), value)
		if and && !ok {
			return false
		}
		if !and && ok {
			return true
		}
	}
	return and
}

func evalClause(clause string, value func(string) string) bool {
	for _, op := range []string{"!=", "==", "=", "NotEndsWith", "EndsWith", "NotContains", "Contains"} {
		left, right, ok := strings.Cut(clause, " "+op+" ")
		if !ok {
			left, right, ok = strings.Cut(clause, op)
		}
		if !ok {
			continue
		}
		got := value(strings.TrimSpace(left))
		want := strings.TrimSpace(right)
		switch op {
		case "!=":
			return !strings.EqualFold(got, want)
		case "==", "=":
			return strings.EqualFold(got, want)
		case "EndsWith":
			return strings.HasSuffix(strings.ToLower(got), strings.ToLower(want))
		case "NotEndsWith":
			return !strings.HasSuffix(strings.ToLower(got), strings.ToLower(want))
		case "Contains":
			return strings.Contains(strings.ToLower(got), strings.ToLower(want))
		case "NotContains":
			return !strings.Contains(strings.ToLower(got), strings.ToLower(want))
		}
	}
	return true
}
