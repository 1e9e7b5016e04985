package artifacts

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // transactional Content-MD5 of a block, checked by the storage service
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"golang.org/x/sync/errgroup"
)

// smallFile is the size up to which a file is read into a buffer of its own
// size rather than a block buffer from the pool, so that many small files can
// move at once without taking the large buffers.
const smallFile = 256 << 10

// maxSinglePut is the largest object one PUT may carry on S3
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html).
const maxSinglePut = 5 << 30

// xmsVersion is the storage REST version sent to ADLS Gen2 (DFS) endpoints.
const xmsVersion = "2023-11-03"

// writer writes one file read from r (exactly size bytes), passing every
// byte to h in order before write returns. stored is the source's stored
// Content-MD5, nil if it has none.
type writer interface {
	// oneRequest reports whether a file of size bytes goes to storage in one
	// request, whose MD5 the storage computes: then h computes the MD5 too.
	oneRequest(size int64) bool
	write(ctx context.Context, r io.Reader, size int64, h *hasher, stored []byte) error
}

// writer returns the writer for a signed URL, refusing a file its storage
// API cannot take before anything is read.
func (c *Copier) writer(cred Credential, size int64) (writer, error) {
	switch cred.Kind {
	case AzureSAS:
		bb, err := blockblob.NewClientWithNoCredential(cred.URL, &blockblob.ClientOptions{ClientOptions: c.azureOptions(cred.Headers)})
		if err != nil {
			return nil, &permanentError{fmt.Errorf("signed URL: %w", scrub(err, cred.URL))}
		}
		return &blocks{c: c, t: &azureBlocks{bb: bb}}, nil
	case AzureADLSSAS:
		return &blocks{c: c, t: &adlsBlocks{c: c, cred: cred}}, nil
	case AWSPresigned, GCPSigned:
		if size > maxSinglePut {
			return nil, &permanentError{fmt.Errorf("%d bytes is more than one signed PUT can carry (5 GiB)", size)}
		}
		return &presignedPut{c: c, cred: cred}, nil
	case "":
		return nil, &permanentError{errors.New("the server gave no signed URL type")}
	default:
		return nil, &permanentError{fmt.Errorf("signed URLs of type %s are not supported", cred.Kind)}
	}
}

// azureOptions are the azblob client options: our transport, a few quick
// retries (a failed file is retried as a whole above), and the headers the
// server handed out with the URL on the requests they belong to
// (headers.go).
func (c *Copier) azureOptions(headers map[string]string) azcore.ClientOptions {
	o := azcore.ClientOptions{
		Transport: c.hc,
		Retry:     policy.RetryOptions{MaxRetries: 3, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: 2 * time.Second, TryTimeout: 5 * time.Minute},
	}
	if len(headers) > 0 {
		o.PerCallPolicies = []policy.Policy{headerPolicy(headers)}
	}
	return o
}

// headerPolicy sets the handed-out headers that the request's Blob
// operation takes (headersFor).
type headerPolicy map[string]string

func (h headerPolicy) Do(req *policy.Request) (*http.Response, error) {
	for k, v := range headersFor(blobOperation(req.Raw()), h) {
		req.Raw().Header.Set(k, v)
	}
	return req.Next()
}

// source is a source file being read.
type source struct {
	body io.ReadCloser
	// md5 is the file's stored Content-MD5 (Azure Blob, ADLS Gen2), nil if
	// it has none: Get Blob and Path - Read without a range answer the
	// property as Content-MD5
	// (https://learn.microsoft.com/rest/api/storageservices/get-blob,
	// https://learn.microsoft.com/rest/api/storageservices/datalakestoragegen2/path/read).
	md5 []byte
}

