package emulator_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/fixtures"
)

// TestArtifactsThroughAzurite moves bytes up and down through the signed
// URLs of credentials-for-write/-read with the azblob SDK, the way the tasks
// do, against a real Azurite.
func TestArtifactsThroughAzurite(t *testing.T) {
	az := azurite.Start(t)
	blob := &emulator.BlobAccount{Endpoint: az.BlobEndpoint, AccountName: az.AccountName, AccountKey: az.AccountKey}
	ws, clock := start(t, emulator.Options{Blob: blob, CredentialPageSize: 2})
	prod, _ := start(t, emulator.Options{Blob: blob}) // a second workspace shares Azurite, own container
	cl := ws.Client(t)
	c := ctx(t)
	runID, _ := trainedRun(t, ws, clock)

	// Download the model file the training run uploaded.
	var read emulator.GetCredentialsResponse
	require.NoError(t, cl.Do(c, http.MethodPost, "/api/2.0/mlflow/artifacts/credentials-for-read", nil, nil,
		emulator.GetCredentialsForRead{RunID: runID, Path: []string{"model/MLmodel"}}, &read))
	require.Len(t, read.CredentialInfos, 1)
	assert.Equal(t, "AZURE_SAS_URI", read.CredentialInfos[0].Type)
	got := download(t, read.CredentialInfos[0].SignedURI)
	want, err := os.ReadFile(filepath.Join(fixtures.ChurnModel(t), "MLmodel"))
	require.NoError(t, err)
	assert.Equal(t, want, got)

	// Upload three files: credentials come in pages of two.
	paths := []string{"extra/a.txt", "extra/b.txt", "extra/c.txt"}
	var infos []emulator.ArtifactCredentialInfo
	page := ""
	for {
		var resp emulator.GetCredentialsResponse
		require.NoError(t, cl.Do(c, http.MethodPost, "/api/2.0/mlflow/artifacts/credentials-for-write", nil, nil,
			emulator.GetCredentialsForWrite{RunID: runID, Path: paths, PageToken: page}, &resp))
		infos = append(infos, resp.CredentialInfos...)
		if page = resp.NextPageToken; page == "" {
			break
		}
	}
	require.Len(t, infos, 3)
	for _, info := range infos {
		bc, err := blockblob.NewClientWithNoCredential(info.SignedURI, nil)
		require.NoError(t, err)
		_, err = bc.UploadBuffer(c, []byte("content of "+info.Path), nil)
		require.NoError(t, err)
	}
	listed, err := ml.NewExperiments(cl).ListArtifactsAll(c, ml.ListArtifactsRequest{RunId: runID, Path: "extra"})
	require.NoError(t, err)
	assert.Len(t, listed, 3)

	// Registering copies the run's files into registry storage.
	reg := ml.NewModelRegistry(cl)
	_, err = reg.CreateModel(c, ml.CreateModelRequest{Name: "churn"})
	require.NoError(t, err)
	_, err = reg.CreateModelVersion(c, ml.CreateModelVersionRequest{Name: "churn", Source: "runs:/" + runID + "/model", RunId: runID})
	require.NoError(t, err)
	var signed emulator.GetModelVersionSignedDownloadURIResponse
	require.NoError(t, cl.Do(c, http.MethodGet, "/api/2.0/mlflow/model-versions/get-signed-download-uri", nil,
		map[string]any{"name": "churn", "version": "1", "path": "MLmodel"}, nil, &signed))
	assert.Equal(t, want, download(t, signed.SignedURI))

	// Unity Catalog: create, upload with the temporary SAS, finalize.
	pcl := prod.Client(t)
	require.NoError(t, pcl.Do(c, http.MethodPost, "/api/2.1/unity-catalog/models", nil, nil,
		map[string]any{"catalog_name": "main", "schema_name": "ml", "name": "churn"}, nil))
	var created emulator.UCModelVersionResponse
	require.NoError(t, pcl.Do(c, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/create", nil, nil,
		emulator.CreateUCModelVersionRequest{Name: "main.ml.churn", Source: "runs:/" + runID + "/model"}, &created))
	var creds emulator.GenerateTemporaryUCCredentialsResponse
	require.NoError(t, pcl.Do(c, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/generate-temporary-credentials", nil, nil,
		emulator.GenerateTemporaryUCCredentialsRequest{Name: "main.ml.churn", Version: created.ModelVersion.Version, Operation: "MODEL_VERSION_OPERATION_READ_WRITE"}, &creds))
	fileURL := created.ModelVersion.StorageLocation + "/MLmodel?" + creds.Credentials.AzureUserDelegationSAS.SASToken
	bc, err := blockblob.NewClientWithNoCredential(fileURL, nil)
	require.NoError(t, err)
	_, err = bc.UploadBuffer(c, want, nil)
	require.NoError(t, err)
	assert.Equal(t, want, download(t, fileURL))
	var final emulator.UCModelVersionResponse
	require.NoError(t, pcl.Do(c, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/finalize", nil, nil,
		emulator.FinalizeUCModelVersionRequest{Name: "main.ml.churn", Version: created.ModelVersion.Version}, &final))
	assert.Equal(t, "READY", final.ModelVersion.Status)
}

