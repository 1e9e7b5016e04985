package pipeline

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/tasks"
)

// GroupVariable is one variable of a variable group.
type GroupVariable struct {
	Value  string
	Secret bool
}

// Runner runs a pipeline locally through the brickferry executable.
type Runner struct {
	Exe         string                              // the brickferry executable
	Groups      map[string]map[string]GroupVariable // variable groups the YAML may reference
	Connections map[string]agent.Endpoint           // service connections by name (ID, URL, scheme, parameters)
	BaseEnv     map[string]string                   // system variables, PATH, ... given to every step
	WorkDir     string                              // agent folders (temp, tools, sources) are made here
	SummaryDir  string                              // uploaded summaries are copied here ("" = not copied)
	Out         io.Writer                           // the readable log
	// Skip names tasks the runner does not run, with the reason it prints
	// (e.g. BrickferryTools, which installs the executable the runner already has).
	Skip map[string]string
	// Definitions looks up a task's task.json; tasks.Definition when nil.
	Definitions func(name string) (agent.Definition, error)

	mu      sync.Mutex
	secrets []string
}

// Result is what a pipeline run did.
type Result struct {
	Result string // Succeeded, SucceededWithIssues or Failed
	Stages []*StageResult
}

// StageResult is one stage's outcome.
type StageResult struct {
	Name   string
	Result string // Succeeded, SucceededWithIssues, Failed or Skipped
	Jobs   []*JobResult
}

// JobResult is one job's outcome.
type JobResult struct {
	Name    string
	Result  string
	Outputs map[string]string // "step.var" (and "job.step.var" for deployment jobs) → value
	Steps   []*StepResult
}

// StepResult is one step's outcome.
type StepResult struct {
	Name, Task         string
	DisplayName        string
	Result             string
	Outputs            map[string]string // variables the step set, by name
	Errors, Warnings   []string
	Summaries          []string // copies under SummaryDir (or the original paths)
	Stdout, Stderr     string
	ExitCode, Complete int
}

// Job returns a job's result by stage and job name.
func (r *Result) Job(stage, job string) *JobResult {
	for _, s := range r.Stages {
		if s.Name == stage {
			for _, j := range s.Jobs {
				if j.Name == job {
					return j
				}
			}
		}
	}
	return nil
}

// Steps returns every step result in order.
func (r *Result) Steps() []*StepResult {
	var out []*StepResult
	for _, s := range r.Stages {
		for _, j := range s.Jobs {
			out = append(out, j.Steps...)
		}
	}
	return out
}

func (r *Runner) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprint(r.Out, r.maskLocked(fmt.Sprintf(format, args...)))
}

func (r *Runner) maskLocked(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, "***")
	}
	return s
}

func (r *Runner) addSecret(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s = strings.TrimSpace(s)
	if len(s) < 3 {
		return
	}
	for _, have := range r.secrets {
		if have == s {
			return
		}
	}
	r.secrets = append(r.secrets, s)
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
}

// Secrets returns every secret the run knew of (for tests that scan output).
func (r *Runner) Secrets() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.secrets...)
}

