package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// allocEnv makes this test binary a child that touches that many MiB and exits.
const allocEnv = "BENCH_TEST_ALLOC_MIB"

func TestMain(m *testing.M) {
	if file := os.Getenv(rusageEnv); file != "" {
		os.Exit(rusageShim(file, os.Args[1:]))
	}
	if mib, _ := strconv.Atoi(os.Getenv(allocEnv)); mib > 0 {
		touch(mib)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// touch allocates mib MiB and writes every page, so that it is resident.
func touch(mib int) []byte {
	b := make([]byte, mib<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	return b
}

// TestRusageShimReportsTheCommandsPeak: a command that touches 48 MiB,
// started through the shim by a process holding 384 MiB, is reported at
// well under 384 MiB (about 48 MiB; some 150 MiB when built with -race, whose
// shadow memory counts too); started directly by that process, its ru_maxrss
// includes the parent's 384 MiB (Linux counts the memory shared until exec, Go starting
// children with CLONE_VM), which is why copyBench.exe goes through the shim.
func TestRusageShimReportsTheCommandsPeak(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the copy figures are measured on Linux")
	}
	ballast := touch(384)
	self, err := os.Executable()
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "maxrss")
	shim := exec.Command(self, self, "-test.run=^$")
	shim.Env = append(os.Environ(), rusageEnv+"="+file, allocEnv+"=48")
	out, err := shim.CombinedOutput()
	require.NoError(t, err, "%s", out)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var kib, cpuMS int64
	_, err = fmt.Sscan(string(data), &kib, &cpuMS)
	require.NoError(t, err, "%q", data)
	require.Positive(t, cpuMS, "the command's CPU time")
	require.GreaterOrEqual(t, kib, int64(48<<10), "the command touched 48 MiB")
	require.Less(t, kib, int64(256<<10), "the command's peak, not its parent's")

	direct := exec.Command(self, "-test.run=^$")
	direct.Env = append(os.Environ(), allocEnv+"=48")
	require.NoError(t, direct.Run())
	inflated := direct.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	require.GreaterOrEqual(t, inflated, int64(384<<10), "started directly, ru_maxrss counts the parent's memory")
	runtime.KeepAlive(ballast)
}
