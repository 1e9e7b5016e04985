package cli_test

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// signalContext is what cmd/brickferry does: SIGINT and SIGTERM cancel the task.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
