// Package datasource evaluates the data sources of Brickferry's service
// connection type (vss-extension.json) and the data source bindings of its
// tasks (task.json) the way Azure DevOps does when it verifies a connection
// or fills a pick list in the classic editor:
//
//  1. the data source's endpointUrl is a Mustache template rendered with the
//     connection ({{endpoint.url}}, {{endpoint.<auth parameter>}}) and the
//     binding's parameters;
//  2. the request carries the headers of the connection's authentication
//     scheme, themselves templates ("Bearer {{endpoint.apitoken}}");
//  3. the answer's JSON is filtered by the resultSelector ("jsonpath:...");
//  4. each selected node is rendered by the binding's resultTemplate into
//     {"Value": ..., "DisplayValue": ...}, the pick list's items.
//
// Sources: "Create a service endpoint" (MicrosoftDocs/azure-devops-docs
// docs/extend/develop/service-endpoints.md: dataSources, endpointUrl from
// {{endpoint.url}}, jsonpath resultSelector, dataSourceBindings with target,
// endpointId, dataSourceName, an editable pickList target); "Service
// endpoint authentication schemes" (auth-schemes.md: the headers of a
// scheme, the token scheme's default header {{endpoint.apitoken}}); the
// DataSourceBinding contract of azure-devops-go-api / the agent
// (resultSelector prefixed "jsonpath:", resultTemplate, parameters); the
// resultTemplate shape { "Value" : "{{{id}}}", "DisplayValue" : "{{{name}}}" }
// of Azure DevOps' dataSourceBindings documentation (tfs: services).
// Azure DevOps evaluates JSONPath with Json.NET; github.com/theory/jsonpath
// implements RFC 9535, which agrees with it on the selectors used here
// (member names and [*]).
package datasource

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/cbroglie/mustache"
	"github.com/theory/jsonpath"
)

// Source is a data source of a service endpoint type.
type Source struct {
	Name           string `json:"name"`
	EndpointURL    string `json:"endpointUrl"`
	ResultSelector string `json:"resultSelector"`
	ResultTemplate string `json:"resultTemplate"`
}

// Header is a header of an authentication scheme.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Scheme is an authentication scheme of a service endpoint type.
type Scheme struct {
	Type    string   `json:"type"`
	Headers []Header `json:"headers"`
}

// EndpointType is a service endpoint type contributed by an extension.
type EndpointType struct {
	Name        string   `json:"name"`
	DataSources []Source `json:"dataSources"`
	Schemes     []Scheme `json:"authenticationSchemes"`
}

// Binding is a dataSourceBinding of a task.json.
type Binding struct {
	Target         string            `json:"target"`
	EndpointID     string            `json:"endpointId"`
	DataSourceName string            `json:"dataSourceName"`
	Parameters     map[string]string `json:"parameters"`
	ResultTemplate string            `json:"resultTemplate"`
}

// Item is an item of a pick list.
type Item struct {
	Value        string `json:"Value"`
	DisplayValue string `json:"DisplayValue"`
}

// Endpoint is a service connection of the type: its URL, its scheme and the
// scheme's parameters (e.g. apitoken).
type Endpoint struct {
	URL        string
	Scheme     string // the scheme's type, e.g. ms.vss-endpoint.endpoint-auth-scheme-token
	Parameters map[string]string
}

// The schemes of Azure DevOps with their default headers, used when the
// endpoint type declares none for the scheme (auth-schemes.md): the token
// scheme sends the bare token, the basic scheme the username and password
// as HTTP basic credentials.
const (
	SchemeToken = "ms.vss-endpoint.endpoint-auth-scheme-token"
	SchemeBasic = "ms.vss-endpoint.endpoint-auth-scheme-basic"
)

// ReadEndpointType reads the endpoint type named name from an extension
// manifest.
func ReadEndpointType(manifest, name string) (*EndpointType, error) {
	b, err := os.ReadFile(manifest)
	if err != nil {
		return nil, err
	}
	var m struct {
		Contributions []struct {
			Type       string          `json:"type"`
			Properties json.RawMessage `json:"properties"`
		} `json:"contributions"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", manifest, err)
	}
	for _, c := range m.Contributions {
		if c.Type != "ms.vss-endpoint.service-endpoint-type" {
			continue
		}
		var t EndpointType
		if err := json.Unmarshal(c.Properties, &t); err != nil {
			return nil, fmt.Errorf("%s: %w", manifest, err)
		}
		if t.Name == name {
			return &t, nil
		}
	}
	return nil, fmt.Errorf("%s contributes no service endpoint type %q", manifest, name)
}

// ReadBindings reads the dataSourceBindings of a task.json.
func ReadBindings(taskJSON string) ([]Binding, error) {
	b, err := os.ReadFile(taskJSON)
	if err != nil {
		return nil, err
	}
	var t struct {
		Bindings []Binding `json:"dataSourceBindings"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", taskJSON, err)
	}
	return t.Bindings, nil
}