// Run runs every stage in order.
func (r *Runner) Run(ctx context.Context, p *Pipeline) (*Result, error) {
	for _, g := range r.Groups {
		for _, v := range g {
			if v.Secret {
				r.addSecret(v.Value)
			}
		}
	}
	for _, c := range r.Connections {
		for _, v := range c.Parameters {
			r.addSecret(v)
		}
	}
	res := &Result{Result: "Succeeded"}
	stageResults := map[string]*StageResult{}
	for i, st := range p.Stages {
		deps := st.DependsOn.Names
		if !st.DependsOn.Set && i > 0 {
			deps = []string{p.Stages[i-1].Stage}
		}
		sr := &StageResult{Name: st.Stage}
		res.Stages = append(res.Stages, sr)
		stageResults[st.Stage] = sr
		var depResults []string
		for _, d := range deps {
			dr, ok := stageResults[d]
			if !ok {
				return res, fmt.Errorf("stage %s depends on %s, which is not an earlier stage", st.Stage, d)
			}
			depResults = append(depResults, dr.Result)
		}
		run, err := evalCondition(st.Condition, exprContext{
			variables: flatten(r.varsFor(p.Variables, st.Variables, nil)), dependencyResults: depResults,
			stageDependencies: stageDeps(stageResults), dependencies: stageDeps(stageResults),
		})
		if err != nil {
			return res, fmt.Errorf("stage %s condition: %w", st.Stage, err)
		}
		if !run {
			sr.Result = "Skipped"
			r.logf("\n=== Stage %s: skipped (condition %q)\n", st.Stage, orDefault(st.Condition, "succeeded()"))
			continue
		}
		r.logf("\n=== Stage %s%s\n", st.Stage, paren(st.DisplayName))
		if err := r.runStage(ctx, p, st, sr, stageResults); err != nil {
			return res, err
		}
		res.Result = worst(res.Result, sr.Result)
	}
	return res, nil
}

func (r *Runner) runStage(ctx context.Context, p *Pipeline, st Stage, sr *StageResult, stages map[string]*StageResult) error {
	sr.Result = "Succeeded"
	jobs := map[string]*JobResult{}
	for _, j := range st.Jobs {
		jr := &JobResult{Name: j.Name(), Outputs: map[string]string{}}
		sr.Jobs = append(sr.Jobs, jr)
		var depResults []string
		for _, d := range j.DependsOn.Names {
			dj, ok := jobs[d]
			if !ok {
				return fmt.Errorf("job %s depends on %s, which is not an earlier job of stage %s", j.Name(), d, st.Stage)
			}
			depResults = append(depResults, dj.Result)
		}
		ectx := exprContext{dependencies: jobDeps(jobs), stageDependencies: stageDeps(stages), dependencyResults: depResults}
		vars, err := r.jobVariables(p, st, j, ectx)
		if err != nil {
			return err
		}
		ectx.variables = flatten(vars)
		run, err := evalCondition(j.Condition, ectx)
		if err != nil {
			return fmt.Errorf("job %s condition: %w", j.Name(), err)
		}
		jobs[j.Name()] = jr
		if !run {
			jr.Result = "Skipped"
			r.logf("\n--- Job %s: skipped (condition %q)\n", j.Name(), orDefault(j.Condition, "succeeded()"))
			continue
		}
		r.logf("\n--- Job %s%s\n", j.Name(), paren(j.DisplayName))
		if err := r.runJob(ctx, st, j, jr, vars); err != nil {
			return err
		}
		if !j.ContinueOnError || jr.Result != "Failed" {
			sr.Result = worst(sr.Result, jr.Result)
		}
	}
	return nil
}

// jobVariables are the pipeline, stage and job variables, with groups
// expanded and runtime expressions evaluated.
func (r *Runner) jobVariables(p *Pipeline, st Stage, j Job, ectx exprContext) (map[string]GroupVariable, error) {
	vars := r.varsFor(p.Variables, st.Variables, j.Variables)
	for _, block := range []Variables{p.Variables, st.Variables, j.Variables} {
		for _, v := range block {
			if v.Group != "" {
				if _, ok := r.Groups[v.Group]; !ok {
					return nil, fmt.Errorf("variable group %q is not known to the local runner (known: %s)", v.Group, strings.Join(slices.Sorted(maps.Keys(r.Groups)), ", "))
				}
			}
		}
	}
	for name, v := range vars {
		val := strings.TrimSpace(v.Value)
		if strings.HasPrefix(val, "$[") && strings.HasSuffix(val, "]") {
			out, err := evalExpression(strings.TrimSpace(val[2:len(val)-1]), ectx)
			if err != nil {
				return nil, fmt.Errorf("job %s variable %s: %w", j.Name(), name, err)
			}
			v.Value = text(out)
			vars[name] = v
		}
	}
	return vars, nil
}

