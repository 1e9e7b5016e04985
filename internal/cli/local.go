package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/brickferry/brickferry/internal/agent"
)

// localFlags are the flags of local mode: `brickferry <Task> --input k=v ...`.
type localFlags struct {
	inputs        []string
	inputsFile    string
	vars          []string
	secrets       []string
	profile       string
	targetProfile string
	raw           bool
}

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

const flagList = "flags: --input name=value, --inputs-file file, --var name=value, --secret name[=value], --profile name, --target-profile name, --raw, --help"

// parseLocalFlags parses the flags after the task name. -h, -help and
// --help return flag.ErrHelp.
func parseLocalFlags(args []string) (localFlags, error) {
	var f localFlags
	fs := flag.NewFlagSet("brickferry", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var((*repeated)(&f.inputs), "input", "a task input, name=value (repeatable)")
	fs.StringVar(&f.inputsFile, "inputs-file", "", "a pipeline step (- task: X@1 with inputs:), its inputs: block, or a mapping of input names to values (YAML or JSON)")
	fs.Var((*repeated)(&f.vars), "var", "a pipeline variable, name=value (repeatable); $(name) in inputs is replaced by it")
	fs.Var((*repeated)(&f.secrets), "secret", "a secret pipeline variable, name=value or name alone (read from the environment or asked for; masked in the output)")
	fs.StringVar(&f.profile, "profile", "", "a profile of ~/.databrickscfg for the task's workspace (like DATABRICKS_CONFIG_PROFILE)")
	fs.StringVar(&f.targetProfile, "target-profile", "", "a profile of ~/.databrickscfg for the target workspace of MLflowPromote copy")
	fs.BoolVar(&f.raw, "raw", false, "print the raw ##vso logging commands instead of readable lines")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, err
		}
		return f, fmt.Errorf("%w (%s)", err, flagList)
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q (%s)", fs.Arg(0), flagList)
	}
	return f, nil
}

// localRun is what local mode prepares for a task: the environment the agent
// would give it, lines to print before the run, and what to remove after it.
type localRun struct {
	env     agent.Env
	notes   []string
	cleanup func()
}

// prepare builds what the agent would give the task: the process environment
// without stray INPUT_ variables, the given variables and secret variables,
// the inputs (from the file, then --input; $(name) macros of the variables
// replaced as the agent does), and, when the inputs say nothing about the
// workspace, a connection from the Databricks unified auth settings. Inputs
// left out take their task.json defaults. ask reads a secret from the
// terminal (nil when there is none).
func (f localFlags) prepare(base agent.Env, def agent.Definition, ask func(prompt string) (string, error)) (*localRun, error) {
	run := &localRun{env: agent.Env{}, cleanup: func() {}}
	for k, v := range base {
		if !strings.HasPrefix(k, "INPUT_") {
			run.env[k] = v
		}
	}
	vars, err := f.variables(base, ask)
	if err != nil {
		return nil, err
	}
	for _, v := range vars {
		key := agent.VariableKey(v.name)
		if v.secret {
			run.env["SECRET_"+key] = v.value
		} else {
			run.env[key] = v.value
		}
	}
	inputs, err := f.inputValues(def)
	if err != nil {
		return nil, err
	}
	for name, value := range inputs {
		run.env["INPUT_"+agent.VariableKey(name)] = expandMacros(value, vars)
	}
	if err := f.connect(run, def, ask); err != nil {
		return nil, err
	}
	if run.env["AGENT_TEMPDIRECTORY"] == "" {
		dir, err := os.MkdirTemp("", "brickferry-")
		if err != nil {
			return nil, err
		}
		run.env["AGENT_TEMPDIRECTORY"] = dir
		run.cleanup = func() { _ = os.RemoveAll(dir) }
	}
	return run, nil
}

// variable is a pipeline variable given with --var or --secret.
type variable struct {
	name, value string
	secret      bool
}

// variables reads --var name=value and --secret name[=value]. A secret
// without a value is read from the environment variable of its name (as
// written, as the agent would name it, or with '-' as '_':
// databricks-token → DATABRICKS_TOKEN), else asked for on the terminal.
func (f localFlags) variables(env agent.Env, ask func(string) (string, error)) ([]variable, error) {
	var out []variable
	var errs []error
	for _, kv := range f.vars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			errs = append(errs, fmt.Errorf("--var %q: write name=value", kv))
			continue
		}
		out = append(out, variable{name: strings.TrimSpace(k), value: v})
	}
	for _, kv := range f.secrets {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if k == "" {
			errs = append(errs, fmt.Errorf("--secret %q: write name or name=value", kv))
			continue
		}
		if !ok {
			var err error
			if v, err = secretValue(k, env, ask); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		out = append(out, variable{name: k, value: v, secret: true})
	}
	return out, errors.Join(errs...)
}

func secretValue(name string, env agent.Env, ask func(string) (string, error)) (string, error) {
	key := agent.VariableKey(name)
	shell := strings.ReplaceAll(key, "-", "_")
	for _, k := range []string{name, key, shell} {
		if v := env[k]; v != "" {
			return v, nil
		}
	}
	if ask == nil {
		return "", fmt.Errorf("--secret %s: no value: set the environment variable %s, write --secret %s=<value>, or run in a terminal to be asked for it", name, shell, name)
	}
	v, err := ask(fmt.Sprintf("%s (secret, not shown): ", name))
	if err != nil {
		return "", fmt.Errorf("--secret %s: reading it from the terminal: %w", name, err)
	}
	if v = strings.TrimRight(v, "\r\n"); v == "" {
		return "", fmt.Errorf("--secret %s: no value was typed", name)
	}
	return v, nil
}

// macroPattern is a $(name) macro.
var macroPattern = regexp.MustCompile(`\$\(([^()\s]+)\)`)

// expandMacros replaces $(name) with the value of the variable name (matched
// as the agent matches names, case-insensitively, '.' and ' ' as '_'). A
// macro of an undefined variable stays as it is, as under the agent, so the
// task reports it; a replaced value is not expanded again.
func expandMacros(s string, vars []variable) string {
	return macroPattern.ReplaceAllStringFunc(s, func(m string) string {
		name := macroPattern.FindStringSubmatch(m)[1]
		for i := len(vars) - 1; i >= 0; i-- { // the last one given wins
			if agent.VariableKey(vars[i].name) == agent.VariableKey(name) {
				return vars[i].value
			}
		}
		return m
	})
}

// inputValues reads the inputs file, then --input, checking every name
// against task.json. Names are returned as task.json declares them.
func (f localFlags) inputValues(def agent.Definition) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	set := func(where, name, value string) {
		d, ok := def.Input(name)
		if !ok {
			errs = append(errs, fmt.Errorf("%stask %s has no input %q%s (brickferry help %s lists them)",
				where, def.Name, name, agent.Suggestion(name, inputNames(def)), def.Name))
			return
		}
		out[d.Name] = value
	}
	if f.inputsFile != "" {
		values, err := readInputsFile(f.inputsFile, def)
		if err != nil {
			return nil, err
		}
		for _, kv := range values {
			set(f.inputsFile+": ", kv.Key, kv.Value)
		}
	}
	for _, kv := range f.inputs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("--input %q: write name=value", kv))
			continue
		}
		set("", strings.TrimSpace(k), v)
	}
	return out, errors.Join(errs...)
}

func inputNames(def agent.Definition) []string {
	names := make([]string, 0, len(def.Inputs))
	for _, in := range def.Inputs {
		names = append(names, in.Name)
		names = append(names, in.Aliases...)
	}
	return names
}
