package agent

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Result is the value of task.complete's result property (case-sensitive on
// the agent's side).
type Result string

const (
	Succeeded           Result = "Succeeded"
	SucceededWithIssues Result = "SucceededWithIssues"
	Failed              Result = "Failed"
	Canceled            Result = "Canceled"
)

// Log writes what a task reports: plain log text for people and logging
// commands for the agent, on one stream (the agent reads commands from any
// line of stdout). It masks every registered secret, in the forms the agent's
// masker hides (see Masker), in everything it displays and in summary files,
// never in the value of a variable (the agent passes values as set and masks
// only what it displays); it neutralises "##vso[" in plain text and in the
// task.complete message, and writes task.complete at most once.
//
// In local mode (a person running `brickferry <Task>` outside a pipeline) the
// commands are rendered as readable lines instead ("output runId = 42").
type Log struct {
	mu        sync.Mutex
	w         io.Writer
	human     bool
	debug     bool
	tempDir   string
	hostType  string
	def       Definition
	masker    Masker
	told      map[string]bool // values handed to the agent with task.setsecret
	warnings  int
	errors    int
	completed bool
	summaries int
	explain   []Explainer
}

// LogOptions configures a Log.
type LogOptions struct {
	Human      bool       // render commands for a person (local mode)
	Debug      bool       // System.Debug: write debug lines
	TempDir    string     // where summary files are written (Agent.TempDirectory)
	HostType   string     // System.HostType: build tags are only allowed in builds
	Definition Definition // to know which variables are declared outputs
}

// NewLog returns a Log writing to w.
func NewLog(w io.Writer, opts LogOptions) *Log {
	return &Log{w: w, human: opts.Human, debug: opts.Debug, tempDir: opts.TempDir, hostType: opts.HostType, def: opts.Definition}
}

// Warnings is the number of warning issues written so far.
func (l *Log) Warnings() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.warnings
}

// Explainer rewrites an error so that it says what to fix. A workspace
// connection (auth.Workspace) is one: it explains a 401/403 with the
// connection method and what to change.
type Explainer interface {
	Explain(err error) error
}

// AddExplainer has Run pass each problem of the task's error through e
// before reporting it, after the explainers added before e. A task adds one
// per remote system it connects to (auth.Begin does it for the workspaces).
func (l *Log) AddExplainer(e Explainer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.explain = append(l.explain, e)
}

// explained is err passed through every explainer.
func (l *Log) explained(err error) error {
	l.mu.Lock()
	explain := slices.Clone(l.explain)
	l.mu.Unlock()
	for _, e := range explain {
		err = e.Explain(err)
	}
	return err
}

// mask replaces every registered secret, in each form the agent hides, with
// "***" (see Masker).
func (l *Log) mask(s string) string { return l.masker.Mask(s) }

func (l *Log) writeLine(s string) {
	_, _ = io.WriteString(l.w, s+"\n")
}

// command writes a logging command (masked), or its human rendering.
func (l *Log) command(c Command) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.commandLocked(c)
}

func (l *Log) commandLocked(c Command) {
	if l.human {
		if line := l.render(c); line != "" {
			l.writeLine(l.mask(line))
		}
		return
	}
	if !carriesValue(c) {
		c.Message = l.mask(c.Message)
	}
	for k, v := range c.Properties {
		c.Properties[k] = l.mask(v)
	}
	l.writeLine(c.String())
}

// carriesValue reports whether the command's message is a variable's value,
// which the agent stores as given (masking is for display only,
// Agent.Worker/TaskCommandExtension.cs SetVariable): a masked value would
// reach later steps as "***".
func carriesValue(c Command) bool {
	return c.Area == "task" && (c.Event == "setvariable" || c.Event == "settaskvariable")
}

func (l *Log) render(c Command) string {
	switch c.Area + "." + c.Event {
	case "task.setvariable":
		kind := "variable"
		if c.Properties["isoutput"] == "true" || l.def.IsOutput(c.Properties["variable"]) {
			kind = "output"
		}
		value := c.Message
		if c.Properties["issecret"] == "true" {
			kind, value = "secret "+kind, "***"
		}
		return fmt.Sprintf("%s %s = %s", kind, c.Properties["variable"], value)
	case "task.issue":
		return c.Properties["type"] + ": " + c.Message
	case "task.setprogress":
		return fmt.Sprintf("progress %s%% %s", c.Properties["value"], c.Message)
	case "task.uploadsummary":
		return "" // UploadSummary prints the summary itself
	case "task.prependpath":
		return "PATH += " + c.Message
	case "build.addbuildtag":
		return "build tag " + c.Message
	case "task.complete":
		msg := "result: " + c.Properties["result"]
		// A failure's message repeats the error lines above it: one line per problem.
		if c.Message != "" && !(c.Properties["result"] == string(Failed) && l.errors > 0) {
			msg += " (" + c.Message + ")"
		}
		return msg
	default:
		return ""
	}
}

