package emulator

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/serving"
)

// A serving endpoint's health metrics (GET /api/2.0/serving-endpoints/{name}/metrics,
// databricks-sdk-go v0.81.0 serving.ServingEndpointsAPI.ExportMetrics: "in
// either Prometheus or OpenMetrics exposition format"), driven by scripted
// client traffic: ServingTraffic sends an endpoint so many requests a minute
// on the workspace clock, split between its served entities by the traffic
// config it serves, each answered with the error rate and latency scripted
// for its entity.
//
// Metric names: request_count_total, request_4xx_count_total,
// request_5xx_count_total and the histogram request_latency_ms, as listed
// for this API in the Databricks community thread "Full list of serving
// endpoint metrics returned by api/2.0/serving-endpoints/[ENDPOINT_NAME]/metrics"
// (community.databricks.com, machine-learning, message 143021); the
// Databricks page "Track and export serving endpoint health metrics to
// Prometheus and Datadog" describes the same quantities (request rate, 4xx
// and 5xx error rate, P50/P99 latency) without a sample. The label naming
// the served entity (served_entity_name here), the buckets and the counters
// starting at 0 are **unverified**. The answer is Prometheus text format
// (text/plain; version=0.0.4), as the SDK asks with Accept: text/plain.

// ServingTraffic scripts the requests clients send an endpoint.
type ServingTraffic struct {
	// PerMinute requests reach the endpoint; each served entity gets its
	// share of the traffic config.
	PerMinute float64
	// Entities scripts how each served entity answers, by name; an entity
	// not listed answers every request in DefaultLatencyMs without error.
	Entities map[string]EntityHealth
}

// EntityHealth is how a served entity answers its requests.
type EntityHealth struct {
	ErrorRate float64 // share of requests answered 5xx, 0 to 1
	LatencyMs float64 // every request's latency (0: DefaultLatencyMs)
}

// DefaultLatencyMs is the latency of a served entity with no scripted health.
const DefaultLatencyMs = 40

// latencyBuckets are the upper bounds of request_latency_ms's buckets (+Inf
// follows).
var latencyBuckets = []float64{5, 10, 25, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2000, 5000, 10000}

// entityCounters are a served entity's metrics since it was first served.
type entityCounters struct {
	requests, errors5xx, latencySum float64
	buckets                         []float64 // cumulative counts per latencyBuckets, then +Inf
}

// OnServingTraffic scripts the client traffic of the endpoint with this
// name from now on (it may not exist yet).
func (ws *Workspace) OnServingTraffic(endpoint string, t ServingTraffic) {
	ws.do(func() {
		ws.serving.traffic[endpoint] = t
		if e, ok := ws.serving.endpoints[endpoint]; ok {
			e.trafficAt = ws.clock.Now()
		}
	})
}

// accumulateTraffic adds the requests the scripted traffic sent e's
// served entities since the last time, by the config e serves.
func (ws *Workspace) accumulateTraffic(e *endpoint, now time.Time) {
	t, ok := ws.serving.traffic[e.name]
	if !ok || e.config == nil || e.config.TrafficConfig == nil {
		if now.After(e.trafficAt) {
			e.trafficAt = now
		}
		return
	}
	switch {
	case e.trafficAt.IsZero():
		e.trafficAt = now
		return
	case !now.After(e.trafficAt):
		return
	}
	minutes := now.Sub(e.trafficAt).Minutes()
	e.trafficAt = now
	if e.counters == nil {
		e.counters = map[string]*entityCounters{}
	}
	for _, rt := range e.config.TrafficConfig.Routes {
		name := rt.ServedModelName + rt.ServedEntityName
		n := t.PerMinute * minutes * float64(rt.TrafficPercentage) / 100
		h := t.Entities[name]
		lat := h.LatencyMs
		if lat <= 0 {
			lat = DefaultLatencyMs
		}
		c := e.counters[name]
		if c == nil {
			c = &entityCounters{buckets: make([]float64, len(latencyBuckets)+1)}
			e.counters[name] = c
		}
		c.requests += n
		c.errors5xx += n * h.ErrorRate
		c.latencySum += n * lat
		for i := range c.buckets {
			if i == len(latencyBuckets) || lat <= latencyBuckets[i] {
				c.buckets[i] += n
			}
		}
	}
}

// metricsText is e's metrics in Prometheus text format, one series per
// served entity of the config it serves.
func (e *endpoint) metricsText() string {
	var served []string
	if e.config != nil && e.config.TrafficConfig != nil {
		for _, rt := range e.config.TrafficConfig.Routes {
			served = append(served, rt.ServedModelName+rt.ServedEntityName)
		}
	}
	slices.Sort(served)
	counter := func(c *entityCounters, which string) float64 {
		if c == nil {
			return 0
		}
		switch which {
		case "request_count_total":
			return c.requests
		case "request_5xx_count_total":
			return c.errors5xx
		}
		return 0 // request_4xx_count_total: clients are scripted to send valid requests
	}
	num := func(f float64) string { return strconv.FormatFloat(float64(int64(f)), 'f', -1, 64) }
	var b strings.Builder
	for _, m := range []string{"request_count_total", "request_4xx_count_total", "request_5xx_count_total"} {
		fmt.Fprintf(&b, "# TYPE %s counter\n", m)
		for _, name := range served {
			fmt.Fprintf(&b, "%s{served_entity_name=%q} %s\n", m, name, num(counter(e.counters[name], m)))
		}
	}
	b.WriteString("# TYPE request_latency_ms histogram\n")
	for _, name := range served {
		c := e.counters[name]
		if c == nil {
			c = &entityCounters{buckets: make([]float64, len(latencyBuckets)+1)}
		}
		for i, n := range c.buckets {
			le := "+Inf"
			if i < len(latencyBuckets) {
				le = strconv.FormatFloat(latencyBuckets[i], 'f', -1, 64)
			}
			fmt.Fprintf(&b, "request_latency_ms_bucket{served_entity_name=%q,le=%q} %s\n", name, le, num(n))
		}
		fmt.Fprintf(&b, "request_latency_ms_sum{served_entity_name=%q} %s\n", name, strconv.FormatFloat(c.latencySum, 'f', 1, 64))
		fmt.Fprintf(&b, "request_latency_ms_count{served_entity_name=%q} %s\n", name, num(c.buckets[len(c.buckets)-1]))
	}
	return b.String()
}

func (ws *Workspace) metricsRoutes() {
	ws.mux.route("GET /api/2.0/serving-endpoints/{name}/metrics", reflect.TypeFor[serving.ExportMetricsRequest](), func(w http.ResponseWriter, r *http.Request) {
		req := &serving.ExportMetricsRequest{}
		var text string
		var aerr *apiError
		ok := ws.serveLocked(w, r, req, func() *apiError { return decodeRequest(r, req) }, func() {
			ws.advanceLocked()
			var e *endpoint
			if e, aerr = ws.endpoint(r.PathValue("name")); aerr == nil {
				text = e.metricsText()
			}
		})
		if !ok {
			return
		}
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(text))
	})
}
