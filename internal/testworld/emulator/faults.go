package emulator

import (
	"crypto/tls"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"
)

// FaultKind is a failure the emulator can inject in front of a route, the way
// Databricks' front end produces them under load.
//
// Two kinds fail *after* the handler ran: the request was carried out (a
// job, a run, a version is made) and only its answer is lost. A client
// cannot tell them from a failure that changed nothing, so a layer that sends
// such a request again without looking first makes a duplicate. Databricks
// documents that case for runs/submit and run-now: the idempotency_token
// exists so that "upon failure you can retry until the request succeeds" with
// exactly one run launched (databricks-sdk-go v0.81.0 service/jobs/model.go,
// SubmitRun.IdempotencyToken; https://kb.databricks.com/jobs/jobs-idempotency.html);
// databricks/cli's test server injects the same fault ("--after-handler: run
// the handler first; keep its effect and replace only the response",
// libs/testserver/fault.go, PR #5882, where an SDK retry of run-now after a
// lost response started a second run).
type FaultKind string

const (
	// Fault429 answers 429 REQUEST_LIMIT_EXCEEDED without Retry-After.
	Fault429 FaultKind = "429"
	// Fault429RetryAfter answers 429 REQUEST_LIMIT_EXCEEDED with Retry-After: 1.
	Fault429RetryAfter FaultKind = "429+retry-after"
	// Fault503 answers 503 TEMPORARILY_UNAVAILABLE.
	Fault503 FaultKind = "503"
	// Fault500 answers 500 INTERNAL_ERROR.
	Fault500 FaultKind = "500"
	// Fault400 answers 400 INVALID_PARAMETER_VALUE: a refusal of the
	// request itself, which no layer retries.
	Fault400 FaultKind = "400"
	// FaultDrop closes the connection without answering.
	FaultDrop FaultKind = "drop"
	// FaultLatency delays the request by the rule's Latency (real time) and
	// then serves it normally.
	FaultLatency FaultKind = "latency"
	// Fault500AfterCommit serves the request (its effect is committed) and
	// then answers 500 INTERNAL_ERROR in place of the real answer: the
	// ambiguous failure a client cannot tell from one that changed nothing,
	// which Databricks produces when its front end times out on a back end
	// that finishes the work (see FaultKind for the sources).
	Fault500AfterCommit FaultKind = "500-after-commit"
	// FaultDropAfterCommit serves the request (its effect is committed) and
	// then resets the connection (TCP RST) without answering: a load
	// balancer or proxy that drops the connection of a request the back end
	// carried out (an idle or request timeout on the way back, a front end
	// restarted mid-answer; Azure Load Balancer sends a TCP reset on idle
	// timeout when "TCP reset" is on, learn.microsoft.com/azure/load-balancer/load-balancer-tcp-reset).
	// A Go client sees "connection reset by peer", never a status. net/http's
	// Transport itself sends a request again after a network error only when
	// it is idempotent (GET, HEAD, OPTIONS, TRACE, or an Idempotency-Key
	// header) on a connection used before (net/http Transport documentation);
	// databricks-sdk-go's own loop retries "connection reset by peer" for
	// every method, POST included (v0.81.0 httpclient/errors.go,
	// urlErrorTransientErrorMessages), which is why Brickferry turns that
	// loop down (internal/auth).
	FaultDropAfterCommit FaultKind = "drop-after-commit"
)

// AfterCommit reports whether k fails a request after carrying it out.
func (k FaultKind) AfterCommit() bool {
	return k == Fault500AfterCommit || k == FaultDropAfterCommit
}

// FaultPlan is a seeded, reproducible fault schedule: for the same Seed and
// the same sequence of requests, the same requests fail the same way.
//
//	ws.SetFaults(emulator.FaultPlan{Seed: 7, Rules: []emulator.FaultRule{
//		{Prefix: "/api/2.2/jobs/runs/get", Rate: 0.3, Kinds: []emulator.FaultKind{emulator.Fault429, emulator.Fault503}},
//		{Rate: 0.05, Kinds: []emulator.FaultKind{emulator.FaultLatency}, Latency: 50 * time.Millisecond},
//	}})
type FaultPlan struct {
	Seed  uint64
	Rules []FaultRule
}

