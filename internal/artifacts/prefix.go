package artifacts

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
)

// PrefixSigner signs paths below a storage folder with one SAS token, as
// Unity Catalog's generate-temporary-credentials hands out
// (azure_user_delegation_sas.sas_token for the version's storage_location).
// folder may be an https blob URL or an abfss:// URI.
func PrefixSigner(folder, sasToken string) (Signer, error) {
	base, err := BlobFolderURL(folder)
	if err != nil {
		return nil, err
	}
	token := strings.TrimPrefix(sasToken, "?")
	return func(_ context.Context, paths []string) (map[string]Credential, error) {
		out := make(map[string]Credential, len(paths))
		for _, p := range paths {
			out[p] = Credential{Path: p, URL: base + "/" + escapePath(p) + "?" + token, Kind: AzureSAS}
		}
		return out, nil
	}, nil
}

// BlobFolderURL turns a storage location into the https (or, for Azurite,
// http) URL of the folder on the Blob endpoint, without a trailing slash.
// abfss://<container>@<account>.dfs.core.windows.net/<path> becomes
// https://<account>.blob.core.windows.net/<container>/<path>: the Blob
// endpoint serves hierarchical-namespace accounts too.
func BlobFolderURL(folder string) (string, error) {
	u, err := url.Parse(folder)
	if err != nil {
		return "", fmt.Errorf("storage location %q: %w", folder, err)
	}
	switch u.Scheme {
	case "https", "http":
		u.RawQuery = ""
		return strings.TrimSuffix(u.String(), "/"), nil
	case "abfss", "abfs":
		if u.User == nil || u.User.Username() == "" {
			return "", fmt.Errorf("storage location %q names no container (abfss://<container>@<account>.dfs.core.windows.net/<path>)", folder)
		}
		host := strings.Replace(u.Host, ".dfs.", ".blob.", 1)
		return strings.TrimSuffix("https://"+host+"/"+u.User.Username()+"/"+strings.TrimPrefix(u.EscapedPath(), "/"), "/"), nil
	default:
		return "", fmt.Errorf("storage location %q is not Azure storage (https:// or abfss://): this task copies Unity Catalog models on Azure only", folder)
	}
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// ListPrefix lists every file below folder with a SAS token that allows
// listing (Unity Catalog read credentials). Paths are relative to folder.
//
// An abfss:// folder, the form of a Unity Catalog storage location on Azure,
// is listed through the DFS endpoint (listDFS), the way MLflow's client lists
// it with the same credentials. An https blob folder is listed with the Blob
// service's List Blobs (listBlobs).
func (c *Copier) ListPrefix(ctx context.Context, folder, sasToken string) ([]File, error) {
	var out []File
	var err error
	if u, perr := url.Parse(folder); perr == nil && (u.Scheme == "abfss" || u.Scheme == "abfs") {
		out, err = c.listDFS(ctx, folder, sasToken)
	} else {
		out, err = c.listBlobs(ctx, folder, sasToken)
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// listDFS lists an abfss://<filesystem>@<account>.dfs.<suffix>/<path> folder
// with ADLS Gen2 Path - List
// (https://learn.microsoft.com/rest/api/storageservices/datalakestoragegen2/path/list:
// GET https://<account>.dfs.<suffix>/<filesystem>?resource=filesystem
// &directory=<dir>&recursive=false, continued through the x-ms-continuation
// header), one directory at a time, descending into the directories it
// answers: what MLflow's AzureDataLakeArtifactRepository.list_artifacts does
// with the SAS of a Unity Catalog version (file_system_client.get_paths(path,
// recursive=False), mlflow/store/artifact/azure_data_lake_artifact_repo.py).
//
// Why not the Blob endpoint's List Blobs: Unity Catalog hands out a user
// delegation SAS for the version's folder, and a user delegation SAS can be
// scoped to a directory of a hierarchical-namespace account (sr=d with sdd,
// Create a user delegation SAS, Microsoft Learn). List Blobs is an operation
// on the container; no Microsoft or Databricks source says that a
// directory-scoped SAS authorizes it, while Path - List of the directory
// itself is what MLflow's client does with these credentials.
func (c *Copier) listDFS(ctx context.Context, folder, sasToken string) ([]File, error) {
	u, err := url.Parse(folder)
	if err != nil || u.User == nil || u.User.Username() == "" {
		return nil, fmt.Errorf("storage location %q names no filesystem (abfss://<filesystem>@<account>.dfs.core.windows.net/<path>)", folder)
	}
	fsURL := "https://" + u.Host + "/" + url.PathEscape(u.User.Username())
	return walk(u.Path, func(dir string) ([]entry, error) {
		var out []entry
		continuation := ""
		for {
			page, next, err := c.listPathsPage(ctx, fsURL, strings.TrimPrefix(sasToken, "?"), dir, continuation)
			if err != nil {
				return nil, fmt.Errorf("listing %s/%s: %w", redact(fsURL), dir, err)
			}
			for _, p := range page {
				out = append(out, entry{path: p.Name, dir: bool(p.IsDirectory), size: int64(p.ContentLength)})
			}
			if next == "" || next == continuation {
				return out, nil
			}
			continuation = next
		}
	})
}

// dfsPath is one entry of a Path - List answer. The service writes
// contentLength and isDirectory as JSON strings ("123", "true"); numbers and
// booleans are read too.
type dfsPath struct {
	Name          string   `json:"name"`
	IsDirectory   flexBool `json:"isDirectory"`
	ContentLength flexInt  `json:"contentLength"`
}

type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	v, err := strconv.ParseBool(strings.Trim(string(data), `"`))
	*b = flexBool(v)
	return err
}

type flexInt int64

func (n *flexInt) UnmarshalJSON(data []byte) error {
	v, err := strconv.ParseInt(strings.Trim(string(data), `"`), 10, 64)
	*n = flexInt(v)
	return err
}

func (c *Copier) listPathsPage(ctx context.Context, fsURL, sasToken, dir, continuation string) ([]dfsPath, string, error) {
	q := url.Values{"resource": {"filesystem"}, "recursive": {"false"}}
	if dir != "" {
		q.Set("directory", dir)
	}
	if continuation != "" {
		q.Set("continuation", continuation)
	}
	signed := fsURL + "?" + q.Encode() + "&" + sasToken
	resp, err := c.doAgain(ctx, http.MethodGet, signed, map[string]string{"x-ms-version": xmsVersion}, nil)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", statusError("listing", resp)
	}
	defer func() { _ = resp.Body.Close() }()
	var page struct {
		Paths []dfsPath `json:"paths"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&page); err != nil {
		return nil, "", fmt.Errorf("reading the path list: %w", err)
	}
	return page.Paths, resp.Header.Get("x-ms-continuation"), nil
}

// listBlobs lists an https blob folder with the Blob service's List Blobs
// (https://learn.microsoft.com/rest/api/storageservices/list-blobs), flat,
// with prefix <folder>/.
//
// On a hierarchical namespace a flat List Blobs answers each directory too,
// as a 0-byte entry whose ResourceType is "directory" (BlobProperties
// ResourceType in List Blobs; azblob's internal/generated/zz_models.go).
// Such entries are not files and are left out: copied, they would become
// 0-byte files named after folders (an MLflow model's metadata/).
//
// It calls List Blobs itself instead of azblob's container client: that
// package links Apache Arrow and its JSON and compression libraries, about
// 2 MB of executable for a feature Brickferry does not use.
func (c *Copier) listBlobs(ctx context.Context, folder, sasToken string) ([]File, error) {
	base, err := BlobFolderURL(folder)
	if err != nil {
		return nil, err
	}
	parts, err := sas.ParseURL(base)
	if err != nil {
		return nil, fmt.Errorf("storage location %q: %w", folder, err)
	}
	prefix := strings.TrimSuffix(parts.BlobName, "/") + "/"
	parts.BlobName = ""
	containerURL := strings.TrimSuffix(parts.String(), "/")
	var out []File
	marker := ""
	for {
		page, err := c.listBlobsPage(ctx, containerURL, strings.TrimPrefix(sasToken, "?"), prefix, marker)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", redact(base), err)
		}
		for _, b := range page.Blobs {
			if b.Properties.ResourceType == "directory" {
				continue
			}
			out = append(out, File{Path: strings.TrimPrefix(b.Name, prefix), Size: b.Properties.ContentLength})
		}
		if marker = page.NextMarker; marker == "" {
			break
		}
	}
	return out, nil
}

// blobList is the part of a List Blobs answer (EnumerationResults) we read.
type blobList struct {
	Blobs []struct {
		Name       string `xml:"Name"`
		Properties struct {
			ContentLength int64  `xml:"Content-Length"`
			ResourceType  string `xml:"ResourceType"` // file or directory, on a hierarchical namespace
		} `xml:"Properties"`
	} `xml:"Blobs>Blob"`
	NextMarker string `xml:"NextMarker"`
}

func (c *Copier) listBlobsPage(ctx context.Context, containerURL, sasToken, prefix, marker string) (*blobList, error) {
	q := url.Values{"restype": {"container"}, "comp": {"list"}, "prefix": {prefix}}
	if marker != "" {
		q.Set("marker", marker)
	}
	signed := containerURL + "?" + q.Encode() + "&" + sasToken
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, signed, nil)
	if err != nil {
		return nil, scrub(err, signed)
	}
	req.Header.Set("x-ms-version", blobServiceVersion)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, scrub(err, signed)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("storage answered %s", resp.Status)
	}
	var page blobList
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&page); err != nil {
		return nil, fmt.Errorf("reading the blob list: %w", err)
	}
	return &page, nil
}

// blobServiceVersion is the Blob service REST API version we speak.
const blobServiceVersion = "2023-11-03"

// redact drops the query (the signature) of a signed URL for messages.
func redact(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		return raw[:i]
	}
	return raw
}
