// Command brickferry-demo runs the sample pipeline against emulated Azure
// Databricks workspaces (see internal/demo). `make demo` builds brickferry and
// runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/brickferry/brickferry/internal/testworld/demo"
)

func main() {
	opts := demo.Options{Out: os.Stdout}
	flag.StringVar(&opts.Exe, "exe", "dist/bin/linux-amd64/brickferry", "the brickferry executable")
	flag.StringVar(&opts.Pipeline, "pipeline", "examples/azure-pipelines.yml", "the pipeline to run")
	flag.StringVar(&opts.ModelDir, "model", "examples/demo/churn-model", "the model folder the emulated training logs")
	flag.StringVar(&opts.OutDir, "out", "dist/demo", "where summaries and the CA certificate are written")
	flag.BoolVar(&opts.Verbose, "v", false, "also print the emulators' logs")
	flag.Parse()
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
