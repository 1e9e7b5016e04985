package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// InputError is a bad task input: it names the input by the label the user
// sees in the pipeline editor (and by its YAML name) and says what is accepted.
type InputError struct {
	Name    string // YAML name, e.g. "timeoutMinutes"
	Label   string // label in the classic editor, e.g. "Timeout (minutes)"
	Problem string // what is wrong and what would be valid
}

func (e *InputError) Error() string {
	if e.Label == "" || e.Label == e.Name {
		return fmt.Sprintf("input %s: %s", e.Name, e.Problem)
	}
	return fmt.Sprintf("input '%s' (%s): %s", e.Label, e.Name, e.Problem)
}

// Inputs reads a task's inputs from the environment and validates them
// against the task's Definition. Each accessor records a problem instead of
// returning an error, so a task reads all its inputs into its options and then
// reports every bad input at once through Err, before any remote call.
type Inputs struct {
	def  Definition
	env  Env
	errs []error
	// macro holds the inputs whose value kept an unexpanded $(...) macro:
	// that is their one problem, so Fail ignores further ones.
	macro map[string]bool
}

// InputsFrom returns the task's inputs as the agent passed them in env.
func (d Definition) InputsFrom(env Env) *Inputs { return &Inputs{def: d, env: env} }

// Err returns every input problem found so far (joined), or nil.
func (in *Inputs) Err() error { return errors.Join(in.errs...) }

// Fail records a problem with an input found by the task's own validation
// (e.g. two inputs that cannot be combined). An input whose value is an
// unexpanded macro already has its problem: nothing more is said about it.
func (in *Inputs) Fail(name, format string, args ...any) {
	if in.macro[name] {
		return
	}
	in.errs = append(in.errs, &InputError{Name: name, Label: in.decl(name).Label, Problem: fmt.Sprintf(format, args...)})
}

// decl returns the declaration of an input. Reading an input that task.json
// does not declare is a programming error, caught by every test that runs the
// task.
func (in *Inputs) decl(name string) InputDef {
	d, ok := in.def.Input(name)
	if !ok {
		panic(fmt.Sprintf("task %s reads input %q, which its task.json does not declare", in.def.Name, name))
	}
	return d
}

// raw is the input's value: INPUT_<NAME> as the agent passes it (trimmed), or
// the task.json default when the variable is absent (local mode).
func (in *Inputs) raw(d InputDef) string {
	for _, n := range append([]string{d.Name}, d.Aliases...) {
		if v, ok := in.env["INPUT_"+VariableKey(n)]; ok {
			return strings.TrimSpace(v)
		}
	}
	return strings.TrimSpace(d.DefaultValue)
}

// macroPattern is a macro the agent left as it was. The agent replaces
// $(name) with the variable's value, for any text between "$(" and the next
// ")", and leaves the macro unchanged when no variable has that name
// (azure-pipelines-agent src/Microsoft.VisualStudio.Services.Agent/Util/VarUtil.cs
// ExpandValues). Names with white space are not taken for macros, so that
// text such as "$( x )" in a parameter stays a value.
var macroPattern = regexp.MustCompile(`\$\(([^()\s]+)\)`)

// read is the value every accessor starts from: raw, or "" (and the input's
// one problem recorded) when the value still holds an unexpanded macro, so
// that no task mistakes "$(promote.modelUri)" for a model URI, a cluster id
// or a version number.
func (in *Inputs) read(d InputDef) string {
	v := in.raw(d)
	found := macroPattern.FindAllStringSubmatch(v, -1)
	if len(found) == 0 {
		return v
	}
	var names []string
	for _, m := range found {
		if !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	if in.macro == nil {
		in.macro = map[string]bool{}
	}
	if !in.macro[d.Name] {
		in.macro[d.Name] = true
		in.errs = append(in.errs, &InputError{Name: d.Name, Label: d.Label, Problem: macroProblem(names)})
	}
	return ""
}

// macroProblem says which variables were not defined and what to check.
func macroProblem(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "$(" + Neutralize(n) + ")"
	}
	what := "the macro " + quoted[0] + " was not expanded: no variable " + Neutralize(names[0]) + " is"
	if len(names) > 1 {
		what = "the macros " + strings.Join(quoted, ", ") + " were not expanded: no variables of these names are"
	}
	return what + " defined for this step. Define it (a secret variable, or a variable group linked to the pipeline), or check the name: " +
		"an output variable of an earlier step of the same job is $(stepName.variable), and one of another job must be mapped into this job's variables first"
}

