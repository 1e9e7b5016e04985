package serve

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/catalog"

	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/registry"
)

// ucInputExample reads the input example logged with a Unity Catalog model
// version the way MLflow's Unity Catalog client reads any file of a version
// (mlflow/store/_unity_catalog/registry/rest_store.py, download of model
// version files): the version's storage_location from the Unity Catalog
// API, a read-only credential for it from generate-temporary-credentials
// (MODEL_VERSION_OPERATION_READ), then a plain GET of each candidate file
// below that location; a 404 means the file is not there. Only the Azure
// user delegation SAS is supported, as in the copy.
func ucInputExample(ctx context.Context, c *client.DatabricksClient, httpc *http.Client, model, version string) (*Payload, string, error) {
	n, err := strconv.Atoi(version)
	if err != nil {
		return nil, "", fmt.Errorf("version %q of %s is not a number", version, model)
	}
	mv, err := catalog.NewModelVersions(c).Get(ctx, catalog.GetModelVersionRequest{FullName: model, Version: n})
	if err != nil {
		return nil, "", fmt.Errorf("reading version %d of %s: %w", n, model, err)
	}
	folder, err := artifacts.BlobFolderURL(mv.StorageLocation)
	if err != nil {
		return nil, "", err
	}
	var creds registry.UCCredentialsResponse
	if err := c.Do(ctx, http.MethodPost, registry.UCRoute+"generate-temporary-credentials", nil, nil,
		registry.UCCredentialsRequest{Name: model, Version: version, Operation: "MODEL_VERSION_OPERATION_READ"}, &creds); err != nil {
		return nil, "", fmt.Errorf("getting read credentials for %s version %s: %w", model, version, err)
	}
	if creds.Credentials.AzureUserDelegationSAS == nil || creds.Credentials.AzureUserDelegationSAS.SASToken == "" {
		return nil, fmt.Sprintf("the storage credentials of %s version %s are not an Azure SAS; give a request body", model, version), nil
	}
	sign, err := artifacts.PrefixSigner(folder, creds.Credentials.AzureUserDelegationSAS.SASToken)
	if err != nil {
		return nil, "", err
	}
	signed, err := sign(ctx, inputExampleFiles)
	if err != nil {
		return nil, "", err
	}
	for _, name := range inputExampleFiles {
		data, found, err := getSigned(ctx, httpc, signed[name].URL, maxExampleSize)
		if err != nil {
			return nil, "", fmt.Errorf("downloading %s of %s version %s: %w", name, model, version, err)
		}
		if !found {
			continue
		}
		p, err := examplePayload(name, data)
		if err != nil {
			return nil, "", fmt.Errorf("the %s of %s version %s %w", name, model, version, err)
		}
		return p, "", nil
	}
	return nil, fmt.Sprintf("%s version %s was logged without an input example", model, version), nil
}

// getSigned GETs a signed storage URL, at most limit bytes. found is false
// on 404. Errors never quote the URL, whose query is a credential.
func getSigned(ctx context.Context, httpc *http.Client, signedURL string, limit int64) (data []byte, found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, signedURL, nil)
	if err != nil {
		return nil, false, fmt.Errorf("the signed URL is not valid")
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("the storage request failed")
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, false, nil
	default:
		return nil, false, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	data, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, false, fmt.Errorf("reading the answer: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, false, fmt.Errorf("larger than %d MB", limit>>20)
	}
	return data, true, nil
}
