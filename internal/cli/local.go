package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/brickferry/brickferry/internal/agent"
)

// localFlags are the flags of local mode: `brickferry <Task> --input k=v ...`.
type localFlags struct {
	inputs     []string
	inputsFile string
	vars       []string
	secrets    []string
	raw        bool
}

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func parseLocalFlags(args []string) (localFlags, error) {
	var f localFlags
	fs := flag.NewFlagSet("brickferry", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var((*repeated)(&f.inputs), "input", "a task input, name=value (repeatable)")
	fs.StringVar(&f.inputsFile, "inputs-file", "", "a YAML or JSON file mapping input names to values")
	fs.Var((*repeated)(&f.vars), "var", "a pipeline variable, name=value (repeatable)")
	fs.Var((*repeated)(&f.secrets), "secret", "a secret pipeline variable, name=value (repeatable; masked in the output)")
	fs.BoolVar(&f.raw, "raw", false, "print the raw ##vso logging commands instead of readable lines")
	if err := fs.Parse(args); err != nil {
		return f, fmt.Errorf("%w (flags: --input name=value, --inputs-file file, --var name=value, --secret name=value, --raw)", err)
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q (flags: --input name=value, --inputs-file file, --var name=value, --secret name=value, --raw)", fs.Arg(0))
	}
	return f, nil
}

// environment builds what the agent would give the task: the process
// environment without stray INPUT_ variables, plus the given inputs, variables
// and secret variables. Inputs left out take their task.json defaults.
func (f localFlags) environment(base agent.Env, def agent.Definition) (agent.Env, error) {
	env := agent.Env{}
	for k, v := range base {
		if !strings.HasPrefix(k, "INPUT_") {
			env[k] = v
		}
	}
	if env["AGENT_TEMPDIRECTORY"] == "" {
		dir, err := os.MkdirTemp("", "brickferry-")
		if err != nil {
			return nil, err
		}
		env["AGENT_TEMPDIRECTORY"] = dir
	}
	set := func(name, value string) error {
		d, ok := def.Input(name)
		if !ok {
			return fmt.Errorf("task %s has no input %q; its inputs are: %s", def.Name, name, inputNames(def))
		}
		env["INPUT_"+agent.VariableKey(d.Name)] = value
		return nil
	}
	if f.inputsFile != "" {
		values, err := readInputsFile(f.inputsFile)
		if err != nil {
			return nil, err
		}
		for k, v := range values {
			if err := set(k, v); err != nil {
				return nil, fmt.Errorf("%s: %w", f.inputsFile, err)
			}
		}
	}
	for _, kv := range f.inputs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--input %q: write name=value", kv)
		}
		if err := set(strings.TrimSpace(k), v); err != nil {
			return nil, err
		}
	}
	for _, kv := range f.vars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--var %q: write name=value", kv)
		}
		env[agent.VariableKey(strings.TrimSpace(k))] = v
	}
	for _, kv := range f.secrets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--secret %q: write name=value", kv)
		}
		env["SECRET_"+agent.VariableKey(strings.TrimSpace(k))] = v
	}
	return env, nil
}

func inputNames(def agent.Definition) string {
	names := make([]string, 0, len(def.Inputs))
	for _, in := range def.Inputs {
		names = append(names, in.Name)
	}
	return strings.Join(names, ", ")
}

// readInputsFile reads a mapping of input names to values from YAML (which
// includes JSON). Booleans and numbers are written as the agent would pass
// them ("true", "42").
func readInputsFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the inputs file: %w", err)
	}
	var raw map[string]any
	if strings.EqualFold(filepath.Ext(path), ".json") {
		err = json.Unmarshal(data, &raw)
	} else {
		err = yaml.Unmarshal(data, &raw)
	}
	if err != nil {
		return nil, fmt.Errorf("%s is not a mapping of input names to values: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			out[k] = v
		case bool:
			out[k] = strconv.FormatBool(v)
		case int:
			out[k] = strconv.Itoa(v)
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case nil:
			out[k] = ""
		default:
			return nil, fmt.Errorf("%s: input %q must be a string, number or boolean", path, k)
		}
	}
	return out, nil
}
