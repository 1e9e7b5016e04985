package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/cli"
)

// run runs the command line in process and returns the exit code, stdout
// and stderr.
func run(t *testing.T, registry cli.Registry, p cli.Process) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	p.Stdout, p.Stderr = &stdout, &stderr
	code := cli.Main(context.Background(), p, registry)
	return code, stdout.String(), stderr.String()
}

func TestTaskHelp(t *testing.T) {
	r := cli.Tasks()
	for _, name := range r.Names() {
		t.Run(name, func(t *testing.T) {
			def := r[name].Definition
			code, help, stderr := run(t, r, cli.Process{Args: []string{"help", name}})
			require.Equal(t, 0, code, stderr)
			for _, args := range [][]string{{name, "--help"}, {strings.ToLower(name), "-h"}, {name, "--input", "x=y", "--help"}} {
				code, out, stderr := run(t, r, cli.Process{Args: args})
				assert.Equal(t, 0, code, stderr)
				assert.Equal(t, help, out, "%v prints the same help", args)
			}
			assert.True(t, strings.HasPrefix(help, fmt.Sprintf("%s@%d: %s\n", name, def.Version.Major, def.FriendlyName)), help)
			lines := strings.Split(help, "\n")
			for _, in := range def.Inputs {
				line := findLine(lines, "  "+in.Name+" ")
				if !assert.NotEmpty(t, line, "input %s is listed", in.Name) {
					continue
				}
				assert.Contains(t, line, in.Label)
				switch {
				case in.Required && in.VisibleRule == "":
					assert.True(t, strings.HasSuffix(line, "; required"), line)
				case in.Required:
					assert.Contains(t, line, "required when "+in.VisibleRule)
				case in.VisibleRule != "":
					assert.Contains(t, line, "used when "+in.VisibleRule)
				}
				if in.DefaultValue != "" && len(in.Options) == 0 {
					assert.Contains(t, line, "default "+in.DefaultValue)
				}
				for k := range in.Options {
					assert.Contains(t, line, k)
				}
			}
			for _, o := range def.OutputVariables {
				assert.NotEmpty(t, findLine(lines, "  "+o.Name+" "), "output %s is listed", o.Name)
			}
			require.NotEmpty(t, r[name].Example, "tasks/%sV%d/example.yml", name, def.Version.Major)
			assert.Contains(t, help, "Example:\n  - task: "+fmt.Sprintf("%s@%d", name, def.Version.Major))
			assert.Contains(t, help, "brickferry "+name+" --inputs-file step.yml")
		})
	}
}

func findLine(lines []string, prefix string) string {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimRight(l, " ")
		}
	}
	return ""
}

func TestExampleMacrosBecomeVarFlags(t *testing.T) {
	_, help, _ := run(t, cli.Tasks(), cli.Process{Args: []string{"help", "MLflowPromote"}})
	assert.Contains(t, help, "brickferry MLflowPromote --inputs-file step.yml --var train.modelUri=...\n")
}

func TestInputHelp(t *testing.T) {
	r := cli.Tasks()
	code, out, stderr := run(t, r, cli.Process{Args: []string{"help", "ModelServe", "trafficpercent"}})
	require.Equal(t, 0, code, stderr)
	in, _ := r["ModelServe"].Definition.Input("trafficPercent")
	assert.True(t, strings.HasPrefix(out, "trafficPercent ("+in.Label+") of ModelServe@1\n  a whole number, default 100; required\n"), out)
	assert.Contains(t, strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(in.HelpMarkDown), " ")[:40])

	code, out, _ = run(t, r, cli.Process{Args: []string{"help", "ModelServe", "workloadSize"}})
	require.Equal(t, 0, code)
	assert.Contains(t, out, "  values:\n")
	assert.Regexp(t, `\n    Small +\S`, out)
}

func TestDidYouMean(t *testing.T) {
	r := cli.Tasks()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"DatabricksTrian"}, `brickferry: unknown task or command "DatabricksTrian"; did you mean DatabricksTrain?; the tasks are: BatchScore, DatabricksTrain, MLflowPromote, ModelServe (and: version, help)` + "\n"},
		{[]string{"help", "ModelServ"}, `brickferry: unknown task or command "ModelServ"; did you mean ModelServe?; the tasks are: BatchScore, DatabricksTrain, MLflowPromote, ModelServe (and: version, help)` + "\n"},
		{[]string{"DatabricksTrain", "--input", "notebokPath=/x"}, `brickferry DatabricksTrain: task DatabricksTrain has no input "notebokPath"; did you mean notebookPath? (brickferry help DatabricksTrain lists them)` + "\n"},
		{[]string{"ModelServe", "--input", "trafficPercnt=5", "--input", "endpoint=x"}, `brickferry ModelServe: task ModelServe has no input "trafficPercnt"; did you mean trafficPercent? (brickferry help ModelServe lists them)` + "\n" +
			`brickferry ModelServe: task ModelServe has no input "endpoint"; did you mean endpointName? (brickferry help ModelServe lists them)` + "\n"},
		{[]string{"help", "BatchScore", "outputTabel"}, `brickferry: task BatchScore has no input "outputTabel"; did you mean outputTable? (brickferry help BatchScore lists them)` + "\n"},
		{[]string{"BatchScore", "--input", "zzzz=1"}, `brickferry BatchScore: task BatchScore has no input "zzzz" (brickferry help BatchScore lists them)` + "\n"},
	} {
		code, _, stderr := run(t, r, cli.Process{Args: c.args})
		assert.Equal(t, 2, code, c.args)
		assert.Equal(t, c.want, stderr, c.args)
	}
}
