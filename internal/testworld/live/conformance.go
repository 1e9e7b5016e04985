package live

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Endpoint is where a replay sends one workspace's requests.
type Endpoint struct {
	URL    string // https://127.0.0.1:port
	Token  string
	Client *http.Client
}

// Difference is one way the emulator's answers differ from a recording's:
// for a route (method and recorded path), a status code, an error code, or
// a JSON field (its path, a.b[].c) whose type differs or that only one side
// has.
type Difference struct {
	Route, What, Recorded, Emulator string
}

// Conformance is the result of replaying a recording.
type Conformance struct {
	Replayed    int
	NotReplayed []string // exchanges whose request body was not recorded (not JSON)
	Differences []Difference
}

// Table prints the differences as a table.
func (c Conformance) Table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ROUTE\tWHAT\tRECORDED\tEMULATOR")
	for _, d := range c.Differences {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", d.Route, d.What, d.Recorded, d.Emulator)
	}
	_ = w.Flush()
	return b.String()
}

// placeholderRe matches what a Redactor writes in place of an id or host.
var placeholderRe = regexp.MustCompile(`<(id-[0-9]+|dev-host|prod-host)>|\b9000000000[0-9]{6}\b`)

// Replay sends each recorded request, in order, to the emulated workspaces
// (dev and prod by Exchange.Workspace) and compares each answer's shape
// with the recorded one: the status code, the error code, and for each
// route the JSON field names and types seen in its answers (the union over
// the route's exchanges, so that a poll that saw a run in another state
// than the recording's does not count as a difference). Placeholders are
// bound to the emulator's values as its answers reveal them (the id at the
// same place in the same answer), and replaced by them in later requests.
// A GET whose answer has another shape than the recorded one is retried for
// up to settle: the emulated run or endpoint may not be as far along yet.
func Replay(ctx context.Context, rec Recording, ws map[string]Endpoint, settle time.Duration) (Conformance, error) {
	var c Conformance
	bound := map[string]string{}
	for name, e := range ws {
		bound["<"+name+"-host>"] = strings.TrimPrefix(e.URL, "https://")
	}
	sub := func(s string) string {
		return placeholderRe.ReplaceAllStringFunc(s, func(m string) string {
			if v, ok := bound[m]; ok {
				return v
			}
			return m
		})
	}
	type shapes map[string]string // field path → type ("" when seen with several)
	recorded, emulated := map[string]shapes{}, map[string]shapes{}
	var routes []string
	for i, x := range rec.Exchanges {
		route := x.Workspace + " " + x.Method + " " + x.Path
		if bytes.HasPrefix(x.Request, []byte(`{"non_json_bytes"`)) {
			c.NotReplayed = append(c.NotReplayed, fmt.Sprintf("#%d %s", i, route))
			continue
		}
		e, ok := ws[x.Workspace]
		if !ok {
			return c, fmt.Errorf("exchange #%d: no workspace %q to replay against", i, x.Workspace)
		}
		if !slices.Contains(routes, route) {
			routes = append(routes, route)
			recorded[route], emulated[route] = shapes{}, shapes{}
		}
		var status int
		var body []byte
		deadline := time.Now().Add(settle)
		for {
			var err error
			status, body, err = send(ctx, e, x.Method, sub(x.Path), sub(x.Query), sub(string(x.Request)))
			if err != nil {
				return c, fmt.Errorf("exchange #%d %s: %w", i, route, err)
			}
			same := status == x.Status && sameShape(shapeOf(x.Response), shapeOf(body))
			if same || x.Method != http.MethodGet || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.Replayed++
		if status != x.Status {
			c.Differences = append(c.Differences, Difference{route, fmt.Sprintf("status (#%d)", i), strconv.Itoa(x.Status), strconv.Itoa(status)})
		}
		if rc, ec := errorCode(x.Response), errorCode(body); rc != ec {
			c.Differences = append(c.Differences, Difference{route, fmt.Sprintf("error_code (#%d)", i), rc, ec})
		}
		bind(bound, x.Response, body)
		merge(recorded[route], shapeOf(x.Response))
		merge(emulated[route], shapeOf(body))
	}
	for _, route := range routes {
		r, e := recorded[route], emulated[route]
		keys := map[string]bool{}
		for k := range r {
			keys[k] = true
		}
		for k := range e {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		slices.Sort(sorted)
		for _, k := range sorted {
			rt, rok := r[k]
			et, eok := e[k]
			switch {
			case !eok:
				c.Differences = append(c.Differences, Difference{route, "field " + k, rt, "(absent)"})
			case !rok:
				c.Differences = append(c.Differences, Difference{route, "field " + k, "(absent)", et})
			case rt != et:
				c.Differences = append(c.Differences, Difference{route, "field " + k, rt, et})
			}
		}
	}
	return c, nil
}

func send(ctx context.Context, e Endpoint, method, path, query, body string) (int, []byte, error) {
	u := e.URL + path
	if query != "" {
		u += "?" + query
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e.Token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func decode(b []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if len(bytes.TrimSpace(b)) == 0 || dec.Decode(&v) != nil {
		return nil, false
	}
	return v, true
}

// shapeOf lists a JSON body's field paths and their types; a body that is
// not JSON is one field, "(body)", of type "text" (or "empty").
func shapeOf(b []byte) map[string]string {
	out := map[string]string{}
	v, ok := decode(b)
	if !ok {
		if len(bytes.TrimSpace(b)) == 0 {
			return out
		}
		out["(body)"] = "text"
		return out
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if path != "" {
				out[path] = "object"
			}
			for k, val := range x {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, val)
			}
		case []any:
			out[path] = "array"
			for _, val := range x {
				walk(path+"[]", val)
			}
		case string:
			out[path] = "string"
		case json.Number:
			out[path] = "number"
		case bool:
			out[path] = "bool"
		case nil:
			out[path] = "null"
		}
	}
	walk("", v)
	return out
}

func sameShape(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func merge(into, from map[string]string) {
	for k, v := range from {
		if old, ok := into[k]; ok && old != v {
			into[k] = old + "|" + v
			continue
		}
		into[k] = v
	}
}

func errorCode(b []byte) string {
	v, ok := decode(b)
	if !ok {
		return ""
	}
	if m, ok := v.(map[string]any); ok {
		if s, ok := m["error_code"].(string); ok {
			return s
		}
	}
	return ""
}

// bind learns placeholders from an answer: walking the recorded and the
// emulator's answers together, a recorded string with placeholders is
// matched against the emulator's string at the same place, and a recorded
// numeric placeholder takes the emulator's number there.
func bind(bound map[string]string, recorded, got []byte) {
	r, ok1 := decode(recorded)
	g, ok2 := decode(got)
	if !ok1 || !ok2 {
		return
	}
	var walk func(r, g any)
	walk = func(r, g any) {
		switch x := r.(type) {
		case map[string]any:
			if y, ok := g.(map[string]any); ok {
				for k, v := range x {
					walk(v, y[k])
				}
			}
		case []any:
			if y, ok := g.([]any); ok {
				for i := range min(len(x), len(y)) {
					walk(x[i], y[i])
				}
			}
		case json.Number:
			if y, ok := g.(json.Number); ok && placeholderRe.MatchString(x.String()) {
				if _, done := bound[x.String()]; !done {
					bound[x.String()] = y.String()
				}
			}
		case string:
			y, ok := g.(string)
			if !ok || !placeholderRe.MatchString(x) {
				return
			}
			names := placeholderRe.FindAllString(x, -1)
			parts := placeholderRe.Split(x, -1)
			pattern := "^"
			for i, p := range parts {
				pattern += regexp.QuoteMeta(p)
				if i < len(names) {
					pattern += "(.+?)"
				}
			}
			m := regexp.MustCompile(pattern + "$").FindStringSubmatch(y)
			for i, name := range names {
				if _, done := bound[name]; !done && m != nil {
					bound[name] = m[i+1]
				}
			}
		}
	}
	walk(r, g)
}
