// Command brickferry-emulator starts a local dev and prod Azure Databricks
// workspace (internal/emulator) for the demo, backed by Azurite when it is
// installed (npm ci), prints how to reach them, and runs until SIGINT or
// SIGTERM.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Stdout, os.Stderr))
}

// run starts the workspaces, prints their coordinates to out and blocks until
// ctx ends. It returns the process exit code.
func run(ctx context.Context, out, errOut io.Writer) int {
	var blob *emulator.BlobAccount
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	az, err := azurite.Run(startCtx, io.Discard)
	cancel()
	if err != nil {
		fmt.Fprintf(errOut, "brickferry-emulator: Azurite not started (%v); artifacts stay in memory and signed-URL routes answer 501\n", err)
	} else {
		defer az.Close()
		blob = &emulator.BlobAccount{Endpoint: az.BlobEndpoint, AccountName: az.AccountName, AccountKey: az.AccountKey}
		fmt.Fprintf(out, "Azurite blob endpoint: %s (account %s)\n\n", az.BlobEndpoint, az.AccountName)
	}

	for _, name := range []string{"dev", "prod"} {
		ws, err := emulator.New(emulator.Options{
			Name:         name,
			Blob:         blob,
			OAuthClients: map[string]string{name + "-sp": name + "-sp-secret"},
			Logf: func(format string, args ...any) {
				fmt.Fprintf(errOut, format+"\n", args...)
			},
		})
		if err != nil {
			fmt.Fprintf(errOut, "brickferry-emulator: %v\n", err)
			return 1
		}
		defer ws.Close()
		fmt.Fprintf(out, "%s workspace (id %d)\n", name, ws.WorkspaceID)
		fmt.Fprintf(out, "  export DATABRICKS_HOST=%s\n", ws.URL())
		fmt.Fprintf(out, "  export DATABRICKS_TOKEN=%s\n", ws.Token)
		fmt.Fprintf(out, "  OAuth M2M: DATABRICKS_CLIENT_ID=%s-sp DATABRICKS_CLIENT_SECRET=%s-sp-secret\n", name, name)
		fmt.Fprintf(out, "  pipeline variables: databricks-host-%s=%s databricks-token-%s=%s\n\n", name, ws.URL(), name, ws.Token)
	}
	fmt.Fprintln(out, "Try: curl -H \"Authorization: Bearer $DATABRICKS_TOKEN\" $DATABRICKS_HOST/api/2.2/jobs/list")
	fmt.Fprintln(out, "Press Ctrl+C to stop.")
	<-ctx.Done()
	fmt.Fprintln(out, "stopping")
	return 0
}