// Info writes plain log text. Text is neutralised, so a message or a remote
// log line cannot become a logging command.
func (l *Log) Info(format string, args ...any) {
	l.text("", fmt.Sprintf(format, args...))
}

func (l *Log) text(prefix, s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		line = strings.ReplaceAll(line, "\r", " ")
		l.writeLine(prefix + Neutralize(l.mask(line)))
	}
}

// Debug writes a debug line, only when System.Debug is true.
func (l *Log) Debug(format string, args ...any) {
	if !l.debug {
		return
	}
	l.text("##[debug]", fmt.Sprintf(format, args...))
}

// DebugEnabled reports whether debug lines are written.
func (l *Log) DebugEnabled() bool { return l.debug }

// Section writes a highlighted heading line.
func (l *Log) Section(name string) { l.marker("##[section]", name) }

// Group starts a collapsible group in the log; EndGroup closes it.
func (l *Log) Group(name string) { l.marker("##[group]", name) }

// EndGroup closes the group opened by Group.
func (l *Log) EndGroup() { l.marker("##[endgroup]", "") }

func (l *Log) marker(marker, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	text = Neutralize(l.mask(strings.ReplaceAll(strings.ReplaceAll(text, "\r", " "), "\n", " ")))
	if l.human {
		switch marker {
		case "##[endgroup]":
			return
		default:
			l.writeLine("== " + text)
			return
		}
	}
	l.writeLine(marker + text)
}

// Warning writes a warning issue (shown in the run summary), neutralised
// since messages often quote a server. A task that
// wrote warnings ends SucceededWithIssues instead of Succeeded.
func (l *Log) Warning(format string, args ...any) {
	l.issue("warning", fmt.Sprintf(format, args...))
}

// Error writes an error issue. It does not fail the task by itself; the
// result is set by Complete.
func (l *Log) Error(format string, args ...any) {
	l.issue("error", fmt.Sprintf(format, args...))
}

// issue writes a task.issue: masked before it is neutralised, so that a
// secret holding "##vso" is still recognised.
func (l *Log) issue(kind, message string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch kind {
	case "warning":
		l.warnings++
	case "error":
		l.errors++
	}
	l.commandLocked(Command{Area: "task", Event: "issue", Properties: map[string]string{"type": kind}, Message: Neutralize(l.mask(message))})
}