// open starts reading a source file.
func (c *Copier) open(ctx context.Context, cred Credential, size int64) (source, error) {
	switch cred.Kind {
	case AzureSAS:
		b, err := blob.NewClientWithNoCredential(cred.URL, &blob.ClientOptions{ClientOptions: c.azureOptions(cred.Headers)})
		if err != nil {
			return source{}, &permanentError{fmt.Errorf("signed URL: %w", scrub(err, cred.URL))}
		}
		resp, err := b.DownloadStream(ctx, nil)
		if err != nil {
			return source{}, fmt.Errorf("reading the source: %w", scrub(err, cred.URL))
		}
		if resp.ContentLength != nil && *resp.ContentLength != size {
			_ = resp.Body.Close()
			return source{}, fmt.Errorf("the source has %d bytes, %d were listed", *resp.ContentLength, size)
		}
		// The retry reader resumes an interrupted body from where it
		// stopped (a ranged GET with If-Match on the ETag).
		return source{body: resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 5}), md5: resp.ContentMD5}, nil
	case AzureADLSSAS, AWSPresigned, GCPSigned, RegistryDownload:
		resp, err := c.doAgain(ctx, http.MethodGet, cred.URL, cred.Headers, nil)
		if err != nil {
			return source{}, fmt.Errorf("reading the source: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return source{}, statusError("reading the source", resp)
		}
		src := source{body: resp.Body}
		if cred.Kind == AzureADLSSAS {
			src.md5, _ = base64.StdEncoding.DecodeString(resp.Header.Get("Content-MD5"))
			if len(src.md5) != md5.Size {
				src.md5 = nil
			}
		}
		return src, nil
	default:
		return source{}, &permanentError{fmt.Errorf("signed URLs of type %q are not supported", cred.Kind)}
	}
}

// do sends one request with the server's headers. The error never quotes
// the signed URL.
func (c *Copier) do(ctx context.Context, method, rawURL string, headers map[string]string, body io.Reader, length int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return nil, &permanentError{fmt.Errorf("signed URL: %w", scrub(err, rawURL))}
	}
	if length >= 0 {
		req.ContentLength = length
		if length == 0 {
			req.Body = http.NoBody
		}
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, scrub(err, rawURL)
	}
	return resp, nil
}

// requestTries is how many times one storage request that has the same
// effect when repeated (an ADLS create, an append at a position, a flush; a
// read or a check) is sent before its file is tried again as a whole. The
// Azure SDKs retry the same requests in their pipelines.
const requestTries = 3

// doAgain is do for such a request: sent again, with the body from its
// start, after no answer or a 408, 429, 500, 502, 503 or 504. body nil:
// no body.
func (c *Copier) doAgain(ctx context.Context, method, rawURL string, headers map[string]string, body []byte) (*http.Response, error) {
	for try := 1; ; try++ {
		var r io.Reader
		length := int64(-1)
		if body != nil {
			r, length = bytes.NewReader(body), int64(len(body))
		}
		resp, err := c.do(ctx, method, rawURL, headers, r, length)
		if try >= requestTries || ctx.Err() != nil || !transient(resp, err) {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
			_ = resp.Body.Close()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(c.opts.Backoff(try + 1)):
		}
	}
}

