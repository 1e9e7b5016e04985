// Command brickferry runs the Brickferry pipeline tasks. See internal/cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/auth"
	"github.com/brickferry/brickferry/internal/cli"
)

func main() {
	// databricks-sdk-go logs INFO lines to stderr through a global logger;
	// lines with a request context go to the task's debug output instead.
	auth.QuietSDKLogger()
	// The agent cancels a step with SIGINT, then SIGTERM 7.5 s later
	// (Agent.Sdk/ProcessInvoker.cs); on Windows with Ctrl+C to the console,
	// which arrives as os.Interrupt. The first cancels the task's context and
	// starts its cleanup deadline (agent.GracePeriod); later ones are absorbed
	// so that the cleanup and task.complete are not cut short.
	ctx, cancel := agent.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		cancel()
	}()
	p := cli.Process{Args: os.Args[1:], Environ: os.Environ(), Stdout: os.Stdout, Stderr: os.Stderr}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) { //nolint:gosec // a file descriptor fits in an int
		p.ReadSecret = func(prompt string) (string, error) {
			fmt.Fprint(os.Stderr, prompt)
			b, err := term.ReadPassword(fd)
			fmt.Fprintln(os.Stderr)
			return string(b), err
		}
	}
	code := cli.Main(ctx, p, cli.Tasks())
	cancel()
	os.Exit(code)
}
