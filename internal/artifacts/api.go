package artifacts

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/ml"
)

// File is one file to move: its path relative to the folder that was listed
// (slash-separated) and its size in bytes.
type File struct {
	Path string
	Size int64
}

// Kind is the type of a signed URL (MLflow's ArtifactCredentialType).
type Kind string

// The kinds Databricks hands out: those of ArtifactCredentialType, and
// RegistryDownload for the read URLs of the workspace model registry's
// get-signed-download-uri, which answers no type (modelversion.go).
const (
	AzureSAS     Kind = "AZURE_SAS_URI"
	AzureADLSSAS Kind = "AZURE_ADLS_GEN2_SAS_URI"
	AWSPresigned Kind = "AWS_PRESIGNED_URL"
	GCPSigned    Kind = "GCP_SIGNED_URL"
	// RegistryDownload is a read-only URL of any cloud, read with one plain
	// GET that carries the headers handed out with it, as MLflow's
	// DatabricksModelsArtifactRepository reads it.
	RegistryDownload Kind = "REGISTRY_DOWNLOAD_URI"
)

// Credential is a signed URL for one file and the headers that must be sent
// with it.
type Credential struct {
	Path    string // relative path, as asked for
	URL     string // a bearer credential: never log it
	Kind    Kind
	Headers map[string]string
}

// Signer returns signed URLs for paths (relative to the signer's folder), all
// of them or an error.
type Signer func(ctx context.Context, paths []string) (map[string]Credential, error)

// ListRun lists every file below dir in a run's artifacts (dir "" is the
// whole run), descending into folders: artifacts/list answers one level.
// Paths are relative to dir and sorted.
func ListRun(ctx context.Context, c *client.DatabricksClient, runID, dir string) ([]File, error) {
	exps := ml.NewExperiments(c)
	return walk(dir, func(d string) ([]entry, error) {
		files, err := exps.ListArtifactsAll(ctx, ml.ListArtifactsRequest{RunId: runID, Path: d})
		if err != nil {
			return nil, fmt.Errorf("listing artifacts %q of run %s: %w", d, runID, err)
		}
		out := make([]entry, len(files))
		for i, f := range files {
			out[i] = entry{path: f.Path, dir: f.IsDir, size: f.FileSize}
		}
		return out, nil
	})
}

// entry is one child of a directory, as a listing answers it: its path from
// the listing's root (or from the directory listed), whether it is a
// directory, its size.
type entry struct {
	path string
	dir  bool
	size int64
}

// walk lists every file below root, one directory at a time: list answers
// the children of a directory (every page of them). Paths are relative to
// root and sorted. A listing that answers a path relative to the directory
// listed rather than to its root is read the same way; an entry naming the
// directory itself is skipped.
func walk(root string, list func(dir string) ([]entry, error)) ([]File, error) {
	root = strings.Trim(root, "/")
	var out []File
	queue := []string{root}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		entries, err := list(d)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			p := strings.Trim(e.path, "/")
			if p == d {
				continue
			}
			if d != "" && !strings.HasPrefix(p, d+"/") {
				p = path.Join(d, p)
			}
			if e.dir {
				queue = append(queue, p)
				continue
			}
			rel := p
			if root != "" {
				rel = strings.TrimPrefix(p, root+"/")
			}
			out = append(out, File{Path: rel, Size: e.size})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// The artifact credential routes are not in databricks-sdk-go v0.81.0. These
// types follow MLflow's mlflow/protos/databricks_artifacts.proto
// (GetCredentialsForRead, GetCredentialsForWrite, ArtifactCredentialInfo).

type credentialsRequest struct {
	RunID     string   `json:"run_id"`
	Path      []string `json:"path"`
	PageToken string   `json:"page_token,omitempty"`
}

type credentialsResponse struct {
	CredentialInfos []credentialInfo `json:"credential_infos"`
	NextPageToken   string           `json:"next_page_token"`
}

// credentialInfo is MLflow's ArtifactCredentialInfo.
type credentialInfo struct {
	RunID     string `json:"run_id"`
	Path      string `json:"path"`
	SignedURI string `json:"signed_uri"`
	Headers   []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"headers"`
	Type string `json:"type"`
}

// RunSigner signs paths below dir of a run's artifacts for reading or
// writing. One call asks for all the paths and follows next_page_token.
func RunSigner(c *client.DatabricksClient, runID, dir string, write bool) Signer {
	route := "/api/2.0/mlflow/artifacts/credentials-for-read"
	if write {
		route = "/api/2.0/mlflow/artifacts/credentials-for-write"
	}
	return pagedSigner("run "+runID, dir, func(ctx context.Context, full []string, token string) ([]credentialInfo, string, error) {
		var resp credentialsResponse
		req := credentialsRequest{RunID: runID, Path: full, PageToken: token}
		if err := c.Do(ctx, http.MethodPost, route, nil, nil, req, &resp); err != nil {
			return nil, "", err
		}
		return resp.CredentialInfos, resp.NextPageToken, nil
	})
}

// pagedSigner is a Signer over a credential route that signs paths (below
// dir of an artifact root) in pages: ask asks for the full paths with the
// page token and answers one page and the next token. what names the
// artifact root in errors.
func pagedSigner(what, dir string, ask func(ctx context.Context, full []string, token string) ([]credentialInfo, string, error)) Signer {
	dir = strings.Trim(dir, "/")
	return func(ctx context.Context, paths []string) (map[string]Credential, error) {
		if len(paths) == 0 {
			return map[string]Credential{}, nil
		}
		full := make([]string, len(paths))
		byFull := make(map[string]string, len(paths))
		for i, p := range paths {
			full[i] = path.Join(dir, p)
			byFull[full[i]] = p
		}
		out := make(map[string]Credential, len(paths))
		token := ""
		for {
			infos, next, err := ask(ctx, full, token)
			if err != nil {
				return nil, fmt.Errorf("signing %d artifact paths of %s: %w", len(paths), what, err)
			}
			for _, ci := range infos {
				rel, ok := byFull[strings.TrimPrefix(ci.Path, "/")]
				if !ok {
					return nil, fmt.Errorf("signing artifacts of %s: the server answered a path that was not asked for (%q)", what, ci.Path)
				}
				cred := Credential{Path: rel, URL: ci.SignedURI, Kind: Kind(ci.Type), Headers: map[string]string{}}
				for _, h := range ci.Headers {
					cred.Headers[h.Name] = h.Value
				}
				out[rel] = cred
			}
			if next == "" || next == token {
				break
			}
			token = next
		}
		for _, p := range paths {
			if _, ok := out[p]; !ok {
				return nil, fmt.Errorf("signing artifacts of %s: no signed URL for %q", what, p)
			}
		}
		return out, nil
	}
}