func (in *Inputs) value(name string) string {
	d, ok := in.def.Input(name)
	if !ok {
		return ""
	}
	return in.raw(d)
}

// required reports (and records) a missing value for a visible required input.
func (in *Inputs) missing(d InputDef, v string, hint string) bool {
	if v != "" {
		return false
	}
	if d.Required && !in.macro[d.Name] && in.def.visible(d, in.value) {
		in.errs = append(in.errs, &InputError{Name: d.Name, Label: d.Label, Problem: "is required" + hint})
	}
	return true
}

// String returns a string or multiLine input ("" when empty; a required input
// that is empty is recorded as a problem).
func (in *Inputs) String(name string) string {
	d := in.decl(name)
	v := in.read(d)
	in.missing(d, v, "")
	return v
}

// Bool returns a boolean input: "true" or "false" (any case), as the agent
// passes it. An empty value is the declared default, or false.
func (in *Inputs) Bool(name string) bool {
	d := in.decl(name)
	v := in.read(d)
	switch strings.ToLower(v) {
	case "true":
		return true
	case "false", "":
		return false
	}
	in.errs = append(in.errs, &InputError{Name: d.Name, Label: d.Label, Problem: fmt.Sprintf("%q is not a boolean; use true or false", v)})
	return false
}

// Int returns an integer input within [lo, hi]. Empty means zero unless the
// input is required.
func (in *Inputs) Int(name string, lo, hi int) int {
	d := in.decl(name)
	v := in.read(d)
	if in.missing(d, v, fmt.Sprintf(": give a whole number from %d to %d", lo, hi)) {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		in.errs = append(in.errs, &InputError{Name: d.Name, Label: d.Label, Problem: fmt.Sprintf("%q is not a whole number from %d to %d", v, lo, hi)})
		return 0
	}
	return n
}

// Minutes returns a duration input given in minutes, decimals allowed (90,
// 0.5), within [lo, hi] and above zero. Empty means zero unless the input is
// required.
func (in *Inputs) Minutes(name string, lo, hi time.Duration) time.Duration {
	d := in.decl(name)
	v := in.read(d)
	if in.missing(d, v, "") {
		return 0
	}
	var dur time.Duration
	// Bounded as minutes first (false for NaN), so that a huge or infinite
	// number never reaches the conversion to a Duration.
	if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 && f <= hi.Minutes() {
		dur = time.Duration(f * float64(time.Minute))
	}
	if dur <= 0 || dur < lo {
		in.errs = append(in.errs, &InputError{Name: d.Name, Label: d.Label, Problem: fmt.Sprintf("%q is not a number of minutes %s (decimals allowed, e.g. 90 or 0.5)", Neutralize(v), minutesRange(lo, hi))})
		return 0
	}
	return dur
}

// minutesRange says which numbers of minutes Minutes accepts; the lower
// bound is rounded up to two decimals (one second is "0.02").
func minutesRange(lo, hi time.Duration) string {
	upTo := strconv.FormatFloat(hi.Minutes(), 'f', -1, 64)
	if lo <= 0 {
		return "above 0 and up to " + upTo
	}
	return "from " + strconv.FormatFloat(math.Ceil(lo.Minutes()*100)/100, 'f', -1, 64) + " to " + upTo
}

// Parse reads a string input with parse, a parser of the input's domain
// (e.g. modeluri.ParseName), and records parse's error as the input's
// problem. Empty gives what parse returns for nothing: T's zero value (a
// required input is recorded as missing).
func Parse[T any](in *Inputs, name string, parse func(string) (T, error)) T {
	v := in.String(name)
	if v == "" {
		var zero T
		return zero
	}
	t, err := parse(v)
	if err != nil {
		in.Fail(name, "%s", Neutralize(err.Error()))
	}
	return t
}