// SetSecret registers a value the agent (and this Log) must mask from now on.
// Call it as soon as a secret is derived, before anything could print it.
// Each line is registered on its own, since the agent masks line by line.
func (l *Log) SetSecret(secret string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(strings.ReplaceAll(secret, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if len(line) < minSecretLength || l.told[line] {
			continue
		}
		if l.told == nil {
			l.told = map[string]bool{}
		}
		l.told[line] = true
		if !l.human {
			// Written unmasked on purpose: this line is how the agent learns
			// the value (and derives its encoded forms itself).
			l.writeLine(Command{Area: "task", Event: "setsecret", Message: line}.String())
		}
	}
	l.masker.Add(secret)
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// VariableOptions qualifies SetVariable.
type VariableOptions struct {
	Output   bool // isOutput: referenced as $(step.name) by later steps and jobs
	Secret   bool // issecret: masked, and given to later tasks as SECRET_<NAME>
	ReadOnly bool // isreadonly: later steps cannot overwrite it
}

var variableName = regexp.MustCompile(`^[A-Za-z0-9_.\-]+$`)

// SetVariable sets a pipeline variable for the steps after this one. A
// variable declared in task.json outputVariables is an output variable even
// without Output.
func (l *Log) SetVariable(name, value string, opts VariableOptions) {
	if !variableName.MatchString(name) {
		panic(fmt.Sprintf("invalid variable name %q", name))
	}
	if opts.Secret {
		// The agent refuses a secret with a line break; mask it before it is echoed.
		l.SetSecret(value)
	}
	props := map[string]string{"variable": name}
	if opts.Output || l.def.IsOutput(name) {
		props["isOutput"] = "true"
	}
	if opts.Secret {
		props["issecret"] = "true"
	}
	if opts.ReadOnly {
		props["isreadonly"] = "true"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if opts.Secret && !l.human {
		// The value must reach the agent unmasked; it is registered above.
		l.writeLine(Command{Area: "task", Event: "setvariable", Properties: props, Message: value}.String())
		return
	}
	l.commandLocked(Command{Area: "task", Event: "setvariable", Properties: props, Message: value})
}

// SetTaskVariable sets a variable of this step only (task.settaskvariable).
// The agent hands it back to this step alone, as VSTS_TASKVARIABLE_<NAME>
// (see Env.TaskVariable), each time it starts the step's handler, which
// includes the reruns of retryCountOnTaskFailure: they share the step's
// execution context (azure-pipelines-agent src/Agent.Worker/RetryHelper.cs
// RetryStep, Handlers/Handler.cs AddTaskVariablesToEnvironment).
func (l *Log) SetTaskVariable(name, value string) {
	if !variableName.MatchString(name) {
		panic(fmt.Sprintf("invalid variable name %q", name))
	}
	l.command(Command{Area: "task", Event: "settaskvariable", Properties: map[string]string{"variable": name}, Message: value})
}

// SetOutput sets an output variable of this step.
func (l *Log) SetOutput(name, value string) {
	l.SetVariable(name, value, VariableOptions{Output: true})
}

// Progress reports progress in percent (0..100) with a short text.
func (l *Log) Progress(percent int, text string) {
	percent = max(0, min(100, percent))
	l.command(Command{Area: "task", Event: "setprogress", Properties: map[string]string{"value": strconv.Itoa(percent)}, Message: text})
}

// PrependPath puts dir in front of PATH for the later steps of the job.
func (l *Log) PrependPath(dir string) {
	l.command(Command{Area: "task", Event: "prependpath", Message: dir})
}

// UploadSummary writes markdown to a file under Agent.TempDirectory and asks
// the agent to show it as a tab of the run summary, titled by the file name.
// It returns the file's path.
func (l *Log) UploadSummary(name, markdown string) (string, error) {
	l.mu.Lock()
	l.summaries++
	n := l.summaries
	dir := l.tempDir
	l.mu.Unlock()
	if dir == "" {
		dir = os.TempDir()
	}
	file := filepath.Join(dir, fmt.Sprintf("%s-%d.md", sanitizeFileName(name), n))
	if n == 1 {
		file = filepath.Join(dir, sanitizeFileName(name)+".md")
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	l.mu.Lock()
	masked := l.mask(markdown) // no masker reads the file: the agent uploads it as it is
	l.mu.Unlock()
	if err := os.WriteFile(abs, []byte(masked), 0o644); err != nil {
		return "", fmt.Errorf("writing the summary: %w", err)
	}
	if l.human {
		// Local mode removes its temporary folder at exit: show the summary
		// itself rather than a file that will be gone.
		l.marker("##[section]", "Summary: "+name)
		l.text("", strings.TrimRight(masked, "\n"))
		return abs, nil
	}
	l.command(Command{Area: "task", Event: "uploadsummary", Message: abs})
	return abs, nil
}

func sanitizeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, s)
}

// AddBuildTag tags the build. It does nothing outside a build (a release job
// would fail the step on build.addbuildtag) and reports whether it tagged.
func (l *Log) AddBuildTag(tag string) bool {
	if !strings.EqualFold(l.hostType, "build") {
		return false
	}
	l.command(Command{Area: "build", Event: "addbuildtag", Message: tag})
	return true
}

// Complete writes the task's result. Only the first call has an effect: the
// agent takes one task.complete per step.
func (l *Log) Complete(result Result, message string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.completed {
		return
	}
	l.completed = true
	message = Neutralize(l.mask(strings.ReplaceAll(strings.ReplaceAll(message, "\r", " "), "\n", " ")))
	l.commandLocked(Command{Area: "task", Event: "complete", Properties: map[string]string{"result": string(result)}, Message: message})
}

// Mask adds a value to the masked set without telling the agent, for secrets
// the agent already knows (secret variables, service connection parameters,
// the job token): the Log masks them too, in local mode as well.
func (l *Log) Mask(secret string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.masker.Add(secret)
}
