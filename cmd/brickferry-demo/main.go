// Command brickferry-demo runs the sample pipeline against emulated Azure
// Databricks workspaces (see internal/testworld/demo). `make demo` builds
// brickferry and runs the Unity Catalog sample; `-sample workspace` runs the
// workspace-registry one.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/brickferry/brickferry/internal/testworld/demo"
)

func main() {
	opts := demo.Options{Out: os.Stdout}
	flag.StringVar(&opts.Exe, "exe", "dist/bin/linux-amd64/brickferry", "the brickferry executable")
	sample := flag.String("sample", "uc", "the sample pipeline to run: uc (examples/azure-pipelines-uc.yml, Unity Catalog and aliases) or workspace (examples/azure-pipelines.yml, the workspace model registry and stages)")
	flag.StringVar(&opts.ModelDir, "model", "examples/demo/churn-model", "the model folder the emulated training logs")
	flag.StringVar(&opts.OutDir, "out", "dist/demo", "where summaries and the CA certificate are written")
	flag.BoolVar(&opts.Verbose, "v", false, "also print the emulators' logs")
	flag.Parse()
	s, ok := demo.Samples()[*sample]
	if !ok {
		fmt.Fprintf(os.Stderr, "demo: -sample %q: use uc or workspace\n", *sample)
		os.Exit(2)
	}
	opts.Sample, opts.Pipeline = s, filepath.FromSlash(s.File)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	report, closeAll, err := demo.Run(ctx, opts)
	closeAll()
	stop()
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	case report.Result.Result == "Failed":
		fmt.Fprintln(os.Stderr, "demo: the pipeline failed")
		os.Exit(1)
	}
}