// transient reports a failure that the same request may not meet again.
func transient(resp *http.Response, err error) bool {
	if err != nil {
		var perm *permanentError
		return !errors.As(err, &perm)
	}
	switch resp.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func statusError(what string, resp *http.Response) error {
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	err := fmt.Errorf("%s: storage answered %s: %s", what, resp.Status, strings.TrimSpace(firstLine(string(msg))))
	if resp.StatusCode == http.StatusRequestEntityTooLarge {
		return &permanentError{err}
	}
	return err
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// verify checks a written file through a read URL: its length, and its MD5
// where the copy has one (Sum.MD5) and the storage keeps one (Azure
// Content-MD5, S3 single-part ETag, GCS x-goog-hash).
func (c *Copier) verify(ctx context.Context, cred Credential, sum Sum) error {
	method, headers := http.MethodHead, cred.Headers
	if cred.Kind == AWSPresigned || cred.Kind == GCPSigned {
		// A presigned GET URL is not valid for HEAD: ask for one byte.
		method = http.MethodGet
		headers = map[string]string{"Range": "bytes=0-0"}
		for k, v := range cred.Headers {
			headers[k] = v
		}
	}
	resp, err := c.doAgain(ctx, method, cred.URL, headers, nil)
	if err != nil {
		return fmt.Errorf("checking the written file: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1))
	var size int64 = -1
	switch resp.StatusCode {
	case http.StatusOK:
		size = resp.ContentLength
	case http.StatusPartialContent:
		if _, total, ok := strings.Cut(resp.Header.Get("Content-Range"), "/"); ok {
			size, _ = strconv.ParseInt(total, 10, 64)
		}
	case http.StatusRequestedRangeNotSatisfiable: // an empty object
		size = 0
	default:
		return statusError("checking the written file", resp)
	}
	if size != sum.Size {
		return fmt.Errorf("the written file has %d bytes, expected %d", size, sum.Size)
	}
	want := base64.StdEncoding.EncodeToString(sum.MD5)
	switch cred.Kind {
	case AzureSAS, AzureADLSSAS:
		if sum.MD5 == nil {
			return nil // written in blocks, each checked by the service as it was staged
		}
		got := resp.Header.Get("Content-MD5")
		if got == "" {
			return errors.New("the written file has no Content-MD5 to check")
		}
		if got != want {
			return fmt.Errorf("the written file's MD5 is %s, expected %s", got, want)
		}
	case AWSPresigned:
		// The ETag of a single-part upload is the MD5 of the object, except
		// under SSE-KMS and SSE-C encryption
		// (https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html).
		etag := strings.Trim(resp.Header.Get("ETag"), `"`)
		if isHexMD5(etag) && !s3EncryptedETag(resp.Header) && etag != hex.EncodeToString(sum.MD5) {
			return fmt.Errorf("the written file's ETag is %s, expected the MD5 %s", etag, hex.EncodeToString(sum.MD5))
		}
	case GCPSigned:
		if got := googMD5(resp.Header.Values("X-Goog-Hash")); got != "" && got != want {
			return fmt.Errorf("the written file's MD5 is %s, expected %s", got, want)
		}
	}
	return nil
}

// s3EncryptedETag reports whether S3 answered for an object whose ETag is
// not its MD5: encrypted with a KMS key or a customer-provided key.
func s3EncryptedETag(h http.Header) bool {
	return strings.HasPrefix(h.Get("X-Amz-Server-Side-Encryption"), "aws:kms") || h.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm") != ""
}

func isHexMD5(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func googMD5(values []string) string {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			if m, ok := strings.CutPrefix(strings.TrimSpace(part), "md5="); ok {
				return m
			}
		}
	}
	return ""
}

// --- block uploads (Azure Blob, ADLS Gen2) ---------------------------------

// blockTarget is a storage API that takes a file in pieces.
type blockTarget interface {
	begin(ctx context.Context) error // before the first block of a large file
	whole(ctx context.Context, data, md5 []byte) error
	stage(ctx context.Context, index int, offset int64, data []byte) error
	// commit makes the staged blocks the file; md5, if not nil, is stored
	// as its Content-MD5.
	commit(ctx context.Context, blocks int, size int64, md5 []byte) error
}

type blocks struct {
	c *Copier
	t blockTarget
}

func (b *blocks) oneRequest(size int64) bool { return size <= int64(b.c.opts.BlockSize) }

// write reads the file block by block into pooled buffers and stages each
// block in its own goroutine; reading waits for a free buffer, so memory is
// bounded by the pool whatever the file size and however many files move.
//
// A file of one block goes in one request with its MD5, which the service
// checks and stores. A larger file is not hashed a second time for the
// file's Content-MD5: each block carries its own MD5, which the service
// checks, and the MD5 a commit stores is a property the service does not
// validate ("this hash isn't validated, because the hashes for the
// individual blocks were validated when each was uploaded",
// https://learn.microsoft.com/rest/api/storageservices/put-block-list,
// x-ms-blob-content-md5; DFS flush stores x-ms-content-md5 alike). The
// commit stores the source's Content-MD5 where the source has one (stored),
// as a copy of the same bytes should.
func (b *blocks) write(ctx context.Context, r io.Reader, size int64, h *hasher, stored []byte) error {
	bs := int64(b.c.opts.BlockSize)
	if b.oneRequest(size) {
		var buf []byte
		if size <= smallFile {
			buf = make([]byte, size)
		} else {
			pooled, err := b.c.getBuf(ctx)
			if err != nil {
				return err
			}
			defer b.c.putBuf(pooled)
			buf = pooled[:size]
		}
		if err := readExactly(io.TeeReader(r, h), &fixedWriter{buf: buf}, size); err != nil {
			return err
		}
		return b.t.whole(ctx, buf, h.md5Sum())
	}
	if err := b.t.begin(ctx); err != nil {
		return err
	}
	// The file's SHA-256 is computed in a goroutine of its own, block after
	// block in order, so that hashing a block overlaps reading the next one
	// instead of holding up the read. A buffer goes back to the pool once its
	// block is both staged and hashed.
	toHash := make(chan hashBlock, b.c.opts.Buffers) // never more blocks than buffers
	allHashed := make(chan struct{})
	go func() {
		defer close(allHashed)
		for blk := range toHash {
			_, _ = h.Write(blk.data)
			close(blk.done)
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	var offset int64
	index := 0
	var readErr error
	for offset < size {
		buf, err := b.c.getBuf(gctx)
		if err != nil {
			readErr = err
			break
		}
		n := min(bs, size-offset)
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			b.c.putBuf(buf)
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				err = fmt.Errorf("source ended before the %d bytes listed", size)
			} else {
				err = fmt.Errorf("reading the source: %w", err)
			}
			readErr = err
			break
		}
		i, off := index, offset
		blk := hashBlock{data: buf[:n], done: make(chan struct{})}
		toHash <- blk
		g.Go(func() error {
			defer func() {
				<-blk.done
				b.c.putBuf(buf)
			}()
			return b.t.stage(gctx, i, off, buf[:n])
		})
		index++
		offset += n
	}
	close(toHash)
	err := g.Wait()
	<-allHashed
	if err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	var one [1]byte
	if m, _ := io.ReadFull(r, one[:]); m > 0 {
		return fmt.Errorf("source is longer than the %d bytes listed", size)
	}
	return b.t.commit(ctx, index, size, stored)
}

// hashBlock is a block for the hashing goroutine; done is closed once it
// is hashed.
type hashBlock struct {
	data []byte
	done chan struct{}
}

type fixedWriter struct {
	buf []byte
	n   int
}

func (w *fixedWriter) Write(p []byte) (int, error) {
	if w.n+len(p) > len(w.buf) {
		return 0, io.ErrShortWrite
	}
	w.n += copy(w.buf[w.n:], p)
	return len(p), nil
}

func blockMD5(data []byte) []byte {
	s := md5.Sum(data) //nolint:gosec // see import
	return s[:]
}

// azureBlocks is Blob REST: Put Blob for a small file; Put Block for each
// block with its transactional MD5 (the service rejects a block whose bytes
// do not match), then Put Block List (with the source's Content-MD5 where
// it has one).
type azureBlocks struct{ bb *blockblob.Client }

func blockID(i int) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "brickferry-%010d", i))
}

