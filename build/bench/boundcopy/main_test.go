package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/azurite"
)

// TestRunMovesEveryByte: files of several blocks (the last one short), of
// exactly one block and of a few bytes arrive whole between two Azurite
// accounts, with fewer buffers than files, and the total is what was moved.
func TestRunMovesEveryByte(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	from, to := account(t, ctx), account(t, ctx)
	const block = 256 << 10
	sizes := map[string]int{"big.bin": 5*block + 1234, "one-block.bin": block, "MLmodel": 12, "empty": 0}
	want := map[string][]byte{}
	p := plan{Parallel: 3, BlockSize: block, Buffers: 2}
	var total int64
	for name, n := range sizes {
		data := make([]byte, n)
		_, _ = rand.Read(data)
		want[name] = data
		_, err := from.NewBlockBlobClient(name).UploadBuffer(ctx, data, nil)
		require.NoError(t, err)
		p.Files = append(p.Files, file{From: signed(t, from, name, sas.BlobPermissions{Read: true}), To: signed(t, to, name, sas.BlobPermissions{Create: true, Write: true}), Size: int64(n)})
		total += int64(n)
	}
	moved, err := run(ctx, p)
	require.NoError(t, err)
	require.Equal(t, total, moved)
	for name, data := range want {
		resp, err := to.NewBlobClient(name).DownloadStream(ctx, nil)
		require.NoError(t, err, name)
		got, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.NoError(t, err)
		require.True(t, bytes.Equal(data, got), "%s: %d bytes arrived, want %d (the same)", name, len(got), len(data))
	}
}

// TestRunFailsOnAShortSource: a source shorter than its listed size is an
// error, not a shorter copy.
func TestRunFailsOnAShortSource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	from, to := account(t, ctx), account(t, ctx)
	_, err := from.NewBlockBlobClient("f").UploadBuffer(ctx, make([]byte, 1000), nil)
	require.NoError(t, err)
	_, err = run(ctx, plan{Parallel: 1, BlockSize: 256, Buffers: 2, Files: []file{{
		From: signed(t, from, "f", sas.BlobPermissions{Read: true}), To: signed(t, to, "f", sas.BlobPermissions{Create: true, Write: true}), Size: 1001}}})
	require.Error(t, err)
}

// account is a container in a new Azurite.
func account(t *testing.T, ctx context.Context) *container.Client {
	t.Helper()
	az := azurite.Start(t)
	cred, err := azblob.NewSharedKeyCredential(az.AccountName, az.AccountKey)
	require.NoError(t, err)
	c, err := container.NewClientWithSharedKeyCredential(az.BlobEndpoint+"/bench", cred, nil)
	require.NoError(t, err)
	_, err = c.Create(ctx, nil)
	require.NoError(t, err)
	return c
}

func signed(t *testing.T, c *container.Client, name string, perm sas.BlobPermissions) string {
	t.Helper()
	u, err := c.NewBlobClient(name).GetSASURL(perm, time.Now().Add(time.Hour), &blob.GetSASURLOptions{})
	require.NoError(t, err)
	return u
}
