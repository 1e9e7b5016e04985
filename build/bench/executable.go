package main

import (
	"fmt"
	"os"
	"os/exec"
	"time"
)

// executableFigures: startup_ms (median wall time of `brickferry version`, 20
// runs) and exe_bytes_linux_amd64.
func executableFigures(env benchEnv) (map[string]float64, error) {
	st, err := os.Stat(env.Exe())
	if err != nil {
		return nil, fmt.Errorf("run `make build` first: %w", err)
	}
	samples := make([]float64, 0, 20)
	for range 20 {
		start := time.Now()
		if out, err := exec.Command(env.Exe(), "version").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("brickferry version: %w: %s", err, out)
		}
		samples = append(samples, msSince(start))
	}
	return map[string]float64{
		"startup_ms":            median(samples),
		"exe_bytes_linux_amd64": float64(st.Size()),
	}, nil
}
