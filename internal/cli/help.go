package cli

import (
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/buildinfo"
)

// usage is the help of the executable.
func usage(w io.Writer, registry Registry) {
	fmt.Fprintf(w, `brickferry %s: MLOps on Azure Databricks, as Azure Pipelines tasks.

Usage:
  brickferry <Task>                       run a task with the environment the agent gives it
  brickferry <Task> --input name=value... run a task from a terminal (local mode)
          [--inputs-file step.yml] [--var name=value] [--secret name[=value]]
          [--profile name] [--target-profile name] [--raw]
  brickferry help <Task> [input]          a task's inputs, outputs and an example; one input in full
  brickferry doctor --input name=value... how the connection inputs resolve, and missing Unity Catalog
                                          grants (inputs model, inputTable, outputTable); changes nothing
  brickferry version                      print the version

Tasks: %s

In local mode the workspace comes from the task's inputs and --var/--secret, or else from the
Databricks unified auth settings: DATABRICKS_HOST with DATABRICKS_TOKEN (or DATABRICKS_CLIENT_ID and
DATABRICKS_CLIENT_SECRET), or a profile of ~/.databrickscfg (DATABRICKS_CONFIG_PROFILE, --profile).
A CA certificate to trust goes in AGENT_CAINFO, as the agent's Agent.CAInfo.
`, buildinfo.CurrentVersion(), strings.Join(registry.Names(), ", "))
}

// taskHelp writes what a task does, its inputs by group (YAML name, label,
// accepted values and default, when it is required or used), its output
// variables, an example step and how to run that step from a terminal.
func taskHelp(w io.Writer, task Task) {
	def := task.Definition
	ref := fmt.Sprintf("%s@%d", def.Name, def.Version.Major)
	fmt.Fprintf(w, "%s: %s\n%s\n\n", ref, def.FriendlyName, wrap(stripLinks(def.Description), 100, ""))
	fmt.Fprintf(w, "Usage:\n  in a pipeline:   - task: %s, with the inputs below under inputs:\n", ref)
	fmt.Fprintf(w, "  from a terminal: brickferry %s --input name=value ... (brickferry help for the flags)\n", def.Name)
	fmt.Fprintf(w, "  one input:       brickferry help %s <input>\n\n", def.Name)

	fmt.Fprintln(w, "Inputs (inputs left out take their default):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, g := range groups(def) {
		fmt.Fprintf(tw, "%s\n", g.title)
		for _, in := range g.inputs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", in.Name, in.Label, inputSummary(in))
		}
	}
	_ = tw.Flush()

	if len(def.OutputVariables) > 0 {
		fmt.Fprintf(w, "\nOutput variables (name the step, then use $(<step name>.<variable>)):\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, o := range def.OutputVariables {
			fmt.Fprintf(tw, "  %s\t%s\n", o.Name, o.Description)
		}
		_ = tw.Flush()
	}

	if task.Example != "" {
		fmt.Fprintf(w, "\nExample:\n%s", indent(task.Example, "  "))
		fmt.Fprintf(w, "\nRun the example from a terminal: save it as step.yml, then\n  brickferry %s --inputs-file step.yml%s\n",
			def.Name, exampleVars(task.Example))
	}
}

// inputHelp writes everything task.json says about one input.
func inputHelp(w io.Writer, def agent.Definition, in agent.InputDef) {
	fmt.Fprintf(w, "%s (%s) of %s@%d\n", in.Name, in.Label, def.Name, def.Version.Major)
	if len(in.Aliases) > 0 {
		fmt.Fprintf(w, "  also accepted as: %s\n", strings.Join(in.Aliases, ", "))
	}
	fmt.Fprintf(w, "  %s\n", inputSummary(in))
	if len(in.Options) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  values:")
		for _, k := range slices.Sorted(maps.Keys(in.Options)) {
			fmt.Fprintf(tw, "    %s\t%s\n", k, in.Options[k])
		}
		_ = tw.Flush()
	}
	if in.HelpMarkDown != "" {
		fmt.Fprintf(w, "\n%s\n", wrap(stripLinks(in.HelpMarkDown), 100, "  "))
	}
}

