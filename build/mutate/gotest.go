package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// testEvent is one line of go test -json (cmd/test2json).
type testEvent struct {
	Action     string
	Package    string
	ImportPath string // build-output and build-fail events
	Test       string
	Output     string
}

// outcome is what one go test command found.
type outcome struct {
	Failed  []failure // failing tests, in the order they failed (subtests before their parents)
	PkgFail string    // the package failed outside any test (TestMain, a panic, a timeout): its last output
	Ran     int       // tests (and subtests) that ran
	Top     []string  // the top-level tests that ran
	Elapsed time.Duration
}

// failure is one failing test and the line of its output that says why.
type failure struct {
	Test    string
	Message string
}

func (o outcome) killed() bool { return len(o.Failed) > 0 || o.PkgFail != "" }

// errBuild is a test command whose package did not compile: the mutant (or
// the list) is broken, which is not a kill.
var errBuild = errors.New("the test package does not compile")

// goTest runs one go test command in dir and reads its -json stream.
func goTest(ctx context.Context, dir string, env []string, c testCmd, timeout time.Duration) (outcome, error) {
	args := []string{"test", "-count=1", "-json", "-vet=off", "-failfast", "-timeout", timeout.String()}
	if c.Run != "" {
		args = append(args, "-run", c.Run)
	}
	args = append(args, c.Package)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return outcome{}, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return outcome{}, err
	}
	out, build, readErr := readEvents(stdout)
	waitErr := cmd.Wait()
	out.Elapsed = time.Since(start)
	switch {
	case ctx.Err() != nil:
		return out, ctx.Err()
	case readErr != nil:
		return out, fmt.Errorf("go %s: reading its output: %w", strings.Join(args, " "), readErr)
	case build != "":
		return out, fmt.Errorf("go %s: %w:\n%s", strings.Join(args, " "), errBuild, build)
	case waitErr != nil && !out.killed():
		// The go command failed, but no test and no package did: a
		// command-line or setup problem.
		return out, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), waitErr, stderr.String())
	case out.Ran == 0 && !out.killed():
		return out, fmt.Errorf("go %s: no test ran (does -run match a test of the package?)", strings.Join(args, " "))
	}
	return out, nil
}

// readEvents reads a go test -json stream. build is the compiler's output
// when a package did not build.
func readEvents(r io.Reader) (out outcome, build string, err error) {
	var buildOut strings.Builder
	buildFailed := false
	var pkgOutput []string
	outputs := map[string][]string{} // test → its output lines
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e testEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			pkgOutput = append(pkgOutput, sc.Text()+"\n") // the go command's own output
			continue
		}
		switch {
		case e.Action == "build-output":
			buildOut.WriteString(e.Output)
		case e.Action == "build-fail":
			buildFailed = true
		case e.Action == "run" && e.Test != "":
			out.Ran++
			if !strings.Contains(e.Test, "/") {
				out.Top = append(out.Top, e.Test)
			}
		case e.Action == "output" && e.Test != "":
			outputs[e.Test] = append(outputs[e.Test], e.Output)
		case e.Action == "output":
			pkgOutput = append(pkgOutput, e.Output)
			// "FAIL <pkg> [build failed]" (or [setup failed]).
			buildFailed = buildFailed || strings.Contains(e.Output, " [build failed]") || strings.Contains(e.Output, " [setup failed]")
		case e.Action == "fail" && e.Test != "":
			out.Failed = append(out.Failed, failure{Test: e.Test, Message: why(outputs[e.Test])})
		case e.Action == "fail" && len(out.Failed) == 0:
			out.PkgFail = lastLines(pkgOutput, 8)
		}
	}
	if buildFailed {
		if buildOut.Len() == 0 {
			buildOut.WriteString(lastLines(pkgOutput, 20))
		}
		return out, buildOut.String(), sc.Err()
	}
	return out, "", sc.Err()
}

var (
	testifyField = regexp.MustCompile(`^\s*(Messages|Error):\s+(.*)$`)
	fileLine     = regexp.MustCompile(`^\s+\S+\.go:\d+: (.+)$`)
)

// why picks the line of a failing test's output that says what went wrong:
// testify's Messages (the assertion's own words), else its Error, else the
// first message of a t.Error or t.Fatal.
func why(lines []string) string {
	var errLine, first string
	for _, l := range lines {
		l = strings.TrimRight(l, "\n")
		if m := testifyField.FindStringSubmatch(l); m != nil {
			if m[1] == "Messages" {
				return clip(m[2])
			}
			if errLine == "" {
				errLine = m[2]
			}
			continue
		}
		if m := fileLine.FindStringSubmatch(l); m != nil && first == "" && strings.TrimSpace(m[1]) != "" {
			first = m[1]
		}
	}
	if errLine != "" {
		return clip(errLine)
	}
	return clip(first)
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 240 {
		return s[:240] + "…"
	}
	return s
}

func lastLines(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, ""))
}
