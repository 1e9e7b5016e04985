package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/databricks/databricks-sdk-go/client"

	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/testworld/artifactstest"
	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// copyFigures measures the MLflowPromote copy (issue: "Figures"), all in one
// run against one Azurite:
//
//   - copy_mib_s: a 1 GiB model (workspace registry version in dev) copied
//     to another workspace (prod, Unity Catalog target, so the figure is not
//     diluted by the emulator's own server-side registry copy), bytes over
//     the wall time of the whole copy command;
//   - azurite_limit_mib_s: the same bytes downloaded and uploaded with the
//     blob SDK alone, the slower direction's rate (a streaming copy cannot
//     beat it); azurite_sdk_copy_mib_s: the SDK's download piped into its
//     upload; copy_vs_azurite_limit is copy_mib_s / azurite_limit_mib_s
//     (goal ≥ 0.7);
//   - copy_peak_rss_mib_1gib / _4gib: peak RSS (VmHWM) of the
//     process running the copy, for 1 GiB and 4 GiB models (goal ≤ 150 MiB
//     and the same for both);
//   - copy_small_files_per_s: a model of 2,000 small files.
//
// The copy runs in a child process: the modelcopy test binary's helper
// mode, which runs modelcopy.Run with the production tuning.
func copyFigures(env benchEnv) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	tmp, err := os.MkdirTemp("", "bench-copy-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	helper := filepath.Join(tmp, "modelcopy.test")
	build := exec.Command("go", "test", "-c", "-o", helper, "./internal/modelcopy")
	build.Dir, build.Stdout, build.Stderr = env.Root, env.Log, env.Log
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("building the copy helper: %w", err)
	}
	// Each phase gets its own Azurite (in-memory, capped at half the RAM)
	// and workspaces, so the 4 GiB phase does not inherit the 1 GiB one's bytes.
	type world struct {
		dev, prd   *emulator.Workspace
		devC, prdC *client.DatabricksClient
		close      func()
	}
	newWorld := func() (*world, error) {
		az, err := azurite.Run(ctx, io.Discard)
		if err != nil {
			return nil, err
		}
		acct := &emulator.BlobAccount{Endpoint: az.BlobEndpoint, AccountName: az.AccountName, AccountKey: az.AccountKey}
		w := &world{}
		w.close = func() {
			if w.dev != nil {
				w.dev.Close()
			}
			if w.prd != nil {
				w.prd.Close()
			}
			az.Close()
		}
		if w.dev, err = emulator.New(emulator.Options{Name: "dev", Blob: acct, RegistrationDelay: time.Millisecond}); err == nil {
			w.prd, err = emulator.New(emulator.Options{Name: "prod", Blob: acct, RegistrationDelay: time.Millisecond})
		}
		if err == nil {
			w.devC, err = artifactstest.Client(w.dev)
		}
		if err == nil {
			w.prdC, err = artifactstest.Client(w.prd)
		}
		if err != nil {
			w.close()
			return nil, err
		}
		return w, nil
	}
	w, err := newWorld()
	if err != nil {
		return nil, err
	}
	defer func() { w.close() }()
	out := map[string]float64{}
	run := func(w *world, model, target string) (time.Duration, float64, error) {
		dev, prd := w.dev, w.prd
		cmd := exec.CommandContext(ctx, helper, "-test.run=^$")
		cmd.Env = append(os.Environ(), "BRICKFERRY_MODELCOPY_HELPER=1", "HELPER_DEFAULTS=1", "HELPER_MODEL="+model, "HELPER_TARGET="+target,
			"HELPER_DEV="+dev.URL(), "HELPER_DEV_TOKEN="+dev.Token, "HELPER_PRD="+prd.URL(), "HELPER_PRD_TOKEN="+prd.Token)
		logs, _ := os.Create(filepath.Join(tmp, "copy-"+target+".log"))
		defer func() { _ = logs.Close() }()
		cmd.Stdout, cmd.Stderr = logs, logs
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return 0, 0, err
		}
		// VmHWM of the child's own address space, sampled until it exits.
		// (rusage ru_maxrss is no good here: Go starts children with
		// CLONE_VM, so the child's maximum includes this process's memory
		// at the time of exec.)
		var hwm atomic.Int64
		done := make(chan struct{})
		go func() {
			for {
				if kib := vmHWM(cmd.Process.Pid); kib > hwm.Load() {
					hwm.Store(kib)
				}
				select {
				case <-done:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		err := cmd.Wait()
		close(done)
		if err != nil {
			data, _ := os.ReadFile(logs.Name())
			return 0, 0, fmt.Errorf("copy %s → %s: %w\n%s", model, target, err, data)
		}
		return time.Since(start), float64(hwm.Load()) / 1024, nil
	}

	// fresh replaces the world with a new one (its own Azurite and
	// workspaces), so that a phase does not inherit the bytes of the last.
	fresh := func() error {
		w.close()
		var err error
		w, err = newWorld()
		return err
	}
	// registered seeds an MLflow run of files in dev and registers it as
	// workspace registry model name; it returns the run id.
	registered := func(name string, files []artifactstest.Source, params map[string]string, metrics map[string]float64) (string, error) {
		src, err := artifactstest.SeedRun(ctx, w.devC, "/Shared/bench", "model", files, params, metrics, nil)
		if err != nil {
			return "", err
		}
		_, err = artifactstest.RegisterRunVersion(ctx, w.devC, name, src.ID, "model")
		return src.ID, err
	}

	// 1 GiB, workspace registry → other workspace.
	const gib = 1 << 30
	big := []artifactstest.Source{artifactstest.Random("model.bin", gib, 1), artifactstest.Bytes("MLmodel", []byte("flavors: {}\n"))}
	fmt.Fprintln(env.Log, "seeding a 1 GiB model")
	srcID, err := registered("big", big, map[string]string{"p": "1"}, map[string]float64{"m": 1})
	if err != nil {
		return nil, err
	}
	el, rss1, err := run(w, "big", "prod.bench.big")
	if err != nil {
		return nil, err
	}
	out["copy_mib_s"] = float64(gib) / (1 << 20) / el.Seconds()
	out["copy_peak_rss_mib_1gib"] = rss1

	// The physical limit: the same bytes down and up with the blob SDK alone.
	scratch, err := artifactstest.SeedRun(ctx, w.prdC, "/Shared/bench-scratch", "model", nil, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	rd, err := artifacts.RunSigner(w.devC, srcID, "model", false)(ctx, []string{"model.bin"})
	if err != nil {
		return nil, err
	}
	wr, err := artifacts.RunSigner(w.prdC, scratch.ID, "model", true)(ctx, []string{"model.bin"})
	if err != nil {
		return nil, err
	}
	piped, down, up, err := sdkRates(ctx, rd["model.bin"].URL, wr["model.bin"].URL, gib)
	if err != nil {
		return nil, err
	}
	// The limit is the slower direction on its own: a streaming copy moves
	// every byte both ways through the same Azurite, so it cannot beat it.
	out["azurite_limit_mib_s"] = float64(gib) / (1 << 20) / max(down, up).Seconds()
	out["azurite_sdk_copy_mib_s"] = float64(gib) / (1 << 20) / piped.Seconds()
	out["copy_vs_azurite_limit"] = out["copy_mib_s"] / out["azurite_limit_mib_s"]
	fmt.Fprintf(env.Log, "1 GiB: copy %.1f MiB/s, blob SDK alone %.1f MiB/s, peak RSS %.1f MiB\n", out["copy_mib_s"], out["azurite_limit_mib_s"], rss1)
	if err := fresh(); err != nil {
		return nil, err
	}

	// 4 GiB: UC source, so the emulator's registry copy does not hold it in
	// this process's memory.
	fmt.Fprintln(env.Log, "seeding a 4 GiB model")
	huge := []artifactstest.Source{artifactstest.Random("model.bin", 4*gib, 2)}
	hrun, err := artifactstest.SeedRun(ctx, w.devC, "/Shared/bench", "model", nil, map[string]string{"p": "1"}, nil, nil)
	if err != nil {
		return nil, err
	}
	if _, err := artifactstest.RegisterUCVersion(ctx, w.devC, "dev", "bench", "huge", hrun.ID, huge); err != nil {
		return nil, err
	}
	el4, rss4, err := run(w, "dev.bench.huge", "prod.bench.huge")
	if err != nil {
		return nil, err
	}
	out["copy_peak_rss_mib_4gib"] = rss4
	out["copy_mib_s_4gib"] = 4 * float64(gib) / (1 << 20) / el4.Seconds()
	fmt.Fprintf(env.Log, "4 GiB: copy %.1f MiB/s, peak RSS %.1f MiB\n", out["copy_mib_s_4gib"], rss4)
	if err := fresh(); err != nil {
		return nil, err
	}

	// 2,000 small files.
	small := artifactstest.SmallFiles("shards", 2000, 3)
	if _, err := registered("small", small, nil, nil); err != nil {
		return nil, err
	}
	els, _, err := run(w, "small", "prod.bench.small")
	if err != nil {
		return nil, err
	}
	out["copy_small_files_per_s"] = float64(len(small)) / els.Seconds()
	return out, nil
}

// sdkRates times, with the blob SDK alone (8 MiB blocks, 8 in flight): a
// download to nowhere, an upload of generated bytes, and a download piped
// into an upload.
func sdkRates(ctx context.Context, from, to string, size int64) (piped, down, up time.Duration, err error) {
	src, err := blob.NewClientWithNoCredential(from, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	dst, err := blockblob.NewClientWithNoCredential(to, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	opts := &blockblob.UploadStreamOptions{BlockSize: 8 << 20, Concurrency: 8}
	start := time.Now()
	resp, err := src.DownloadStream(ctx, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return 0, 0, 0, err
	}
	down = time.Since(start)
	start = time.Now()
	if _, err := dst.UploadStream(ctx, artifactstest.Random("x", size, 5).Open(), opts); err != nil {
		return 0, 0, 0, err
	}
	up = time.Since(start)
	start = time.Now()
	resp, err = src.DownloadStream(ctx, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	if _, err := dst.UploadStream(ctx, resp.Body, opts); err != nil {
		return 0, 0, 0, err
	}
	return time.Since(start), down, up, nil
}

// vmHWM is a process's peak resident set size in KiB (0 when unknown).
func vmHWM(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