func (r *Runner) varsFor(blocks ...Variables) map[string]GroupVariable {
	vars := map[string]GroupVariable{}
	for _, block := range blocks {
		for _, v := range block {
			if v.Group != "" {
				for k, gv := range r.Groups[v.Group] {
					vars[k] = gv
				}
				continue
			}
			vars[v.Name] = GroupVariable{Value: v.Value}
		}
	}
	return vars
}

func (r *Runner) runJob(ctx context.Context, st Stage, j Job, jr *JobResult, vars map[string]GroupVariable) error {
	jr.Result = "Succeeded"
	jobDir := filepath.Join(r.WorkDir, st.Stage+"-"+j.Name())
	dirs := map[string]string{
		"AGENT_TEMPDIRECTORY": filepath.Join(jobDir, "_temp"), "AGENT_TOOLSDIRECTORY": filepath.Join(r.WorkDir, "_tool"),
		"BUILD_SOURCESDIRECTORY": filepath.Join(jobDir, "s"), "SYSTEM_DEFAULTWORKINGDIRECTORY": filepath.Join(jobDir, "s"),
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	var stepResults []string
	for i, step := range j.AllSteps() {
		if step.Checkout != "" {
			continue // the local runner's sources are the working tree
		}
		name := step.Name
		if name == "" {
			name = fmt.Sprintf("__step%d", i+1)
		}
		if step.Enabled != nil && !*step.Enabled {
			continue
		}
		run, err := evalCondition(step.Condition, exprContext{variables: flatten(vars), dependencyResults: stepResults})
		if err != nil {
			return fmt.Errorf("job %s step %s condition: %w", j.Name(), name, err)
		}
		if !run {
			r.logf("\n  > %s (%s): skipped (condition %q)\n", name, step.Task, orDefault(step.Condition, "succeeded()"))
			stepResults = append(stepResults, "Skipped")
			continue
		}
		sr, err := r.runStep(ctx, st, j, name, step, vars, dirs)
		if err != nil {
			return err
		}
		sr.DisplayName = step.DisplayName
		jr.Steps = append(jr.Steps, sr)
		result := sr.Result
		if step.ContinueOnError && result == "Failed" {
			result = "SucceededWithIssues"
		}
		stepResults = append(stepResults, result)
		jr.Result = worst(jr.Result, result)
		for k, v := range sr.Outputs {
			if strings.HasPrefix(k, "\x00") { // a plain (non-output) variable
				vars[k[1:]] = GroupVariable{Value: v}
				continue
			}
			vars[name+"."+k] = GroupVariable{Value: v}
			jr.Outputs[name+"."+k] = v
			if j.Deployment != "" {
				jr.Outputs[j.Name()+"."+name+"."+k] = v
			}
		}
	}
	return nil
}

var macro = regexp.MustCompile(`\$\(([A-Za-z0-9_.\-]+)\)`)

// expand replaces $(name) macros with variable values, or with the
// predefined variables the agent sets in env (Build.BuildNumber from
// BUILD_BUILDNUMBER); unknown ones stay, as the agent leaves them.
func expand(s string, vars map[string]GroupVariable, env map[string]string) string {
	return macro.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if v, ok := lookupVar(vars, name); ok {
			return v.Value
		}
		if v, ok := env[agent.VariableKey(name)]; ok {
			return v
		}
		return m
	})
}

