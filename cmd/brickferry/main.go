// Command brickferry runs the Brickferry pipeline tasks. See internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/cli"
)

func main() {
	// databricks-sdk-go logs INFO lines to stderr through a global logger;
	// lines with a request context go to the task's debug output instead.
	auth.QuietSDKLogger()
	// The agent cancels a step with SIGINT, then SIGTERM 7.5 s later
	// (Agent.Sdk/ProcessInvoker.cs); both cancel the task's context.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, cli.Process{Args: os.Args[1:], Environ: os.Environ(), Stdout: os.Stdout, Stderr: os.Stderr}, cli.Tasks())
	stop()
	os.Exit(code)
}