func (a *azureBlocks) begin(context.Context) error { return nil }

func (a *azureBlocks) whole(ctx context.Context, data, sum []byte) error {
	_, err := a.bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), &blockblob.UploadOptions{
		TransactionalValidation: blob.TransferValidationTypeMD5(sum),
		HTTPHeaders:             &blob.HTTPHeaders{BlobContentMD5: sum},
	})
	if err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	return nil
}

func (a *azureBlocks) stage(ctx context.Context, i int, _ int64, data []byte) error {
	_, err := a.bb.StageBlock(ctx, blockID(i), streaming.NopCloser(bytes.NewReader(data)), &blockblob.StageBlockOptions{
		TransactionalValidation: blob.TransferValidationTypeMD5(blockMD5(data)),
	})
	if err != nil {
		return fmt.Errorf("writing block %d: %w", i, err)
	}
	return nil
}

func (a *azureBlocks) commit(ctx context.Context, n int, _ int64, sum []byte) error {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = blockID(i)
	}
	opts := &blockblob.CommitBlockListOptions{}
	if sum != nil {
		opts.HTTPHeaders = &blob.HTTPHeaders{BlobContentMD5: sum}
	}
	_, err := a.bb.CommitBlockList(ctx, ids, opts)
	if err != nil {
		return fmt.Errorf("committing %d blocks: %w", n, err)
	}
	return nil
}