func lookupVar(vars map[string]GroupVariable, name string) (GroupVariable, bool) {
	if v, ok := vars[name]; ok {
		return v, true
	}
	for k, v := range vars {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return GroupVariable{}, false
}

func (r *Runner) runStep(ctx context.Context, st Stage, j Job, name string, step Step, vars map[string]GroupVariable, dirs map[string]string) (*StepResult, error) {
	taskName, majorText, _ := strings.Cut(step.Task, "@")
	lookup := r.Definitions
	if lookup == nil {
		lookup = tasks.Definition
	}
	def, err := lookup(taskName)
	if err != nil {
		return nil, fmt.Errorf("step %s: %w", name, err)
	}
	if major, _ := strconv.Atoi(majorText); major != def.Version.Major {
		return nil, fmt.Errorf("step %s: task %s has major version %d, not %s", name, taskName, def.Version.Major, majorText)
	}
	for k := range step.Inputs {
		if _, ok := def.Input(k); !ok {
			return nil, fmt.Errorf("step %s: task %s has no input %q", name, step.Task, k)
		}
	}
	env := map[string]string{}
	for k, v := range r.BaseEnv {
		env[k] = v
	}
	for k, v := range dirs {
		env[k] = v
	}
	env["TF_BUILD"] = "True"
	env["SYSTEM_STAGENAME"] = st.Stage
	env["SYSTEM_JOBNAME"] = j.Name()
	env["SYSTEM_JOBID"] = st.Stage + "." + j.Name()
	env["SYSTEM_STEPNAME"] = name
	for k, v := range vars {
		if v.Secret {
			env["SECRET_"+agent.VariableKey(k)] = v.Value
		} else {
			env[agent.VariableKey(k)] = v.Value
		}
	}
	for _, in := range def.Inputs {
		value, given := "", false
		for k, v := range step.Inputs {
			if strings.EqualFold(k, in.Name) || containsFold(in.Aliases, k) {
				value, given = string(v), true
			}
		}
		if !given {
			value = in.DefaultValue
		}
		value = strings.TrimSpace(expand(value, vars, env))
		if strings.HasPrefix(in.Type, "connectedService") && value != "" {
			conn, ok := r.Connections[value]
			if !ok {
				return nil, fmt.Errorf("step %s input %s: no service connection named %q (known: %s)", name, in.Name, value, strings.Join(slices.Sorted(maps.Keys(r.Connections)), ", "))
			}
			for k, v := range conn.Environ() {
				env[k] = v
			}
			value = conn.ID
		}
		if in.Type == "filePath" && value == "" {
			value = dirs["BUILD_SOURCESDIRECTORY"]
		}
		env["INPUT_"+agent.VariableKey(in.Name)] = value
	}
	if tok := env["ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN"]; tok != "" {
		r.addSecret(tok)
	}
	r.logf("\n  > %s (%s)%s\n", name, step.Task, paren(step.DisplayName))
	if reason, ok := r.Skip[taskName]; ok {
		r.logf("    skipped by the local runner: %s\n", reason)
		return &StepResult{Name: name, Task: taskName, Result: "Succeeded", Outputs: map[string]string{}}, nil
	}
	return r.exec(ctx, taskName, name, env, filepath.Join(st.Stage, j.Name()))
}

func (r *Runner) exec(ctx context.Context, taskName, stepName string, env map[string]string, where string) (*StepResult, error) {
	cmd := exec.CommandContext(ctx, r.Exe, taskName)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", r.Exe, err)
	}
	sr := &StepResult{Name: stepName, Task: taskName, Outputs: map[string]string{}}
	var out strings.Builder
	scanner := bufio.NewScanner(stdout)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	for scanner.Scan() {
		line := scanner.Text()
		out.WriteString(line + "\n")
		r.handleLine(line, sr, where)
	}
	waitErr := cmd.Wait()
	sr.Stdout, sr.Stderr = out.String(), stderr.String()
	for _, line := range strings.Split(strings.TrimRight(sr.Stderr, "\n"), "\n") {
		if line != "" {
			r.handleLine(line, sr, where)
		}
	}
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		sr.ExitCode = ee.ExitCode()
	} else if waitErr != nil {
		return nil, waitErr
	}
	switch {
	case sr.ExitCode != 0:
		// A Node-handler task that exits non-zero fails, whatever it reported.
		sr.Result = "Failed"
		r.logf("    error: the task exited with code %d\n", sr.ExitCode)
	case sr.Result == "":
		sr.Result = "Succeeded"
	}
	r.logf("    => %s\n", sr.Result)
	return sr, nil
}

