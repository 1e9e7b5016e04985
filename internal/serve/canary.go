package serve

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/serving"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/brickferry/brickferry/internal/agent"
)

// Canary is how a canary (trafficPercent below 100) is judged once the
// endpoint is READY and the smoke test passed: the endpoint's own health
// metrics (GET /api/2.0/serving-endpoints/{name}/metrics, databricks-sdk-go
// ServingEndpointsAPI.ExportMetrics) are read for Watch, and the new
// entity's requests, 5xx answers and p99 latency over that time are compared
// with the limits and with the stable entity. Then the new entity gets all
// traffic (promoted) or the previous config is put back (rolled back).
type Canary struct {
	Watch        time.Duration // 0: no watch (the split is left as it is)
	MaxErrorRate float64       // percent of the canary's requests answered 5xx
	MaxP99Ratio  float64       // canary p99 latency / stable p99 latency
	MinRequests  int           // fewer canary requests cannot be judged
	TooLittle    string        // promote, rollback or fail, when there were fewer
}

// readCanary reads the canary inputs; a watch needs a split.
func readCanary(in *agent.Inputs, traffic int) Canary {
	c := Canary{
		Watch:        in.Minutes("canaryMinutes", time.Second, maxTimeout),
		MaxErrorRate: readFloat(in, "canaryMaxErrorRate", 0, 100, "a percentage from 0 to 100"),
		MaxP99Ratio:  readFloat(in, "canaryMaxLatencyRatio", 1, 100, "a ratio from 1 to 100 (1.5: the canary's p99 latency may be 50 % above the stable version's)"),
		MinRequests:  in.Int("canaryMinRequests", 1, 1_000_000_000),
		TooLittle:    in.Choice("canaryTooLittleTraffic"),
	}
	if c.Watch > 0 && traffic == 100 {
		in.Fail("canaryMinutes", "a canary is watched only when trafficPercent is below 100, and it is 100: lower trafficPercent, or leave canaryMinutes empty")
	}
	return c
}