// Choice returns a pickList or radio input as the option key declared in
// task.json, matched case-insensitively so YAML users may write "Notebook" for
// "notebook". A value outside the options is a problem that lists them,
// unless the pick list is editable (properties.EditableOptions = True).
func (in *Inputs) Choice(name string) string {
	d := in.decl(name)
	v := in.read(d)
	if in.missing(d, v, "; choose one of: "+strings.Join(d.optionKeys(), ", ")) {
		return ""
	}
	for _, k := range d.optionKeys() {
		if strings.EqualFold(k, v) {
			return k
		}
	}
	if strings.EqualFold(d.Properties["EditableOptions"], "true") {
		return v
	}
	in.errs = append(in.errs, &InputError{Name: d.Name, Label: d.Label, Problem: fmt.Sprintf("%q is not one of: %s%s", v, strings.Join(d.optionKeys(), ", "), Suggestion(v, d.optionKeys()))})
	return ""
}

func (d InputDef) optionKeys() []string {
	return slices.Sorted(maps.Keys(d.Options))
}

// FilePath returns a filePath input, or "" when it was not given. The agent
// passes an empty filePath input as the sources directory, so that value also
// means "not given".
func (in *Inputs) FilePath(name string) string {
	d := in.decl(name)
	v := in.read(d)
	src := in.env.System().SourcesDir
	if v != "" && src != "" && filepath.Clean(v) == filepath.Clean(src) {
		v = ""
	}
	in.missing(d, v, ": give the path of a file")
	return v
}

// Connection returns the service connection a connectedService input names
// (nil when the input is empty and optional).
func (in *Inputs) Connection(name string) *Endpoint {
	d := in.decl(name)
	v := in.read(d)
	if in.missing(d, v, ": choose a service connection") {
		return nil
	}
	ep, err := in.env.Endpoint(v)
	if err != nil {
		in.errs = append(in.errs, &InputError{Name: d.Name, Label: d.Label, Problem: err.Error()})
		return nil
	}
	return &ep
}

// KeyValue is one name=value line of a multiLine input.
type KeyValue struct {
	Key, Value string
}

// KeyValues parses a multiLine input of "name=value" lines. Blank lines and
// lines starting with '#' are skipped; the value may contain '='; keys must be
// unique.
func (in *Inputs) KeyValues(name string) []KeyValue {
	d := in.decl(name)
	v := in.read(d)
	if in.missing(d, v, ": give one name=value per line") {
		return nil
	}
	var out []KeyValue
	seen := map[string]int{}
	for i, line := range strings.Split(strings.ReplaceAll(v, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, val, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			in.errs = append(in.errs, &InputError{Name: d.Name, Label: d.Label, Problem: fmt.Sprintf("line %d %q is not name=value", i+1, Neutralize(line))})
			continue
		}
		if prev, dup := seen[k]; dup {
			in.errs = append(in.errs, &InputError{Name: d.Name, Label: d.Label, Problem: fmt.Sprintf("line %d repeats %q from line %d", i+1, k, prev)})
			continue
		}
		seen[k] = i + 1
		out = append(out, KeyValue{Key: k, Value: strings.TrimSpace(val)})
	}
	return out
}

// Lines returns the non-blank lines of a multiLine input, trimmed, skipping
// '#' comments.
func (in *Inputs) Lines(name string) []string {
	d := in.decl(name)
	v := in.read(d)
	in.missing(d, v, "")
	var out []string
	for _, line := range strings.Split(strings.ReplaceAll(v, "\r\n", "\n"), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// JSON decodes a JSON input into dst and reports whether a value was given.
func (in *Inputs) JSON(name string, dst any) bool {
	d := in.decl(name)
	v := in.read(d)
	if in.missing(d, v, ": give a JSON value") {
		return false
	}
	if err := json.Unmarshal([]byte(v), dst); err != nil {
		in.errs = append(in.errs, &InputError{Name: d.Name, Label: d.Label, Problem: "is not valid JSON: " + err.Error()})
		return false
	}
	return true
}
