// Command mutate checks that the tests catch the bugs listed in
// build/mutate/mutants: each file there is one planted bug (an exact
// search/replace on one or more source files) with the tests that must
// catch it. mutate copies the repository to a temporary folder, checks that
// every listed test passes on the unchanged copy, then plants the bugs one
// at a time, rebuilds the brickferry executable the black-box tests run, runs
// the mutant's tests, and reports which tests killed each mutant and which
// mutants survived.
//
// A mutant whose search text is not in its file exactly once, that does not
// compile, or whose tests fail without it is a failure of the list, not a
// survivor: the run stops there. The exit code is 0 only when every mutant
// was killed.
//
//	go run ./build/mutate                    # every mutant (make mutate)
//	go run ./build/mutate -run 'masking|gate' # the mutants whose name matches
//	go run ./build/mutate -list              # the list, nothing run
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(cli(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func cli(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mutate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var run string
	var list bool
	fs.StringVar(&o.Root, "root", ".", "repository root")
	fs.StringVar(&o.Mutants, "mutants", "build/mutate/mutants", "folder of mutant files (*.txtar)")
	fs.StringVar(&run, "run", "", "only the mutants whose name matches this regular expression")
	fs.BoolVar(&list, "list", false, "print the mutants and exit")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary copy (its path is printed)")
	fs.DurationVar(&o.Timeout, "timeout", defaultTimeout, "go test -timeout of each test command")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if run != "" {
		re, err := regexp.Compile(run)
		if err != nil {
			fmt.Fprintf(stderr, "mutate: -run: %v\n", err)
			return 2
		}
		o.Only = re
	}
	o.Log = stdout
	mutants, err := loadMutants(o.Root, o.Mutants, o.Only)
	if err != nil {
		fmt.Fprintln(stderr, "mutate:", err)
		return 1
	}
	if list {
		for _, m := range mutants {
			fmt.Fprintf(stdout, "%-36s %s\n", m.Name, m.Bug)
		}
		return 0
	}
	report, err := runAll(ctx, o, mutants)
	if err != nil {
		fmt.Fprintln(stderr, "mutate:", err)
		return 1
	}
	if report.Survivors > 0 {
		return 1
	}
	return 0
}
