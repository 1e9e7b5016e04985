package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// defaultTimeout bounds one go test command (a mutant that makes a test hang
// is killed by it).
const defaultTimeout = 5 * time.Minute

// agenttestPkg is the package of the black-box tests' harness: a test
// package that imports it runs the executable (BRICKFERRY_EXE).
const agenttestPkg = "/internal/testworld/agenttest"

type options struct {
	Root    string
	Mutants string         // folder of mutant files, relative to Root
	Only    *regexp.Regexp // nil: every mutant
	Keep    bool
	Timeout time.Duration
	Log     io.Writer
}

// summary is the end of a run.
type summary struct {
	Killed, Survivors int
}

// world is the temporary copy the mutants are planted in.
type world struct {
	o       options
	dir     string
	module  string          // the module path
	exe     string          // the brickferry executable the black-box tests run (BRICKFERRY_EXE)
	env     []string        // environment of every go command
	bin     map[string]bool // folders (slash-separated, relative) of the packages linked into the executable
	runsExe map[string]bool // test package (./dir/) → its tests run the executable
	// exeFrom is what the executable was built from: "" for the unchanged
	// code, a mutant's name, or "-" before the first build.
	exeFrom string
}

// runAll plants every mutant in turn in a copy of the repository.
func runAll(ctx context.Context, o options, mutants []mutant) (summary, error) {
	start := time.Now()
	dir, err := copyRepo(ctx, o.Root)
	if dir != "" && !o.Keep {
		defer func() { _ = os.RemoveAll(dir) }()
	}
	if err != nil {
		return summary{}, fmt.Errorf("copying the repository: %w", err)
	}
	fmt.Fprintf(o.Log, "copy of the repository: %s (%s)\n", dir, since(start))
	w := &world{o: o, dir: dir, exe: filepath.Join(dir, "dist", "mutate", "brickferry"), exeFrom: "-"}
	w.env = append(os.Environ(), "BRICKFERRY_EXE="+w.exe)
	if err := w.inspect(ctx, mutants); err != nil {
		return summary{}, err
	}

	t := time.Now()
	if err := w.preflight(ctx, mutants); err != nil {
		return summary{}, err
	}
	fmt.Fprintf(o.Log, "every mutant applies and compiles (%s)\n", since(t))

	t = time.Now()
	n, err := w.baseline(ctx, mutants)
	if err != nil {
		return summary{}, err
	}
	fmt.Fprintf(o.Log, "baseline: the %d test commands pass on the unchanged code (%s)\n\n", n, since(t))

	var s summary
	var survivors []string
	for i, m := range mutants {
		t := time.Now()
		k, err := w.try(ctx, m)
		if err != nil {
			return s, fmt.Errorf("%s: %w", m.Name, err)
		}
		if k == nil {
			s.Survivors++
			survivors = append(survivors, m.Name)
			fmt.Fprintf(o.Log, "[%2d/%d] SURVIVED %s (%s)\n        bug:    %s\n        tests:  %s\n", i+1, len(mutants), m.Name, since(t), m.Bug, testList(m.Tests))
			continue
		}
		s.Killed++
		fmt.Fprintf(o.Log, "[%2d/%d] killed   %s (%s)\n        bug:    %s\n        killer: %s (%s)\n        says:   %s\n",
			i+1, len(mutants), m.Name, since(t), m.Bug, k.test, k.cmd.Package, k.message)
	}
	fmt.Fprintf(o.Log, "\n%d mutants: %d killed, %d survived; %s in all\n", len(mutants), s.Killed, s.Survivors, since(start))
	if len(survivors) > 0 {
		fmt.Fprintf(o.Log, "survivors: %s\n", strings.Join(survivors, ", "))
	}
	return s, nil
}

// inspect finds what the executable links and which test packages run it.
func (w *world) inspect(ctx context.Context, mutants []mutant) error {
	mod, err := w.goCmd(ctx, "list", "-m")
	if err != nil {
		return err
	}
	w.module = strings.TrimSpace(mod)
	out, err := w.goCmd(ctx, "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "./cmd/brickferry")
	if err != nil {
		return err
	}
	w.bin = map[string]bool{}
	for _, d := range strings.Fields(out) {
		rel, err := filepath.Rel(w.dir, d)
		if err != nil {
			return err
		}
		w.bin[filepath.ToSlash(rel)] = true
	}
	var pkgs []string
	for _, m := range mutants {
		for _, c := range m.Tests {
			if !slices.Contains(pkgs, c.Package) {
				pkgs = append(pkgs, c.Package)
			}
		}
	}
	// The test main package (<import path>.test) depends on everything
	// the package's tests import.
	out, err = w.goCmd(ctx, append([]string{"list", "-test", "-deps=false", "-f", "{{.ImportPath}} {{join .Deps \" \"}}"}, pkgs...)...)
	if err != nil {
		return err
	}
	w.runsExe = map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasSuffix(f[0], ".test") {
			continue
		}
		pkg := "./" + strings.TrimPrefix(strings.TrimSuffix(f[0], ".test"), w.module+"/") + "/"
		w.runsExe[pkg] = slices.Contains(f[1:], w.module+agenttestPkg)
	}
	return nil
}

// preflight plants each mutant and compiles what it changes, so that a
// mutant that does not compile stops the run before the long part.
func (w *world) preflight(ctx context.Context, mutants []mutant) error {
	for _, m := range mutants {
		original, err := m.plant(w.dir, writeFile)
		if err == nil {
			err = w.compile(ctx, m)
		}
		if rerr := restore(w.dir, original); rerr != nil {
			return errors.Join(err, fmt.Errorf("restoring the planted files: %w", rerr))
		}
		if err != nil {
			return fmt.Errorf("%s: the planted bug does not compile (fix the mutant): %w", m.File, err)
		}
	}
	return nil
}