// handleLine reads one output line with the agent's rules and prints it for a person.
func (r *Runner) handleLine(line string, sr *StepResult, where string) {
	cmd, ok := agent.ParseCommand(line)
	if !ok {
		switch {
		case strings.HasPrefix(line, "##[debug]"):
		case strings.HasPrefix(line, "##[group]"), strings.HasPrefix(line, "##[section]"):
			r.logf("    == %s\n", strings.TrimPrefix(strings.TrimPrefix(line, "##[group]"), "##[section]"))
		case strings.HasPrefix(line, "##[endgroup]"):
		default:
			r.logf("    %s\n", line)
		}
		return
	}
	switch cmd.Area + "." + cmd.Event {
	case "task.setsecret":
		r.addSecret(cmd.Message)
	case "task.setvariable":
		name := cmd.Properties["variable"]
		if cmd.Properties["issecret"] == "true" {
			r.addSecret(cmd.Message)
		}
		key := name
		if cmd.Properties["isoutput"] != "true" {
			key = "\x00" + name
		}
		sr.Outputs[key] = cmd.Message
		r.logf("    output %s.%s = %s\n", sr.Name, name, cmd.Message)
	case "task.issue", "task.logissue":
		if cmd.Properties["type"] == "error" {
			sr.Errors = append(sr.Errors, cmd.Message)
		} else {
			sr.Warnings = append(sr.Warnings, cmd.Message)
		}
		r.logf("    %s: %s\n", cmd.Properties["type"], cmd.Message)
	case "task.complete":
		sr.Complete++
		sr.Result = cmd.Properties["result"]
	case "task.uploadsummary":
		path := cmd.Message
		if r.SummaryDir != "" {
			dst := filepath.Join(r.SummaryDir, strings.ReplaceAll(where, string(filepath.Separator), "-")+"-"+sr.Name+"-"+filepath.Base(path))
			if data, err := os.ReadFile(path); err == nil && os.MkdirAll(r.SummaryDir, 0o755) == nil && os.WriteFile(dst, data, 0o644) == nil {
				path = dst
			}
		}
		sr.Summaries = append(sr.Summaries, path)
		r.logf("    summary: %s\n", path)
	case "task.setprogress", "task.prependpath":
	default:
		r.logf("    %s.%s %s\n", cmd.Area, cmd.Event, cmd.Message)
	}
}

var severity = map[string]int{"Succeeded": 0, "Skipped": 0, "SucceededWithIssues": 1, "Failed": 2}

func worst(a, b string) string {
	if severity[b] > severity[a] {
		return b
	}
	return a
}

func jobDeps(jobs map[string]*JobResult) map[string]any {
	m := map[string]any{}
	for name, j := range jobs {
		m[name] = jobValue(j)
	}
	return m
}

func jobValue(j *JobResult) map[string]any {
	outs := map[string]any{}
	for k, v := range j.Outputs {
		outs[k] = v
	}
	return map[string]any{"result": j.Result, "outputs": outs}
}

// stageDeps is what stageDependencies.<stage>.<job> reads in a job, and
// dependencies.<stage> in a stage condition: the stage's result, its outputs
// as '<job>.<step>.<var>', and each job's result and outputs.
func stageDeps(stages map[string]*StageResult) map[string]any {
	m := map[string]any{}
	for name, s := range stages {
		outputs := map[string]any{}
		stage := map[string]any{"result": s.Result, "outputs": outputs}
		for _, j := range s.Jobs {
			stage[j.Name] = jobValue(j)
			for k, v := range j.Outputs {
				if !strings.HasPrefix(k, j.Name+".") {
					outputs[j.Name+"."+k] = v
				}
			}
		}
		m[name] = stage
	}
	return m
}

func flatten(vars map[string]GroupVariable) map[string]string {
	out := map[string]string{}
	for k, v := range vars {
		out[k] = v.Value
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
