package azurite_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/azurite"
)

// faultsContainer starts Azurite with a container "faults", and gives the
// account's key and a client of the container that reaches Azurite
// directly.
func faultsContainer(t *testing.T) (*azurite.Server, *azblob.SharedKeyCredential, *container.Client, context.Context) {
	t.Helper()
	s := azurite.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cred, err := azblob.NewSharedKeyCredential(s.AccountName, s.AccountKey)
	require.NoError(t, err)
	direct, err := container.NewClientWithSharedKeyCredential(s.BlobEndpoint+"/faults", cred, nil)
	require.NoError(t, err)
	_, err = direct.Create(ctx, nil)
	require.NoError(t, err)
	return s, cred, direct, ctx
}

// TestFaultsAfterCommitCarryTheWriteOut: a write failed after commit (500
// OperationTimedOut, or a reset connection) is in the store all the same;
// a read never gets such a fault; the proxy records what it did.
func TestFaultsAfterCommitCarryTheWriteOut(t *testing.T) {
	s, cred, direct, ctx := faultsContainer(t)

	p, err := azurite.NewFaultProxyPlan(s.BlobEndpoint, azurite.FaultPlan{
		Seed: 1, Rate: 1, Kinds: []azurite.Fault{azurite.Fault500AfterCommit, azurite.FaultDropAfterCommit},
		Writes: map[int]azurite.Fault{1: azurite.Fault500AfterCommit, 2: azurite.FaultDropAfterCommit},
	})
	require.NoError(t, err)
	defer p.Close()
	// No retries: what the first answer was is what is checked.
	opts := &blockblob.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}}
	for i, name := range []string{"a", "b"} {
		proxied, err := blockblob.NewClientWithSharedKeyCredential(p.Endpoint+"/faults/"+name, cred, opts)
		require.NoError(t, err)
		_, err = proxied.UploadBuffer(ctx, []byte("body "+name), nil)
		require.Error(t, err, "write %d: the client sees a failure", i+1)
		got, err := direct.NewBlobClient(name).DownloadStream(ctx, nil)
		require.NoError(t, err, "write %d: the blob was written all the same", i+1)
		body, _ := io.ReadAll(got.Body)
		_ = got.Body.Close()
		assert.Equal(t, "body "+name, string(body))

		// A read at rate 1 with only after-commit kinds is served.
		rd, err := proxied.DownloadStream(ctx, nil)
		require.NoError(t, err, "a read gets no after-commit fault")
		_ = rd.Body.Close()
	}
	reqs := p.Requests()
	require.Len(t, reqs, 4)
	assert.Equal(t, azurite.Fault500AfterCommit, reqs[0].Fault)
	assert.Equal(t, http.StatusInternalServerError, reqs[0].Status)
	assert.Equal(t, http.StatusCreated, reqs[0].Committed)
	assert.Equal(t, azurite.FaultDropAfterCommit, reqs[2].Fault)
	assert.Zero(t, reqs[2].Status, "dropped")
	assert.Equal(t, http.StatusCreated, reqs[2].Committed)
	for _, r := range []azurite.Request{reqs[1], reqs[3]} {
		assert.Equal(t, http.MethodGet, r.Method)
		assert.Empty(t, r.Fault)
		assert.Equal(t, http.StatusOK, r.Status)
	}
	assert.Equal(t, int64(2), p.Injected())
}

// TestFaultsBeforeTheServiceChangeNothing: 503, 500 and a dropped
// connection before forwarding leave the store as it was.
func TestFaultsBeforeTheServiceChangeNothing(t *testing.T) {
	s, cred, direct, ctx := faultsContainer(t)
	p, err := azurite.NewFaultProxyPlan(s.BlobEndpoint, azurite.FaultPlan{Seed: 1, Writes: map[int]azurite.Fault{
		1: azurite.FaultServerBusy, 2: azurite.FaultInternalError, 3: azurite.FaultDrop,
	}})
	require.NoError(t, err)
	defer p.Close()
	opts := &blockblob.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}}
	proxied, err := blockblob.NewClientWithSharedKeyCredential(p.Endpoint+"/faults/x", cred, opts)
	require.NoError(t, err)
	for range 3 {
		_, err = proxied.Upload(ctx, streaming.NopCloser(bytes.NewReader([]byte("x"))), nil)
		require.Error(t, err)
	}
	_, err = direct.NewBlobClient("x").GetProperties(ctx, nil)
	require.Error(t, err, "nothing was written")
	var statuses []int
	for _, r := range p.Requests() {
		statuses = append(statuses, r.Status)
	}
	assert.Equal(t, []int{503, 500, 0}, statuses)
}
