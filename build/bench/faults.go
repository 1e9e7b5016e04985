package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/httpclient"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// faultFigures measures the retrying transport (httpclient.Retry) on a
// workspace that fails a seeded 20 % of requests (429 with and without
// Retry-After, 503, 500, dropped connections): 200 reads
// (registered-models/get) per seed, 5 seeds, through the SDK client with
// the transport Brickferry uses.
//
//   - retry_success_pct_20pct_faults: reads that succeeded (median over seeds).
//   - retry_extra_requests_pct_20pct_faults: requests sent beyond one per
//     read, as a percentage of the reads (median).
//   - retry_overhead_ms_mean_20pct_faults: the mean read time with faults
//     minus the mean without (same run), median over seeds.
func faultFigures(env benchEnv) (map[string]float64, error) {
	var success, extra, overhead []float64
	for seed := uint64(1); seed <= 5; seed++ {
		cleanMS, _, _, err := readLoop(nil)
		if err != nil {
			return nil, err
		}
		faultMS, ok, sent, err := readLoop(&emulator.FaultPlan{Seed: seed, Rules: []emulator.FaultRule{{Rate: 0.2, Kinds: []emulator.FaultKind{
			emulator.Fault429, emulator.Fault429RetryAfter, emulator.Fault503, emulator.Fault500, emulator.FaultDrop,
		}}}})
		if err != nil {
			return nil, err
		}
		success = append(success, 100*float64(ok)/readCount)
		extra = append(extra, 100*float64(sent-readCount)/readCount)
		overhead = append(overhead, faultMS-cleanMS)
	}
	out := map[string]float64{
		"retry_success_pct_20pct_faults":        median(success),
		"retry_extra_requests_pct_20pct_faults": median(extra),
		"retry_overhead_ms_mean_20pct_faults":   median(overhead),
	}
	fmt.Fprintf(env.Log, "faults: %.1f %% of reads succeeded, %.1f %% extra requests, +%.1f ms mean per read\n",
		out["retry_success_pct_20pct_faults"], out["retry_extra_requests_pct_20pct_faults"], out["retry_overhead_ms_mean_20pct_faults"])
	return out, nil
}

const readCount = 200

// readLoop makes readCount reads and returns the median read time (ms), the
// reads that succeeded and the requests the workspace received.
func readLoop(plan *emulator.FaultPlan) (float64, int, int, error) {
	ws, err := emulator.New(emulator.Options{})
	if err != nil {
		return 0, 0, 0, err
	}
	defer ws.Close()
	cfg := ws.SDKConfig()
	cfg.RateLimitPerSecond = 10000
	cfg.RetryTimeoutSeconds = 1 // as auth.Resolve sets it: the transport retries
	cfg.HTTPTransport = httpclient.Retrying(http.DefaultTransport, httpclient.Retry{})
	c, err := client.New(cfg)
	if err != nil {
		return 0, 0, 0, err
	}
	reg := ml.NewModelRegistry(c)
	ctx := context.Background()
	if _, err := reg.CreateModel(ctx, ml.CreateModelRequest{Name: "bench"}); err != nil {
		return 0, 0, 0, err
	}
	ws.ResetRequests()
	if plan != nil {
		ws.SetFaults(*plan)
	}
	var times []float64
	ok := 0
	for i := 0; i < readCount; i++ {
		t0 := time.Now()
		if _, err := reg.GetModel(ctx, ml.GetModelRequest{Name: "bench"}); err == nil {
			ok++
		}
		times = append(times, msSince(t0))
	}
	return mean(times), ok, len(ws.Requests()), nil
}

func mean(samples []float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	sum := 0.0
	for _, v := range samples {
		sum += v
	}
	return sum / float64(len(samples))
}
