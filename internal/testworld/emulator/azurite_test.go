package emulator_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
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