// Source returns the data source named name.
func (t *EndpointType) Source(name string) (Source, bool) {
	for _, s := range t.DataSources {
		if s.Name == name {
			return s, true
		}
	}
	return Source{}, false
}

// context is what templates see: the endpoint and the binding's parameters.
func templateContext(ep Endpoint, params map[string]string) map[string]any {
	e := map[string]any{"url": ep.URL}
	for k, v := range ep.Parameters {
		e[k] = v
	}
	ctx := map[string]any{"endpoint": e}
	for k, v := range params {
		ctx[k] = v
	}
	return ctx
}

// Request builds the request of data source name for the endpoint.
func (t *EndpointType) Request(ctx context.Context, name string, ep Endpoint, params map[string]string) (*http.Request, error) {
	src, ok := t.Source(name)
	if !ok {
		return nil, fmt.Errorf("endpoint type %s has no data source %q", t.Name, name)
	}
	tc := templateContext(ep, params)
	u, err := mustache.Render(src.EndpointURL, tc)
	if err != nil {
		return nil, fmt.Errorf("data source %s: endpointUrl: %w", name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("data source %s: %w", name, err)
	}
	var headers []Header
	for _, s := range t.Schemes {
		if s.Type == ep.Scheme && len(s.Headers) > 0 {
			headers = s.Headers
		}
	}
	if headers == nil {
		switch ep.Scheme {
		case SchemeToken:
			headers = []Header{{Name: "Authorization", Value: "{{endpoint.apitoken}}"}}
		case SchemeBasic:
			req.SetBasicAuth(ep.Parameters["username"], ep.Parameters["password"])
		}
	}
	for _, h := range headers {
		v, err := mustache.Render(h.Value, tc)
		if err != nil {
			return nil, fmt.Errorf("scheme %s: header %s: %w", ep.Scheme, h.Name, err)
		}
		req.Header.Set(h.Name, v)
	}
	return req, nil
}

// StatusError is an answer other than 2xx.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body) }

// Select sends the data source's request and applies its resultSelector:
// the selected JSON nodes, numbers kept as written (json.Number).
func (t *EndpointType) Select(ctx context.Context, hc *http.Client, name string, ep Endpoint, params map[string]string) ([]any, error) {
	req, err := t.Request(ctx, name, ep, params)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, &StatusError{Status: resp.StatusCode, Body: string(body)}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("data source %s: the answer is not JSON: %w", name, err)
	}
	src, _ := t.Source(name)
	sel, ok := strings.CutPrefix(src.ResultSelector, "jsonpath:")
	if !ok {
		return nil, fmt.Errorf("data source %s: resultSelector %q has no jsonpath: prefix", name, src.ResultSelector)
	}
	p, err := jsonpath.Parse(sel)
	if err != nil {
		return nil, fmt.Errorf("data source %s: resultSelector: %w", name, err)
	}
	return p.Select(doc), nil
}

// Items evaluates a binding: the data source's selected nodes rendered by
// the binding's resultTemplate (else the data source's).
func (t *EndpointType) Items(ctx context.Context, hc *http.Client, b Binding, ep Endpoint) ([]Item, error) {
	nodes, err := t.Select(ctx, hc, b.DataSourceName, ep, b.Parameters)
	if err != nil {
		return nil, err
	}
	tmpl := b.ResultTemplate
	if tmpl == "" {
		src, _ := t.Source(b.DataSourceName)
		tmpl = src.ResultTemplate
	}
	if tmpl == "" {
		return nil, fmt.Errorf("binding of %s: no resultTemplate", b.Target)
	}
	out := make([]Item, 0, len(nodes))
	for _, n := range nodes {
		s, err := mustache.Render(tmpl, n)
		if err != nil {
			return nil, fmt.Errorf("binding of %s: resultTemplate: %w", b.Target, err)
		}
		var it Item
		if err := json.Unmarshal([]byte(s), &it); err != nil {
			return nil, fmt.Errorf("binding of %s: resultTemplate gave %q, not {Value, DisplayValue}: %w", b.Target, s, err)
		}
		out = append(out, it)
	}
	return out, nil
}
