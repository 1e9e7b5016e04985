// Command bench measures the figures the issues ask for and writes them to a
// flat JSON object (name → number), e.g. dist/bench.json. It expects `make
// package` to have run (executables in dist/bin, the .vsix in dist/).
//
// Each area contributes one function to figureSets; a figure is a median of
// repeated runs, and a comparison is a ratio of two figures measured in the
// same run.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// benchEnv is what every figure function gets: where the build output is.
type benchEnv struct {
	Root string // repository root
	Dist string // dist/ folder with bin/<goos>-<goarch>/brickferry and the .vsix
	Log  io.Writer
}

// Exe is the host (linux/amd64) executable.
func (e benchEnv) Exe() string { return filepath.Join(e.Dist, "bin", "linux-amd64", "brickferry") }

type figureSet struct {
	name string
	run  func(benchEnv) (map[string]float64, error)
}

var figureSets = []figureSet{
	{"executable", executableFigures},
	{"packaging", packagingFigures},
	{"train", trainFigures},
	{"wait", waitCompareFigures},
	{"faults", faultFigures},
	{"copy", copyFigures},
}

func main() {
	if file := os.Getenv(rusageEnv); file != "" {
		os.Exit(rusageShim(file, os.Args[1:]))
	}
	out := flag.String("out", "dist/bench.json", "where to write the figures")
	only := flag.String("only", "", "run only the figure set with this name")
	flag.Parse()
	if err := run(*out, *only); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(out, only string) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	env := benchEnv{Root: root, Dist: filepath.Join(root, "dist"), Log: os.Stderr}
	figures := map[string]float64{}
	for _, set := range figureSets {
		if only != "" && set.name != only {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s\n", set.name)
		got, err := set.run(env)
		if err != nil {
			return fmt.Errorf("%s: %w", set.name, err)
		}
		for k, v := range got {
			figures[k] = v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(figures)) {
		fmt.Printf("%-36s %14.2f\n", k, figures[k])
	}
	data, err := json.MarshalIndent(figures, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, append(data, '\n'), 0o644)
}
