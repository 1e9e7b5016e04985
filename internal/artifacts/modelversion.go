package artifacts

import (
	"context"
	"fmt"
	"net/http"

	"github.com/databricks/databricks-sdk-go/client"
	"golang.org/x/sync/errgroup"
)

// A workspace model registry version keeps its own copy of the model's
// files: registering copies them out of the run, so a run changed, deleted or
// purged after registration does not change the version. MLflow's client
// reads a registered version through two routes of the registry
// (DatabricksModelsArtifactRepository,
// mlflow/store/artifact/databricks_models_artifact_repo.py; the routes are
// @developer_stable there and not in databricks-sdk-go v0.81.0):
//
//   - GET /api/2.0/mlflow/model-versions/list-artifacts?name&version&path
//     [&page_token] answers {"files": [{path, is_dir, file_size}],
//     "next_page_token"}: the direct children of path (relative to the
//     version's root, "" for the root), paged; a path that is a file answers
//     that one file;
//   - GET /api/2.0/mlflow/model-versions/get-signed-download-uri?name&version&path
//     answers {"signed_uri", "headers": [{name, value}]} for one file, with no
//     credential type: MLflow reads it with one plain GET carrying the
//     headers (download_file_using_http_uri, "URI type is not known in this
//     context").

// listModelVersionArtifactsResponse is the answer of list-artifacts.
type listModelVersionArtifactsResponse struct {
	Files []struct {
		Path     string `json:"path"`
		IsDir    bool   `json:"is_dir"`
		FileSize int64  `json:"file_size"`
	} `json:"files"`
	NextPageToken string `json:"next_page_token"`
}

// signedDownloadURIResponse is the answer of get-signed-download-uri.
type signedDownloadURIResponse struct {
	SignedURI string `json:"signed_uri"`
	Headers   []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"headers"`
}

// ListModelVersion lists every file of version of the workspace registry
// model name, as the registry holds it, descending into folders. Paths are
// relative to the version's root and sorted.
func ListModelVersion(ctx context.Context, c *client.DatabricksClient, name, version string) ([]File, error) {
	return walk("", func(dir string) ([]entry, error) {
		var out []entry
		token := ""
		for {
			q := map[string]any{"name": name, "version": version, "path": dir}
			if token != "" {
				q["page_token"] = token
			}
			var page listModelVersionArtifactsResponse
			if err := c.Do(ctx, http.MethodGet, "/api/2.0/mlflow/model-versions/list-artifacts", nil, q, nil, &page); err != nil {
				return nil, fmt.Errorf("listing the files %q of %s version %s in the model registry: %w", dir, name, version, err)
			}
			for _, f := range page.Files {
				out = append(out, entry{path: f.Path, dir: f.IsDir, size: f.FileSize})
			}
			// MLflow stops at an empty page too, whatever the token says.
			if len(page.Files) == 0 || page.NextPageToken == "" || page.NextPageToken == token {
				return out, nil
			}
			token = page.NextPageToken
		}
	})
}

// signParallel is how many get-signed-download-uri requests one batch sends
// at once: the route signs one file per request.
const signParallel = 8

// ModelVersionSigner signs read URLs for files of version of the workspace
// registry model name (paths relative to the version's root), one
// get-signed-download-uri request per file. The URLs are of kind
// RegistryDownload.
func ModelVersionSigner(c *client.DatabricksClient, name, version string) Signer {
	return func(ctx context.Context, paths []string) (map[string]Credential, error) {
		creds := make([]Credential, len(paths))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(signParallel)
		for i, p := range paths {
			g.Go(func() error {
				var resp signedDownloadURIResponse
				q := map[string]any{"name": name, "version": version, "path": p}
				if err := c.Do(gctx, http.MethodGet, "/api/2.0/mlflow/model-versions/get-signed-download-uri", nil, q, nil, &resp); err != nil {
					return fmt.Errorf("signing %s of %s version %s: %w", p, name, version, err)
				}
				if resp.SignedURI == "" {
					return fmt.Errorf("signing %s of %s version %s: the answer has no signed_uri", p, name, version)
				}
				cred := Credential{Path: p, URL: resp.SignedURI, Kind: RegistryDownload, Headers: map[string]string{}}
				for _, h := range resp.Headers {
					// MLflow keeps only headers that have both a name
					// and a value (_extract_headers_from_signed_url).
					if h.Name != "" {
						cred.Headers[h.Name] = h.Value
					}
				}
				creds[i] = cred
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		out := make(map[string]Credential, len(paths))
		for _, cr := range creds {
			out[cr.Path] = cr
		}
		return out, nil
	}
}