type inputGroup struct {
	title  string
	inputs []agent.InputDef
}

// groups lists the inputs by task.json group, in the order of the file;
// inputs outside a group come first.
func groups(def agent.Definition) []inputGroup {
	out := []inputGroup{{title: "General"}}
	index := map[string]int{"": 0}
	for _, g := range def.Groups {
		title := g.DisplayName
		if g.VisibleRule != "" {
			title += " (when " + g.VisibleRule + ")"
		}
		index[g.Name] = len(out)
		out = append(out, inputGroup{title: title})
	}
	for _, in := range def.Inputs {
		i, ok := index[in.GroupName]
		if !ok {
			i = 0
		}
		out[i].inputs = append(out[i].inputs, in)
	}
	return slices.DeleteFunc(out, func(g inputGroup) bool { return len(g.inputs) == 0 })
}

// inputSummary says what an input takes, its default and when it is
// required or used: "one of: a, b (default a); required when x = y".
func inputSummary(in agent.InputDef) string {
	var parts []string
	kind := inputKind(in)
	if in.DefaultValue != "" && len(in.Options) == 0 {
		kind += ", default " + oneLine(in.DefaultValue)
	}
	parts = append(parts, kind)
	switch {
	case in.Required && in.VisibleRule == "":
		parts = append(parts, "required")
	case in.Required:
		parts = append(parts, "required when "+in.VisibleRule)
	case in.VisibleRule != "":
		parts = append(parts, "used when "+in.VisibleRule)
	}
	return strings.Join(parts, "; ")
}

func inputKind(in agent.InputDef) string {
	if len(in.Options) > 0 {
		keys := slices.Sorted(maps.Keys(in.Options))
		for i, k := range keys {
			if strings.EqualFold(k, in.DefaultValue) {
				keys[i] += " (default)"
			}
		}
		kind := "one of: " + strings.Join(keys, ", ")
		if strings.EqualFold(in.Properties["EditableOptions"], "true") {
			kind += ", or any value"
		}
		return kind
	}
	switch t := in.Type; {
	case t == "boolean":
		return "true or false"
	case t == "int":
		return "a whole number"
	case t == "multiLine":
		return "text, several lines"
	case t == "filePath":
		return "a file path"
	case strings.EqualFold(t, "connectedService:AzureRM"):
		return "the name of an Azure Resource Manager service connection"
	case strings.HasPrefix(t, "connectedService:"):
		return "the name of a service connection of type " + strings.TrimPrefix(t, "connectedService:")
	default:
		return "text"
	}
}

// mdLink is a Markdown link [text](url).
var mdLink = regexp.MustCompile(`\[([^\]]*)\]\(([^)]*)\)`)

// stripLinks writes a Markdown link as its text with the URL in brackets,
// and leaves out a link to a page of the project's docs/ (a "Learn more"
// that this help stands for, and a path that means nothing in a terminal).
func stripLinks(s string) string {
	return strings.TrimSpace(mdLink.ReplaceAllStringFunc(s, func(m string) string {
		p := mdLink.FindStringSubmatch(m)
		if strings.Contains(p[2], "://") {
			return p[1] + " <" + p[2] + ">"
		}
		return ""
	}))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// wrap folds text at width columns, each line prefixed; blank lines are kept.
func wrap(s string, width int, prefix string) string {
	var out []string
	for _, para := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		line := prefix
		for _, word := range strings.Fields(para) {
			if len(line) > len(prefix) && len(line)+1+len(word) > width {
				out = append(out, line)
				line = prefix
			}
			if len(line) > len(prefix) {
				line += " "
			}
			line += word
		}
		out = append(out, strings.TrimRight(line, " "))
	}
	return strings.Join(out, "\n")
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// exampleVars is a --var flag for every $(name) macro of an example.
func exampleVars(example string) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, m := range macroPattern.FindAllStringSubmatch(example, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			fmt.Fprintf(&b, " --var %s=...", m[1])
		}
	}
	return b.String()
}