func download(t *testing.T, signedURL string) []byte {
	t.Helper()
	bc, err := blockblob.NewClientWithNoCredential(signedURL, nil)
	require.NoError(t, err)
	resp, err := bc.DownloadStream(ctx(t), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = io.Copy(&buf, resp.Body)
	require.NoError(t, err)
	return buf.Bytes()
}

// dfsCall sends one DFS request to a signed URL with headers.
func dfsCall(t *testing.T, method, signed, query string, headers map[string]string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, signed+"&"+query, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("x-ms-error-code") + string(data)
}

// TestADLSGen2CredentialsWithACustomerKey: a workspace that hands out ADLS
// Gen2 SAS URLs with a customer-provided key. Its DFS endpoint takes the
// DFS write sequence (create, append at positions, flush at the length) and
// reads, refuses a request without the key, a write with a read URL, a
// forged signature, a gap before the flush position and a body whose MD5 is
// not its Content-MD5.
func TestADLSGen2CredentialsWithACustomerKey(t *testing.T) {
	az := azurite.Start(t)
	blob := &emulator.BlobAccount{Endpoint: az.BlobEndpoint, AccountName: az.AccountName, AccountKey: az.AccountKey}
	ws, clock := start(t, emulator.Options{Blob: blob, CredentialType: emulator.CredentialAzureADLS, CustomerKey: true})
	cl := ws.Client(t)
	c := ctx(t)
	runID, _ := trainedRun(t, ws, clock)

	var wr, rd emulator.GetCredentialsResponse
	require.NoError(t, cl.Do(c, http.MethodPost, "/api/2.0/mlflow/artifacts/credentials-for-write", nil, nil,
		emulator.GetCredentialsForWrite{RunID: runID, Path: []string{"extra/a.txt"}}, &wr))
	require.NoError(t, cl.Do(c, http.MethodPost, "/api/2.0/mlflow/artifacts/credentials-for-read", nil, nil,
		emulator.GetCredentialsForRead{RunID: runID, Path: []string{"extra/a.txt"}}, &rd))
	w, r := wr.CredentialInfos[0], rd.CredentialInfos[0]
	assert.Equal(t, emulator.CredentialAzureADLS, w.Type)
	headers := map[string]string{"x-ms-version": "2023-11-03"}
	for _, h := range w.Headers {
		headers[h.Name] = h.Value
	}
	assert.Len(t, w.Headers, 3, "the key, its SHA-256 and the algorithm")
	assert.Equal(t, w.Headers, r.Headers)

	st, _ := dfsCall(t, http.MethodPut, r.SignedURI, "resource=file", headers, nil)
	assert.Equal(t, http.StatusForbidden, st, "a read URL does not write")
	forged := strings.Replace(w.SignedURI, "sp=rcw", "sp=rcwd", 1)
	st, _ = dfsCall(t, http.MethodPut, forged, "resource=file", headers, nil)
	assert.Equal(t, http.StatusForbidden, st, "a changed token is not signed")
	st, msg := dfsCall(t, http.MethodPut, w.SignedURI, "resource=file", map[string]string{"x-ms-version": "2023-11-03"}, nil)
	assert.Equal(t, http.StatusConflict, st, "no key")
	assert.Contains(t, msg, "BlobUsesCustomerSpecifiedEncryption")

	st, _ = dfsCall(t, http.MethodPut, w.SignedURI, "resource=file", headers, nil)
	require.Equal(t, http.StatusCreated, st)
	st, msg = dfsCall(t, http.MethodPatch, w.SignedURI, "action=append&position=0", map[string]string{"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA==", "x-ms-version": "2023-11-03", "x-ms-encryption-key": headers["x-ms-encryption-key"], "x-ms-encryption-key-sha256": headers["x-ms-encryption-key-sha256"], "x-ms-encryption-algorithm": "AES256"}, []byte("hello "))
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Contains(t, msg, "Md5Mismatch")
	st, _ = dfsCall(t, http.MethodPatch, w.SignedURI, "action=append&position=0", headers, []byte("hello "))
	require.Equal(t, http.StatusAccepted, st)
	st, msg = dfsCall(t, http.MethodPatch, w.SignedURI, "action=flush&position=11", headers, nil)
	assert.Equal(t, http.StatusBadRequest, st, "5 bytes are missing")
	assert.Contains(t, msg, "InvalidFlushPosition")
	st, _ = dfsCall(t, http.MethodPatch, w.SignedURI, "action=append&position=6", headers, []byte("world"))
	require.Equal(t, http.StatusAccepted, st)
	st, _ = dfsCall(t, http.MethodPatch, w.SignedURI, "action=flush&position=11", headers, nil)
	require.Equal(t, http.StatusOK, st)

	st, _ = dfsCall(t, http.MethodGet, r.SignedURI, "x=1", nil, nil)
	assert.Equal(t, http.StatusConflict, st, "a read without the key")
	st, body := dfsCall(t, http.MethodGet, r.SignedURI, "x=1", headers, nil)
	assert.Equal(t, http.StatusOK, st)
	assert.Equal(t, "hello world", body)

	// The file is an artifact of the run like any other.
	files, err := ml.NewExperiments(cl).ListArtifactsAll(c, ml.ListArtifactsRequest{RunId: runID, Path: "extra"})
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.Equal(t, int64(11), files[0].FileSize)
}