// FaultRule applies to requests whose path is Path (when set; a segment
// written {name} matches any one segment, as in a net/http pattern, for ids
// a test cannot know in advance such as a logged model's) or starts with
// Prefix (empty: every route) and, if Method is set, whose method matches.
// The first matching rule decides: with probability Rate the request gets one
// of Kinds, chosen uniformly. A rule that has reached its Limit no longer
// matches, so the rules after it decide.
type FaultRule struct {
	Prefix  string
	Path    string
	Method  string
	Rate    float64
	Kinds   []FaultKind
	Latency time.Duration // for FaultLatency (default 100ms)
	// Limit stops the rule after this many injected faults (0: no limit).
	Limit int
}

type faultState struct {
	plan     FaultPlan
	rng      *rand.Rand
	injected []int
}

// SetFaults replaces the fault plan; the zero FaultPlan turns faults off.
func (ws *Workspace) SetFaults(p FaultPlan) {
	ws.faultMu.Lock()
	defer ws.faultMu.Unlock()
	if len(p.Rules) == 0 {
		ws.faults = nil
		return
	}
	ws.faults = &faultState{plan: p, rng: rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15)), injected: make([]int, len(p.Rules))}
}

// pickFault decides, deterministically in arrival order, whether r fails.
func (ws *Workspace) pickFault(r *http.Request) (FaultKind, time.Duration) {
	ws.faultMu.Lock()
	defer ws.faultMu.Unlock()
	fs := ws.faults
	if fs == nil {
		return "", 0
	}
	for i, rule := range fs.plan.Rules {
		if !rule.matches(r) || (rule.Limit > 0 && fs.injected[i] >= rule.Limit) {
			continue
		}
		if len(rule.Kinds) == 0 || fs.rng.Float64() >= rule.Rate {
			return "", 0
		}
		fs.injected[i]++
		lat := rule.Latency
		if lat == 0 {
			lat = 100 * time.Millisecond
		}
		return rule.Kinds[fs.rng.IntN(len(rule.Kinds))], lat
	}
	return "", 0
}

func (rule FaultRule) matches(r *http.Request) bool {
	if rule.Method != "" && rule.Method != r.Method {
		return false
	}
	if rule.Path != "" {
		return pathMatches(rule.Path, r.URL.Path)
	}
	return strings.HasPrefix(r.URL.Path, rule.Prefix)
}

// injectFault applies the plan to r and notes the fault on rec, before the
// fault acts (a drop records the request: statusWriter.Hijack). stop
// reports that the request has been answered (or dropped) and must not be
// served.
func (ws *Workspace) injectFault(w *statusWriter, r *http.Request, rec *Request) (stop bool) {
	kind, latency := ws.pickFault(r)
	rec.Fault = kind
	switch kind {
	case "":
		return false
	case FaultLatency:
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
		}
		return false
	case Fault500AfterCommit, FaultDropAfterCommit:
		return false // ServeHTTP serves it and replaces the answer
	case Fault429:
		writeError(w, errorf(http.StatusTooManyRequests, "REQUEST_LIMIT_EXCEEDED", "Too many requests. Please wait a moment and try again."))
	case Fault429RetryAfter:
		e := errorf(http.StatusTooManyRequests, "REQUEST_LIMIT_EXCEEDED", "Too many requests. Please wait a moment and try again.")
		e.RetryAfter = 1
		writeError(w, e)
	case Fault503:
		writeError(w, errorf(http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable. Please try again later."))
	case Fault500:
		writeError(w, errorf(http.StatusInternalServerError, "INTERNAL_ERROR", "Internal error (injected by the emulator)."))
	case Fault400:
		writeError(w, invalidParam("The request was refused (injected by the emulator)."))
	case FaultDrop:
		dropConnection(w)
	}
	return true
}

// dropConnection closes the connection of w without an answer.
func dropConnection(w *statusWriter) {
	if conn, _, err := w.Hijack(); err == nil {
		_ = conn.Close()
	}
}

// resetConnection resets the connection of w (TCP RST, no TLS close_notify)
// without an answer.
func resetConnection(w *statusWriter) {
	conn, _, err := w.Hijack()
	if err != nil {
		return
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}

func faultSuffix(k FaultKind) string {
	if k == "" {
		return ""
	}
	return " (fault " + string(k) + ")"
}

// pathMatches reports whether path is pattern, where a {name} segment of
// pattern matches any one non-empty segment.
func pathMatches(pattern, path string) bool {
	if !strings.Contains(pattern, "{") {
		return path == pattern
	}
	want, got := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(want) != len(got) {
		return false
	}
	for i, w := range want {
		if strings.HasPrefix(w, "{") && strings.HasSuffix(w, "}") {
			if got[i] == "" {
				return false
			}
		} else if w != got[i] {
			return false
		}
	}
	return true
}