// readFloat reads a decimal input within [lo, hi].
func readFloat(in *agent.Inputs, name string, lo, hi float64, what string) float64 {
	v := in.String(name)
	if v == "" {
		return 0
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || f < lo || f > hi {
		in.Fail(name, "%q is not %s", agent.Neutralize(v), what)
		return 0
	}
	return f
}

// canaryPoll is the longest pause between two readings of the metrics;
// a short watch is read five times.
const canaryPoll = time.Minute

// entityMetrics is what the metrics say of one served entity: counters
// since it started, and the latency histogram's cumulative buckets.
type entityMetrics struct {
	Requests, Errors5xx float64
	Buckets             []bucket // by upper bound, the last +Inf
}

type bucket struct{ Le, Count float64 }

// minus is what happened between an earlier reading and m. A counter that
// went down was reset (a replica restarted): m counts from that reset.
func (m entityMetrics) minus(earlier entityMetrics) entityMetrics {
	if m.Requests < earlier.Requests {
		return m
	}
	out := entityMetrics{Requests: m.Requests - earlier.Requests, Errors5xx: max(m.Errors5xx-earlier.Errors5xx, 0)}
	for i, b := range m.Buckets {
		c := b.Count
		if i < len(earlier.Buckets) && earlier.Buckets[i].Le == b.Le {
			c -= earlier.Buckets[i].Count
		}
		out.Buckets = append(out.Buckets, bucket{Le: b.Le, Count: max(c, 0)})
	}
	return out
}

// errorRate is the percent of requests answered 5xx.
func (m entityMetrics) errorRate() float64 {
	if m.Requests <= 0 {
		return 0
	}
	return 100 * m.Errors5xx / m.Requests
}

// p99 is the 99th percentile latency in ms, interpolated in the histogram
// the way Prometheus's histogram_quantile does; NaN without requests.
func (m entityMetrics) p99() float64 {
	bs := m.Buckets
	if len(bs) == 0 || bs[len(bs)-1].Count <= 0 {
		return math.NaN()
	}
	rank := 0.99 * bs[len(bs)-1].Count
	lo, loCount := 0.0, 0.0
	for i, b := range bs {
		if b.Count < rank {
			lo, loCount = b.Le, b.Count
			continue
		}
		if math.IsInf(b.Le, 1) {
			if i == 0 {
				return math.NaN()
			}
			return bs[i-1].Le
		}
		if b.Count == loCount {
			return b.Le
		}
		return lo + (b.Le-lo)*(rank-loCount)/(b.Count-loCount)
	}
	return lo
}

// Metric names of the export (Databricks community thread "Full list of
// serving endpoint metrics returned by api/2.0/serving-endpoints/
// [ENDPOINT_NAME]/metrics"; the emulator's SOURCES.md has the row). The
// label that names the served entity is unverified: both names Databricks
// uses for a served entity elsewhere in the serving API are read.
var entityLabels = []string{"served_entity_name", "served_model_name"}

// parseMetrics reads the export's Prometheus text into metrics per served
// entity.
func parseMetrics(text string) (map[string]entityMetrics, error) {
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("the metrics are not Prometheus text: %w", err)
	}
	out := map[string]entityMetrics{}
	entity := func(m *dto.Metric) string {
		for _, want := range entityLabels {
			for _, l := range m.GetLabel() {
				if l.GetName() == want {
					return l.GetValue()
				}
			}
		}
		return ""
	}
	counter := func(names []string, set func(*entityMetrics, float64)) {
		for _, n := range names {
			for _, m := range fams[n].GetMetric() {
				e := out[entity(m)]
				v := m.GetCounter().GetValue()
				if m.GetUntyped() != nil {
					v = m.GetUntyped().GetValue()
				}
				set(&e, v)
				out[entity(m)] = e
			}
		}
	}
	counter([]string{"request_count_total", "request_count"}, func(e *entityMetrics, v float64) { e.Requests = v })
	counter([]string{"request_5xx_count_total", "request_5xx_count"}, func(e *entityMetrics, v float64) { e.Errors5xx = v })
	for _, m := range fams["request_latency_ms"].GetMetric() {
		e := out[entity(m)]
		e.Buckets = nil
		h := m.GetHistogram()
		for _, b := range h.GetBucket() {
			e.Buckets = append(e.Buckets, bucket{Le: b.GetUpperBound(), Count: float64(b.GetCumulativeCount())})
		}
		if n := len(e.Buckets); n == 0 || !math.IsInf(e.Buckets[n-1].Le, 1) {
			e.Buckets = append(e.Buckets, bucket{Le: math.Inf(1), Count: float64(h.GetSampleCount())})
		}
		sort.Slice(e.Buckets, func(i, j int) bool { return e.Buckets[i].Le < e.Buckets[j].Le })
		out[entity(m)] = e
	}
	delete(out, "")
	return out, nil
}

// maxMetricsSize bounds what is read of a metrics export.
const maxMetricsSize = 32 << 20

// readMetrics exports the endpoint's metrics.
func (s *step) readMetrics(ctx context.Context) (map[string]entityMetrics, error) {
	resp, err := s.api.ExportMetrics(ctx, serving.ExportMetricsRequest{Name: s.o.Endpoint})
	if err != nil {
		return nil, fmt.Errorf("reading the metrics of endpoint %s: %w", s.o.Endpoint, err)
	}
	defer resp.Contents.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Contents, maxMetricsSize))
	if err != nil {
		return nil, fmt.Errorf("reading the metrics of endpoint %s: %w", s.o.Endpoint, err)
	}
	return parseMetrics(string(data))
}

// canaryResult is what the watch saw and decided.
type canaryResult struct {
	Canary, Stable entityMetrics // over the watch
	Readings       int
	Verdict        string // promoted, rolledBack, failed
	Judgement      string // why
}

