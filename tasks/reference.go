package tasks

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Reference renders the inputs and outputs of a task.json as Markdown: the
// generated part of docs/tasks/<Name>.md, so the documentation cannot drift
// from what the pipeline editor shows (TestReferenceDocsAreCurrent).
func Reference(taskJSON []byte) (string, error) {
	var t struct {
		Name         string `json:"name"`
		FriendlyName string `json:"friendlyName"`
		Version      struct{ Major int }
		Groups       []struct {
			Name        string `json:"name"`
			DisplayName string `json:"displayName"`
		} `json:"groups"`
		Inputs []struct {
			Name         string            `json:"name"`
			Aliases      []string          `json:"aliases"`
			Type         string            `json:"type"`
			Label        string            `json:"label"`
			DefaultValue string            `json:"defaultValue"`
			Required     bool              `json:"required"`
			Options      map[string]string `json:"options"`
			Properties   map[string]string `json:"properties"`
			VisibleRule  string            `json:"visibleRule"`
			GroupName    string            `json:"groupName"`
			HelpMarkDown string            `json:"helpMarkDown"`
		} `json:"inputs"`
		OutputVariables []struct {
			Name        string `json:"name"`
			Description string `json:"description"`
		} `json:"outputVariables"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(string(taskJSON), "\uFEFF")), &t); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### Inputs of `%s@%d`\n\n", t.Name, t.Version.Major)
	groupTitle := map[string]string{"": "General"}
	order := []string{""}
	for _, g := range t.Groups {
		groupTitle[g.Name] = g.DisplayName
		order = append(order, g.Name)
	}
	for _, group := range order {
		var rows []string
		for _, in := range t.Inputs {
			if in.GroupName != group {
				continue
			}
			name := "`" + in.Name + "`"
			if len(in.Aliases) > 0 {
				name += " (alias `" + strings.Join(in.Aliases, "`, `") + "`)"
			}
			kind := in.Type
			if len(in.Options) > 0 {
				keys := make([]string, 0, len(in.Options))
				for k := range in.Options {
					keys = append(keys, "`"+k+"`")
				}
				sort.Strings(keys)
				kind += ": " + strings.Join(keys, ", ")
			}
			if in.Type == "pickList" && len(in.Options) == 0 && strings.EqualFold(in.Properties["EditableOptions"], "true") {
				kind = "string (a pick list filled from a Databricks service connection in the classic editor)"
			}
			req := ""
			if in.Required {
				req = "yes"
			}
			if in.VisibleRule != "" {
				req += " (when `" + in.VisibleRule + "`)"
			}
			def := ""
			if in.DefaultValue != "" {
				def = "`" + cell(in.DefaultValue) + "`"
			}
			rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s | %s |", name, cell(in.Label), cell(kind), strings.TrimSpace(req), def, cell(in.HelpMarkDown)))
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(&b, "#### %s\n\n| input | label | type | required | default | help |\n|---|---|---|---|---|---|\n%s\n\n", groupTitle[group], strings.Join(rows, "\n"))
	}
	fmt.Fprintf(&b, "### Output variables\n\n| variable | meaning |\n|---|---|\n")
	for _, o := range t.OutputVariables {
		fmt.Fprintf(&b, "| `%s` | %s |\n", o.Name, cell(o.Description))
	}
	return b.String(), nil
}

// cell makes text fit a table cell of docs/tasks/<Name>.md: a link to a
// page of docs/ (relative to the repository root in task.json) becomes
// relative to docs/tasks/.
func cell(s string) string {
	return strings.NewReplacer("|", "\\|", "\r\n", " ", "\n", " ", "](docs/", "](../").Replace(s)
}

// Generated-section markers in docs/tasks/<Name>.md.
const (
	BeginReference = "<!-- BEGIN GENERATED FROM task.json: run `go test ./tasks -update` -->"
	EndReference   = "<!-- END GENERATED -->"
)

// SpliceReference replaces the generated section of a document (or appends
// one when the document has none).
func SpliceReference(doc, reference string) string {
	section := BeginReference + "\n" + reference + EndReference
	i := strings.Index(doc, BeginReference)
	j := strings.Index(doc, EndReference)
	if i < 0 || j < i {
		return strings.TrimRight(doc, "\n") + "\n\n## Reference\n\n" + section + "\n"
	}
	return doc[:i] + section + doc[j+len(EndReference):]
}