// adlsBlocks is ADLS Gen2 DFS REST (Path - Create, Update append/flush):
// create the file, append each block at its position with a transactional
// Content-MD5, flush at the total length (with the file's MD5 when it went
// in one append, or the source's Content-MD5 where it has one)
// (https://learn.microsoft.com/rest/api/storageservices/datalakestoragegen2/path/update).
// Repeating a create (before any append), an append at the same position or
// a flush has the same effect, so each is sent again after a transient
// failure (doAgain) before the file is tried again as a whole.
type adlsBlocks struct {
	c    *Copier
	cred Credential
}

func (a *adlsBlocks) call(ctx context.Context, op operation, method, query string, headers map[string]string, body []byte) error {
	h := map[string]string{"x-ms-version": xmsVersion}
	for k, v := range headersFor(op, a.cred.Headers) {
		h[k] = v
	}
	for k, v := range headers {
		h[k] = v
	}
	sep := "?"
	if strings.Contains(a.cred.URL, "?") {
		sep = "&"
	}
	if body == nil {
		body = []byte{} // a request with an empty body (Content-Length: 0)
	}
	resp, err := a.c.doAgain(ctx, method, a.cred.URL+sep+query, h, body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return statusError(query, resp)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

func (a *adlsBlocks) begin(ctx context.Context) error { return a.create(ctx) }

func (a *adlsBlocks) create(ctx context.Context) error {
	return a.call(ctx, opADLSCreate, http.MethodPut, "resource=file", nil, nil)
}

func (a *adlsBlocks) whole(ctx context.Context, data, sum []byte) error {
	if err := a.create(ctx); err != nil {
		return err
	}
	if len(data) > 0 {
		if err := a.stage(ctx, 0, 0, data); err != nil {
			return err
		}
	}
	return a.commit(ctx, 1, int64(len(data)), sum)
}

func (a *adlsBlocks) stage(ctx context.Context, i int, offset int64, data []byte) error {
	h := map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(blockMD5(data))}
	return a.call(ctx, opADLSAppend, http.MethodPatch, "action=append&position="+strconv.FormatInt(offset, 10), h, data)
}

func (a *adlsBlocks) commit(ctx context.Context, _ int, size int64, sum []byte) error {
	var h map[string]string
	if sum != nil {
		h = map[string]string{"x-ms-content-md5": base64.StdEncoding.EncodeToString(sum)}
	}
	return a.call(ctx, opADLSFlush, http.MethodPatch, "action=flush&position="+strconv.FormatInt(size, 10), h, nil)
}

// presignedPut streams a file in one PUT (AWS and GCP signed URLs).
type presignedPut struct {
	c    *Copier
	cred Credential
}

// oneRequest: always; S3's single-part ETag and GCS's x-goog-hash are the
// MD5 the service computed, checked against ours (verify).
func (p *presignedPut) oneRequest(int64) bool { return true }

func (p *presignedPut) write(ctx context.Context, r io.Reader, size int64, h *hasher, _ []byte) error {
	r = io.TeeReader(r, h)
	counted := &countingReader{r: r}
	resp, err := p.c.do(ctx, http.MethodPut, p.cred.URL, p.cred.Headers, io.NopCloser(counted), size)
	if err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return statusError("writing", resp)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if counted.n != size {
		return fmt.Errorf("sent %d of %d bytes", counted.n, size)
	}
	var one [1]byte
	if m, _ := io.ReadFull(r, one[:]); m > 0 {
		return fmt.Errorf("source is longer than the %d bytes listed", size)
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