// watchCanary reads the metrics for the watch time, logging each reading,
// and judges the canary. It returns "pass", "fail" or "little".
func (s *step) watchCanary(ctx context.Context) (string, error) {
	c, p := s.o.Canary, s.plan
	clock := s.wait.clock
	s.log.Section("Canary")
	s.log.Info("Watching %s (%d %%) against %s for %s: at most %.2f %% 5xx answers, p99 latency at most %.2f times the stable version's, at least %d requests to judge.",
		p.newName, p.traffic, p.stable, c.Watch, c.MaxErrorRate, c.MaxP99Ratio, c.MinRequests)
	s.log.Progress(85, "watching the canary")
	base, err := s.readMetrics(ctx)
	if err != nil {
		return "", err
	}
	start := clock.Now()
	end := start.Add(c.Watch)
	interval := min(canaryPoll, c.Watch/5)
	var last map[string]entityMetrics
	for n := 1; ; n++ {
		wait := min(interval, end.Sub(clock.Now()))
		if wait <= 0 {
			break
		}
		if err := clock.Sleep(ctx, wait); err != nil {
			return "", err
		}
		if last, err = s.readMetrics(ctx); err != nil {
			return "", err
		}
		s.canary.Canary = last[p.newName].minus(base[p.newName])
		s.canary.Stable = last[p.stable].minus(base[p.stable])
		s.canary.Readings = n
		s.log.Info("Canary reading %d, %s in: %s; %s", n, clock.Now().Sub(start).Round(time.Second),
			describeMetrics(p.newName, s.canary.Canary), describeMetrics(p.stable, s.canary.Stable))
	}
	cm, sm := s.canary.Canary, s.canary.Stable
	s.log.SetOutput("canaryRequests", strconv.FormatInt(int64(cm.Requests), 10))
	s.log.SetOutput("canaryErrorRate", strconv.FormatFloat(cm.errorRate(), 'f', 2, 64))
	if p99 := cm.p99(); !math.IsNaN(p99) {
		s.log.SetOutput("canaryP99Ms", strconv.FormatInt(int64(math.Round(p99)), 10))
	}
	switch {
	case cm.Requests < float64(c.MinRequests):
		s.canary.Judgement = fmt.Sprintf("%s got %d request(s) in %s, fewer than the %d needed to judge it", p.newName, int64(cm.Requests), c.Watch, c.MinRequests)
		return "little", nil
	case cm.errorRate() > c.MaxErrorRate:
		s.canary.Judgement = fmt.Sprintf("%s answered %.2f %% of %d requests with 5xx, above the limit of %.2f %%", p.newName, cm.errorRate(), int64(cm.Requests), c.MaxErrorRate)
		return "fail", nil
	}
	cp, sp := cm.p99(), sm.p99()
	switch {
	case math.IsNaN(sp) || sp <= 0:
		s.canary.Judgement = fmt.Sprintf("%s answered %.2f %% with 5xx (limit %.2f %%); its latency was not compared: %s had no requests", p.newName, cm.errorRate(), c.MaxErrorRate, p.stable)
	case cp/sp > c.MaxP99Ratio:
		s.canary.Judgement = fmt.Sprintf("%s's p99 latency %.0f ms is %.2f times %s's %.0f ms, above the limit of %.2f", p.newName, cp, cp/sp, p.stable, sp, c.MaxP99Ratio)
		return "fail", nil
	default:
		s.canary.Judgement = fmt.Sprintf("%s answered %.2f %% with 5xx (limit %.2f %%) and its p99 latency %.0f ms is %.2f times %s's (limit %.2f)", p.newName, cm.errorRate(), c.MaxErrorRate, cp, cp/sp, p.stable, c.MaxP99Ratio)
	}
	return "pass", nil
}

func describeMetrics(name string, m entityMetrics) string {
	p99 := "no latency"
	if v := m.p99(); !math.IsNaN(v) {
		p99 = fmt.Sprintf("p99 %.0f ms", v)
	}
	return fmt.Sprintf("%s %d requests, %.2f %% 5xx, %s", name, int64(m.Requests), m.errorRate(), p99)
}