// compile builds the packages a planted mutant changed: the package itself,
// or its test binary when the edit is in a _test.go file.
func (w *world) compile(ctx context.Context, m mutant) error {
	done := map[string]bool{}
	for _, e := range m.Edits {
		dir := "./" + path.Dir(e.Path) + "/"
		test := strings.HasSuffix(e.Path, "_test.go")
		if done[dir+fmt.Sprint(test)] {
			continue
		}
		done[dir+fmt.Sprint(test)] = true
		var err error
		if test {
			_, err = w.goCmd(ctx, "test", "-c", "-o", filepath.Join(w.dir, "dist", "mutate", "compile.test"), dir)
		} else {
			_, err = w.goCmd(ctx, "build", dir)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// baseline runs every test command on the unchanged code: a kill means
// something only if the test passes without the bug. Commands of one
// package run together.
func (w *world) baseline(ctx context.Context, mutants []mutant) (int, error) {
	var cmds []testCmd
	listedIn := map[testCmd]string{}
	for _, m := range mutants {
		for _, c := range m.Tests {
			if _, ok := listedIn[c]; !ok {
				cmds = append(cmds, c)
				listedIn[c] = m.File
			}
		}
	}
	// Group by package the commands whose pattern has no subtest part.
	var groups [][]testCmd
	byPkg := map[string]int{}
	for _, c := range cmds {
		if i, ok := byPkg[c.Package]; ok && !strings.Contains(c.Run, "/") && c.Run != "" {
			groups[i] = append(groups[i], c)
			continue
		}
		if !strings.Contains(c.Run, "/") && c.Run != "" {
			byPkg[c.Package] = len(groups)
		}
		groups = append(groups, []testCmd{c})
	}
	for _, g := range groups {
		run := make([]string, len(g))
		for i, c := range g {
			run[i] = c.Run
		}
		together := testCmd{Package: g[0].Package, Run: strings.Join(run, "|")}
		if err := w.ensureExe(ctx, together.Package, ""); err != nil {
			return 0, fmt.Errorf("the unchanged code: %w", err)
		}
		out, err := goTest(ctx, w.dir, w.env, together, w.o.Timeout)
		if err != nil {
			return 0, fmt.Errorf("baseline (listed in %s): %w", listedIn[g[0]], err)
		}
		if out.killed() {
			return 0, fmt.Errorf("baseline: go test %s fails without any planted bug: %s", together, describe(out))
		}
		for _, c := range g {
			top, _, _ := strings.Cut(c.Run, "/")
			re := regexp.MustCompile(top)
			if !slices.ContainsFunc(out.Top, re.MatchString) {
				return 0, fmt.Errorf("baseline: -run %s matches no test of %s (listed in %s)", c.Run, c.Package, listedIn[c])
			}
		}
		fmt.Fprintf(w.o.Log, "baseline ok  %-60s %s\n", together, out.Elapsed.Round(100*time.Millisecond))
	}
	return len(cmds), nil
}

// kill is the test that caught a mutant.
type kill struct {
	cmd     testCmd
	test    string
	message string
}

// try plants m, runs its tests until one fails, and restores the code.
func (w *world) try(ctx context.Context, m mutant) (k *kill, err error) {
	original, err := m.plant(w.dir, writeFile)
	defer func() {
		if rerr := restore(w.dir, original); rerr != nil {
			err = errors.Join(err, fmt.Errorf("restoring the planted files: %w", rerr))
		}
	}()
	if err != nil {
		return nil, err
	}
	state := ""
	if w.linked(m) {
		state = m.Name
	}
	for _, c := range m.Tests {
		if err := w.ensureExe(ctx, c.Package, state); err != nil {
			return nil, err
		}
		out, err := goTest(ctx, w.dir, w.env, c, w.o.Timeout)
		if err != nil {
			return nil, err
		}
		if out.killed() {
			k := &kill{cmd: c}
			if len(out.Failed) > 0 {
				k.test, k.message = out.Failed[0].Test, out.Failed[0].Message
			} else {
				k.test, k.message = "(the package, outside any test)", out.PkgFail
			}
			return k, nil
		}
	}
	return nil, nil
}

// ensureExe builds the executable from the copy as it is now, when the
// tests of pkg run it and it was built from something else. state names
// the planted mutant when it changes linked code ("" otherwise).
func (w *world) ensureExe(ctx context.Context, pkg, state string) error {
	if !w.runsExe[pkg] || w.exeFrom == state {
		return nil
	}
	if _, err := w.goCmd(ctx, "build", "-tags", "grpcnotrace", "-o", w.exe, "./cmd/brickferry"); err != nil {
		return fmt.Errorf("building the executable: %w", err)
	}
	w.exeFrom = state
	return nil
}

// describe is a one-line account of a failing go test command.
func describe(o outcome) string {
	if len(o.Failed) > 0 {
		return o.Failed[0].Test + ": " + o.Failed[0].Message
	}
	return o.PkgFail
}

// linked reports whether m changes code linked into the executable.
func (w *world) linked(m mutant) bool {
	for _, e := range m.Edits {
		if !strings.HasSuffix(e.Path, "_test.go") && w.bin[path.Dir(e.Path)] {
			return true
		}
	}
	return false
}

func (w *world) goCmd(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = w.dir
	cmd.Env = append(w.env, "CGO_ENABLED=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

func writeFile(p string, data []byte) error { return os.WriteFile(p, data, 0o644) }

func testList(cs []testCmd) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, "; ")
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }
