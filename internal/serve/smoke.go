package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/client"
	"golang.org/x/oauth2"

	"github.com/brickferry/brickferry/internal/artifacts"
)

// smokeResult is what the smoke test found.
type smokeResult struct {
	Ran         bool
	Skipped     string // why it did not run
	Source      string // where the request body came from
	Rows        int
	Predictions int
	Status      int
	Latency     time.Duration
	Err         error // the test failed (nil when it passed or did not run)
}

// invocationsPath is the REST path that scores with an endpoint.
func invocationsPath(endpoint string) string {
	return "/serving-endpoints/" + url.PathEscape(endpoint) + "/invocations"
}

// query sends a request body to an endpoint's invocations URL and returns
// the answer's body.
type query func(ctx context.Context, body []byte) ([]byte, error)

// workspaceQuery queries the endpoint on the workspace URL with the
// workspace's credentials.
func workspaceQuery(c *client.DatabricksClient, endpoint string) query {
	return func(ctx context.Context, body []byte) ([]byte, error) {
		var out []byte
		err := c.Do(ctx, http.MethodPost, invocationsPath(endpoint), map[string]string{"Content-Type": "application/json"}, nil, body, &out)
		return out, err
	}
}

// dataPlaneQuery queries a route-optimized endpoint on its own URL with a
// token obtained for it (routeopt.go), through the workspace client's
// transport (the agent's proxy, certificates and retries) without the
// workspace's credentials. Not through the SDK's ApiClient: its client-wide
// visitor points every request at the workspace host
// (databricks-sdk-go v0.81.0 config/api_client.go), which would send the
// query to the workspace URL.
func dataPlaneQuery(rt http.RoundTripper, url string, token *oauth2.Token) query {
	hc := &http.Client{Transport: rt}
	return func(ctx context.Context, body []byte) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		token.SetAuthHeader(req)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(io.LimitReader(resp.Body, maxExampleSize))
		if err != nil {
			return nil, err
		}
		if resp.StatusCode/100 != 2 {
			e := &apierr.APIError{StatusCode: resp.StatusCode, Message: strings.TrimSpace(string(out))}
			var body struct {
				ErrorCode string `json:"error_code"`
				Message   string `json:"message"`
			}
			if json.Unmarshal(out, &body) == nil && body.Message != "" {
				e.ErrorCode, e.Message = body.ErrorCode, body.Message
			}
			return nil, e
		}
		return out, nil
	}
}

// smokeTest queries the endpoint once with p and checks the status and that
// there is one prediction per input row. It returns ctx's error when the
// pipeline was cancelled.
func smokeTest(ctx context.Context, q query, p *Payload, timeout time.Duration) (smokeResult, error) {
	res := smokeResult{Ran: true, Rows: p.Rows}
	reqCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	body, err := q(reqCtx, p.Body)
	res.Latency = time.Since(start)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	var apiErr *apierr.APIError
	switch {
	case errors.As(err, &apiErr):
		res.Status = apiErr.StatusCode
		res.Err = fmt.Errorf("the endpoint answered HTTP %d %s: %s", apiErr.StatusCode, apiErr.ErrorCode, apiErr.Message)
		return res, nil
	case errors.Is(err, context.DeadlineExceeded):
		res.Err = fmt.Errorf("the endpoint did not answer within %s", timeout)
		return res, nil
	case err != nil:
		res.Err = fmt.Errorf("querying the endpoint: %w", err)
		return res, nil
	}
	res.Status = http.StatusOK
	n, err := countPredictions(body)
	if err != nil {
		res.Err = err
		return res, nil
	}
	res.Predictions = n
	if n != p.Rows {
		res.Err = fmt.Errorf("the endpoint answered %d prediction(s) for %d input row(s)", n, p.Rows)
	}
	return res, nil
}

// The model registry routes below are not in databricks-sdk-go v0.81.0.
// They are the ones MLflow's DatabricksModelsArtifactRepository uses to read
// a workspace registry model version's files
// (mlflow/store/artifact/databricks_models_artifact_repo.py).

type listModelVersionArtifactsResponse struct {
	Files []struct {
		Path  string `json:"path"`
		IsDir bool   `json:"is_dir"`
	} `json:"files"`
}

// inputExampleFiles are the files MLflow writes next to MLmodel when a model
// is logged with an input example, best first: serving_input_example.json
// (MLflow 2.17 and later) is already a serving request body;
// input_example.json is the bare example.
var inputExampleFiles = []string{"serving_input_example.json", "input_example.json"}

const maxExampleSize = 16 << 20

// inputExample reads the input example logged with a model version, of
// the workspace registry or of Unity Catalog (ucInputExample). It returns a
// nil Payload and the reason when there is none.
func inputExample(ctx context.Context, c *client.DatabricksClient, httpc *http.Client, model, version string) (*Payload, string, error) {
	if strings.Count(model, ".") == 2 {
		return ucInputExample(ctx, c, httpc, model, version)
	}
	var list listModelVersionArtifactsResponse
	if err := c.Do(ctx, http.MethodGet, "/api/2.0/mlflow/model-versions/list-artifacts", nil,
		map[string]any{"name": model, "version": version}, nil, &list); err != nil {
		return nil, "", fmt.Errorf("listing the files of %s version %s: %w", model, version, err)
	}
	for _, name := range inputExampleFiles {
		found := false
		for _, f := range list.Files {
			found = found || (!f.IsDir && strings.TrimPrefix(f.Path, "/") == name)
		}
		if !found {
			continue
		}
		data, err := downloadModelFile(ctx, c, httpc, model, version, name)
		if err != nil {
			return nil, "", err
		}
		p, err := examplePayload(name, data)
		if err != nil {
			return nil, "", fmt.Errorf("the %s of %s version %s %w", name, model, version, err)
		}
		return p, "", nil
	}
	return nil, fmt.Sprintf("%s version %s was logged without an input example", model, version), nil
}

func downloadModelFile(ctx context.Context, c *client.DatabricksClient, httpc *http.Client, model, version, path string) ([]byte, error) {
	creds, err := artifacts.ModelVersionSigner(c, model, version)(ctx, []string{path})
	if err != nil {
		return nil, fmt.Errorf("getting a download URL: %w", err)
	}
	signed := creds[path]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, signed.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("downloading %s: the signed URL is not valid", path)
	}
	for k, v := range signed.Headers {
		req.Header.Set(k, v)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		// The error quotes the signed URL, whose query is a credential.
		return nil, fmt.Errorf("downloading %s of %s version %s failed", path, model, version)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("downloading %s of %s version %s: HTTP %d", path, model, version, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxExampleSize+1))
	if err != nil {
		return nil, fmt.Errorf("downloading %s of %s version %s: %w", path, model, version, err)
	}
	if len(data) > maxExampleSize {
		return nil, fmt.Errorf("%s of %s version %s is larger than %d MB", path, model, version, maxExampleSize>>20)
	}
	return data, nil
}

// examplePayload turns an input example file into a request body. A bare
// input_example.json is a pandas "split" frame ({"columns", "data"}), a list
// of records, or a tensor; MLflow's own scoring server wraps it the same way.
func examplePayload(file string, data []byte) (*Payload, error) {
	if file == "serving_input_example.json" {
		return ParsePayload(data)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("is not valid JSON: %w", err)
	}
	key := "inputs"
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["columns"]; ok {
			if _, ok := x["data"]; ok {
				key = "dataframe_split"
			}
		}
	case []any:
		if len(x) > 0 {
			if _, ok := x[0].(map[string]any); ok {
				key = "dataframe_records"
			}
		}
	}
	body, err := json.Marshal(map[string]json.RawMessage{key: data})
	if err != nil {
		return nil, err
	}
	return ParsePayload(body)
}
