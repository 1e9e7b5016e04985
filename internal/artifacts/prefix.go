package artifacts

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
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

// ListPrefix lists every blob below folder with a SAS token that allows
// listing (Unity Catalog read credentials). Paths are relative to folder.
func (c *Copier) ListPrefix(ctx context.Context, folder, sasToken string) ([]File, error) {
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
	cURL := strings.TrimSuffix(parts.String(), "/") + "?" + strings.TrimPrefix(sasToken, "?")
	cc, err := container.NewClientWithNoCredential(cURL, &container.ClientOptions{ClientOptions: c.azureOptions(nil)})
	if err != nil {
		return nil, fmt.Errorf("storage location %q: %w", folder, err)
	}
	var out []File
	pager := cc.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", redact(base), err)
		}
		for _, it := range page.Segment.BlobItems {
			if it.Name == nil {
				continue
			}
			f := File{Path: strings.TrimPrefix(*it.Name, prefix)}
			if it.Properties != nil && it.Properties.ContentLength != nil {
				f.Size = *it.Properties.ContentLength
			}
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// redact drops the query (the signature) of a signed URL for messages.
func redact(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		return raw[:i]
	}
	return raw
}
