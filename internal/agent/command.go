package agent

import (
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Command is one logging command: ##vso[Area.Event k=v;k=v;]Message.
type Command struct {
	Area       string // "task", "build", "artifact"
	Event      string // "setvariable", "complete", ...
	Properties map[string]string
	Message    string
}

const commandPrefix = "##vso["

// Escaping follows the agent (src/Agent.Sdk/CommandStringConvertor.cs) and
// azure-pipelines-task-lib (node/taskcommand.ts): the percent sign is escaped
// first and as %AZP25 (not %25), so that unescaping cannot be fooled.
var (
	propertyEscaper = strings.NewReplacer("%", "%AZP25", "\r", "%0D", "\n", "%0A", "]", "%5D", ";", "%3B")
	messageEscaper  = strings.NewReplacer("%", "%AZP25", "\r", "%0D", "\n", "%0A")
)

// unescape reverses both escapes; %AZP25 is resolved last, as the agent does,
// so "%AZP250A" comes back as "%0A" and not as a line feed.
func unescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	s = strings.NewReplacer("%3B", ";", "%0D", "\r", "%0A", "\n", "%5D", "]").Replace(s)
	return strings.ReplaceAll(s, "%AZP25", "%")
}

// String formats the command as one line (without the trailing newline).
// Properties are written in sorted order so that output is reproducible;
// empty property values are left out, as task-lib does.
func (c Command) String() string {
	var b strings.Builder
	b.WriteString(commandPrefix)
	b.WriteString(c.Area)
	b.WriteByte('.')
	b.WriteString(c.Event)
	keys := slices.Sorted(maps.Keys(c.Properties))
	first := true
	for _, k := range keys {
		v := c.Properties[k]
		if v == "" {
			continue
		}
		if first {
			b.WriteByte(' ')
			first = false
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(propertyEscaper.Replace(v))
		b.WriteByte(';')
	}
	b.WriteByte(']')
	b.WriteString(messageEscaper.Replace(c.Message))
	return b.String()
}

// ParseCommand finds a logging command in one line of output the way the agent
// does (src/Microsoft.VisualStudio.Services.Agent/Command.cs TryParse): the
// first "##vso[" anywhere in the line, the command up to the first "]",
// properties split on ";" and at the first "=", values and message unescaped.
// Property names are matched case-insensitively by the agent; they are
// returned lower-cased, as are area and event.
func ParseCommand(line string) (Command, bool) {
	line = strings.TrimRight(line, "\r\n")
	start := strings.Index(line, commandPrefix)
	if start < 0 {
		return Command{}, false
	}
	rest := line[start+len(commandPrefix):]
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return Command{}, false
	}
	head, message := rest[:end], rest[end+1:]
	name, props, _ := strings.Cut(head, " ")
	// commandName.Split('.', RemoveEmptyEntries) must give exactly two parts.
	parts := strings.FieldsFunc(name, func(r rune) bool { return r == '.' })
	if len(parts) != 2 {
		return Command{}, false
	}
	area, event := parts[0], parts[1]
	cmd := Command{Area: strings.ToLower(area), Event: strings.ToLower(event), Properties: map[string]string{}, Message: unescape(message)}
	for _, p := range strings.Split(props, ";") {
		// Split(new[]{'='}, count: 2, RemoveEmptyEntries): "k=" and "=v" carry no property.
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" || v == "" {
			continue
		}
		cmd.Properties[strings.ToLower(k)] = unescape(v)
	}
	return cmd, true
}

// Neutralize makes text that came from elsewhere (a server's error message, a
// remote run's log, a notebook's output) safe to print. The agent runs a
// "##vso[" found anywhere in a line, and formats lines carrying "##[". We
// break both the way the agent's own neutraliser does
// (Agent.Sdk/Util/StringUtil.cs: Regex.Replace(input, "##vso", "**vso",
// IgnoreCase)), extended to "##[".
func Neutralize(text string) string {
	if !strings.Contains(text, "##") {
		return text
	}
	return hashCommand.ReplaceAllStringFunc(text, func(m string) string { return "**" + m[2:] })
}

var hashCommand = regexp.MustCompile(`(?i)##(vso|\[)`)
