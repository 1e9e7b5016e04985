package emulator_test

import (
	"context"
	"testing"
	"time"

	"github.com/brickferry/brickferry/internal/testworld"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

func TestMain(m *testing.M) { testworld.Main(m) }

// start gives a workspace on a manual clock.
func start(t *testing.T, opts emulator.Options) (*emulator.Workspace, *emulator.ManualClock) {
	t.Helper()
	clock := emulator.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	if opts.Clock == nil {
		opts.Clock = clock
	}
	return emulator.Start(t, opts), clock
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// churnModel is the real MLflow model folder shared by the project's tests.