// judgeCanary watches the canary and acts on the verdict: promote the new
// entity to all traffic, or roll back. changed says whether this step made
// the split (else the previous config is the split itself, and rolling back
// gives the stable entity all traffic).
func (s *step) judgeCanary(ctx context.Context, changed bool) error {
	verdict, err := s.watchCanary(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.setVerdict("failed")
		return fmt.Errorf("the canary could not be judged: %w; endpoint %s keeps %s", err, s.o.Endpoint, describeServed(servedOf(s.final.Config)))
	}
	c := s.o.Canary
	switch verdict {
	case "pass":
		s.log.Info("Canary passed: %s. Giving %s all traffic.", s.canary.Judgement, s.plan.newName)
		return s.shiftAll(ctx, s.plan.newName, "promoted")
	case "little":
		s.log.Warning("the canary cannot be judged: %s; canaryTooLittleTraffic is %s", s.canary.Judgement, c.TooLittle)
		switch c.TooLittle {
		case "promote":
			return s.shiftAll(ctx, s.plan.newName, "promoted")
		case "rollback":
			return s.rollbackCanary(ctx, "the canary got too little traffic: "+s.canary.Judgement, changed)
		}
		s.setVerdict("failed")
		return fmt.Errorf("the canary got too little traffic: %s; endpoint %s keeps %s (canaryTooLittleTraffic: fail)", s.canary.Judgement, s.o.Endpoint, describeServed(servedOf(s.final.Config)))
	}
	s.log.Info("Canary failed: %s.", s.canary.Judgement)
	return s.rollbackCanary(ctx, "the canary failed: "+s.canary.Judgement, changed)
}

func (s *step) setVerdict(v string) {
	s.canary.Verdict = v
	s.log.SetOutput("canaryVerdict", v)
}

// rollbackCanary puts back what the endpoint served before the step, or,
// when the step found the split already there, gives the stable entity all
// traffic.
func (s *step) rollbackCanary(ctx context.Context, reason string, changed bool) error {
	var err error
	switch {
	case !s.o.Rollback:
		err = fmt.Errorf("%s; rollback is turned off, so endpoint %s keeps %s", reason, s.o.Endpoint, describeServed(servedOf(s.final.Config)))
	case changed:
		err = s.rollback(ctx, reason)
	default:
		s.log.Section("Rollback")
		if err = s.shiftAll(ctx, s.plan.stable, "rolledBack"); err == nil {
			s.rolledBack = true
			s.log.SetOutput("rolledBack", "true")
			err = fmt.Errorf("%s; endpoint %s was rolled back to %s", reason, s.o.Endpoint, s.plan.stable)
		}
	}
	if s.rolledBack {
		s.setVerdict("rolledBack")
	} else {
		s.setVerdict("failed")
	}
	return err
}

// shiftAll gives one served entity of the split all traffic (with every
// setting it has) and waits for the endpoint to serve that.
func (s *step) shiftAll(ctx context.Context, name, verdict string) error {
	cur := s.final.Config
	full, ok := entityInputs(cur)[name]
	if !ok {
		return fmt.Errorf("endpoint %s no longer serves %s", s.o.Endpoint, name)
	}
	var want []served
	for _, e := range servedOf(cur) {
		if e.Name == name {
			e.Traffic, e.State = 100, ""
			want = append(want, e)
		}
	}
	cfg := serving.EndpointCoreConfigInput{
		Name: s.o.Endpoint, ServedEntities: []serving.ServedEntityInput{full}, AutoCaptureConfig: autoCapture(cur.AutoCaptureConfig),
		TrafficConfig: &serving.TrafficConfig{Routes: []serving.Route{{ServedModelName: name, TrafficPercentage: 100}}},
	}
	s.log.Info("Giving %s all traffic on endpoint %s.", name, s.o.Endpoint)
	s.log.Progress(90, "shifting traffic")
	if err := s.sendConfig(ctx, cfg, want); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.setVerdict("failed")
		return fmt.Errorf("giving %s all traffic on endpoint %s: %w", name, s.o.Endpoint, err)
	}
	ep, err := s.settle(ctx, "the traffic shift to finish")
	s.final = ep
	switch {
	case err != nil:
		s.setVerdict("failed")
		return err
	case state(ep).ConfigUpdate == serving.EndpointStateConfigUpdateUpdateFailed || !servesConfig(ep, want):
		s.setVerdict("failed")
		return fmt.Errorf("giving %s all traffic on endpoint %s failed; it serves %s", name, s.o.Endpoint, describeServed(servedOf(ep.Config)))
	}
	s.setVerdict(verdict)
	s.log.Info("Endpoint %s serves %s.", s.o.Endpoint, describeServed(servedOf(ep.Config)))
	return nil
}
