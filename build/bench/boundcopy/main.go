// Command boundcopy is the copy benchmark's bound (build/bench/copy.go): it
// moves files from signed read URLs to signed write URLs with the azblob SDK
// and nothing else, in the shape of Brickferry's copier (internal/artifacts)
// with the same tuning: Parallel files at a time, each read as one stream
// (Get Blob) and cut into BlockSize blocks that are staged (Put Block) as soon
// as they are read, at most Buffers blocks in memory across all files, then
// committed (Put Block List); a file of at most BlockSize goes in one Put
// Blob. Each block carries its MD5 (Content-MD5), as the command's blocks
// do: without one, the service computes a CRC64 of the block itself
// (Azurite in JavaScript, a table lookup per byte: stageBlock in
// dist/src/blob/handlers/BlockBlobHandler.js, CRC64Hash in
// dist/src/common/utils/utils.js), which made an earlier version of this
// bound half as fast as the command it bounds. Apart from that it computes no digest (no SHA-256,
// no whole-file MD5), checks nothing back and makes no workspace call, so
// the copy command, which does all of that on top of the same blob traffic,
// cannot be faster.
//
// It reads a JSON plan (see plan) on stdin and prints the bytes moved.
package main

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // see move
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"golang.org/x/sync/errgroup"
)

// plan is what to move and how.
type plan struct {
	Files     []file `json:"files"`
	Parallel  int    `json:"parallel"`   // files at a time
	BlockSize int    `json:"block_size"` // bytes per staged block
	Buffers   int    `json:"buffers"`    // blocks in memory across all files
}

type file struct {
	From string `json:"from"` // signed read URL
	To   string `json:"to"`   // signed write URL
	Size int64  `json:"size"`
}

func main() {
	var p plan
	if err := json.NewDecoder(os.Stdin).Decode(&p); err != nil {
		fmt.Fprintln(os.Stderr, "boundcopy: reading the plan:", err)
		os.Exit(2)
	}
	n, err := run(context.Background(), p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "boundcopy:", err)
		os.Exit(1)
	}
	fmt.Println(n)
}

func run(ctx context.Context, p plan) (int64, error) {
	if p.Parallel < 1 || p.BlockSize < 1 || p.Buffers < 1 {
		return 0, errors.New("parallel, block_size and buffers must be at least 1")
	}
	pool := make(chan []byte, p.Buffers)
	for range p.Buffers {
		pool <- make([]byte, p.BlockSize)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.Parallel)
	var total int64
	for _, f := range p.Files {
		total += f.Size
		g.Go(func() error { return move(gctx, f, pool) })
	}
	return total, g.Wait()
}

// move copies one file: one Get Blob stream into Put Block requests, or one
// Put Blob for a file of at most one block.
func move(ctx context.Context, f file, pool chan []byte) error {
	src, err := blob.NewClientWithNoCredential(f.From, nil)
	if err != nil {
		return err
	}
	dst, err := blockblob.NewClientWithNoCredential(f.To, nil)
	if err != nil {
		return err
	}
	resp, err := src.DownloadStream(ctx, nil)
	if err != nil {
		return fmt.Errorf("get %s: %w", f.From, err)
	}
	defer func() { _ = resp.Body.Close() }()
	g, gctx := errgroup.WithContext(ctx)
	var ids []string
	for off := int64(0); off < f.Size && err == nil; {
		var buf []byte
		select {
		case buf = <-pool:
		case <-gctx.Done():
			err = gctx.Err()
			continue
		}
		n := min(int64(len(buf)), f.Size-off)
		if _, err = io.ReadFull(resp.Body, buf[:n]); err != nil {
			pool <- buf
			err = fmt.Errorf("read %s: %w", f.From, err)
			continue
		}
		body := streaming.NopCloser(bytes.NewReader(buf[:n]))
		if f.Size <= int64(len(buf)) { // one block: one Put Blob
			_, err = dst.Upload(ctx, body, nil)
			pool <- buf
			return err
		}
		id := blockID(len(ids))
		ids = append(ids, id)
		g.Go(func() error {
			defer func() { pool <- buf }()
			sum := md5.Sum(buf[:n]) //nolint:gosec // the service's transactional checksum, as the command sends it
			_, err := dst.StageBlock(gctx, id, body, &blockblob.StageBlockOptions{TransactionalValidation: blob.TransferValidationTypeMD5(sum[:])})
			return err
		})
		off += n
	}
	if werr := g.Wait(); werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	_, err = dst.CommitBlockList(ctx, ids, nil)
	return err
}

// blockID is block n's id: the same length for every block of a blob, as
// the service requires.
func blockID(n int) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return base64.StdEncoding.EncodeToString(b[:])
}
