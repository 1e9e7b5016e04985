package artifacts

import (
	"context"
	"crypto/md5" //nolint:gosec // Content-MD5 is what Azure Blob and S3 store and check; SHA-256 is the digest.
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Options tune a Copier. The zero value is the production configuration.
type Options struct {
	// HTTPClient carries every storage request (the agent's proxy and
	// certificates). Signed URLs need no other credentials. Nil: a client
	// with Go's default transport.
	HTTPClient *http.Client
	// Files is how many files move at the same time (default 8).
	Files int
	// BlockSize is the size of one staged block or append (default 8 MiB).
	// Files up to this size go in one request.
	BlockSize int
	// Buffers is how many blocks may be in memory at once across all files
	// (default 8): with BlockSize this bounds the copy's memory (64 MiB by
	// default) whatever the size of the model.
	Buffers int
	// Attempts is how many times a file is tried before the copy fails
	// (default 4). Each new attempt gets fresh signed URLs.
	Attempts int
	// Backoff is the pause before attempt n (n ≥ 2). Default 0.5 s, 1 s, 2 s...
	Backoff func(attempt int) time.Duration
	// Batch is how many files are signed in one round of credential
	// requests (default 100, MLflow's page size). URLs are signed just
	// before their files move, so short-lived signatures do not expire in
	// the queue.
	Batch int
	// Progress, if set, is called with the bytes read so far and the total,
	// from one goroutine at a time.
	Progress func(done, total int64)
	// Retried, if set, is told about each failed attempt that will be
	// retried; it may be called from several goroutines at once.
	Retried func(path string, attempt int, err error)
}

// Copier moves files between signed URLs. It is safe for concurrent use.
type Copier struct {
	opts Options
	hc   *http.Client
	pool chan []byte
}

// New returns a Copier.
func New(o Options) *Copier {
	if o.Files <= 0 {
		o.Files = 8
	}
	if o.BlockSize <= 0 {
		o.BlockSize = 8 << 20
	}
	if o.Buffers <= 0 {
		o.Buffers = 8
	}
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Backoff == nil {
		o.Backoff = func(n int) time.Duration { return time.Duration(250<<min(n-1, 5)) * time.Millisecond }
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport}
	}
	c := &Copier{opts: o, hc: hc, pool: make(chan []byte, o.Buffers)}
	for range o.Buffers {
		c.pool <- nil // allocated on first use
	}
	return c
}

// getBuf takes a block buffer, waiting while all are in use. A cancelled
// context wins over a free buffer (select picks at random among ready
// cases), so a file whose staging failed stops reading at once.
func (c *Copier) getBuf(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case b := <-c.pool:
		if b == nil {
			b = make([]byte, c.opts.BlockSize)
		}
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Copier) putBuf(b []byte) { c.pool <- b }

// Sum is what was read (or written) for one file.
type Sum struct {
	Path   string
	Size   int64
	SHA256 string // hex
	// MD5 is the file's MD5 where the copy has one to store with the target
	// and check there: computed from the bytes read when the file goes to
	// storage in one request (the storage computes its own and they are
	// compared), otherwise the source's stored Content-MD5, carried over as
	// the source claims it: unchecked against the bytes (no service
	// validates it, on either side), so the check after writing only shows
	// that the commit stored it. Nil when there is neither: a file written
	// in blocks is not hashed a second time for that property (storage.go,
	// blocks.write); its blocks' MD5s are what the service checks.
	MD5 []byte
}

// Manifest is the list of files moved, sorted by path, with their sums.
type Manifest struct {
	Files []Sum
	Bytes int64
}

// Digest is the content digest of the whole set of files:
// "sha256:" + SHA-256 over one line "<sha256 hex>  <size>  <path>\n" per
// file in path order. It does not depend on where the files are stored.
func (m Manifest) Digest() string {
	files := append([]Sum(nil), m.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s  %d  %s\n", f.SHA256, f.Size, f.Path)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Copy moves files from the URLs src signs to those dst signs. check, if
// not nil, signs the written files for reading: each file's length and, where
// the copy has one (Sum.MD5), its MD5 are then checked on the target after
// writing. A file that fails
// is tried again with fresh URLs, up to Options.Attempts times; the copy
// stops at the first file that cannot be copied.
func (c *Copier) Copy(ctx context.Context, files []File, src, dst, check Signer) (Manifest, error) {
	return c.run(ctx, files, c.copyFile, src, dst, check)
}

// Hash reads every file and returns their sums, moving nothing: the content
// digest of a source without a copy.
func (c *Copier) Hash(ctx context.Context, files []File, src Signer) (Manifest, error) {
	return c.run(ctx, files, func(ctx context.Context, f File, creds fileCreds, report func(int64)) (Sum, error) {
		src, err := c.open(ctx, creds.src, f.Size)
		if err != nil {
			return Sum{}, err
		}
		defer src.body.Close()
		h := newHasher(f.Path, report, false)
		if err := readExactly(io.TeeReader(src.body, h), io.Discard, f.Size); err != nil {
			return Sum{}, err
		}
		return h.sum(f.Size), nil
	}, src, nil, nil)
}

type fileCreds struct{ src, dst, check Credential }

// doFunc moves (or reads) one file, reporting bytes read as it goes.
type doFunc func(ctx context.Context, f File, creds fileCreds, report func(int64)) (Sum, error)

type work struct {
	f     File
	creds fileCreds
}

// run signs files batch by batch (largest files first, so that a big file
// does not start last) and hands them to Options.Files workers.
func (c *Copier) run(ctx context.Context, files []File, do doFunc, src, dst, check Signer) (Manifest, error) {
	order := append([]File(nil), files...)
	sort.SliceStable(order, func(i, j int) bool { return order[i].Size > order[j].Size })
	var total int64
	for _, f := range order {
		total += f.Size
	}
	var done atomic.Int64
	var progressMu sync.Mutex
	progress := func(n int64) {
		if c.opts.Progress != nil {
			progressMu.Lock()
			defer progressMu.Unlock()
			c.opts.Progress(done.Add(n), total)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	queue := make(chan work)
	g.Go(func() error {
		defer close(queue)
		for start := 0; start < len(order); start += c.opts.Batch {
			batch := order[start:min(start+c.opts.Batch, len(order))]
			creds, err := c.sign(gctx, batch, src, dst, check)
			if err != nil {
				return err
			}
			for _, f := range batch {
				select {
				case queue <- work{f: f, creds: creds[f.Path]}:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
		}
		return nil
	})
	sums := make([]Sum, 0, len(order))
	var mu sync.Mutex
	for range min(c.opts.Files, max(len(order), 1)) {
		g.Go(func() error {
			for w := range queue {
				sum, err := c.withRetry(gctx, w, do, src, dst, check, progress)
				if err != nil {
					return err
				}
				mu.Lock()
				sums = append(sums, sum)
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Manifest{}, err
	}
	sort.Slice(sums, func(i, j int) bool { return sums[i].Path < sums[j].Path })
	return Manifest{Files: sums, Bytes: total}, nil
}

func (c *Copier) sign(ctx context.Context, batch []File, src, dst, check Signer) (map[string]fileCreds, error) {
	paths := make([]string, len(batch))
	for i, f := range batch {
		paths[i] = f.Path
	}
	out := make(map[string]fileCreds, len(batch))
	s, err := src(ctx, paths)
	if err != nil {
		return nil, err
	}
	var d, k map[string]Credential
	if dst != nil {
		if d, err = dst(ctx, paths); err != nil {
			return nil, err
		}
	}
	if check != nil {
		if k, err = check(ctx, paths); err != nil {
			return nil, err
		}
	}
	for _, p := range paths {
		out[p] = fileCreds{src: s[p], dst: d[p], check: k[p]}
	}
	return out, nil
}

// withRetry runs one file, again with fresh URLs after a failure. Progress
// counts bytes as they are read; a failed attempt takes its bytes back.
func (c *Copier) withRetry(ctx context.Context, w work, do doFunc, src, dst, check Signer, progress func(int64)) (Sum, error) {
	creds := w.creds
	var last error
	for attempt := 1; attempt <= c.opts.Attempts; attempt++ {
		if attempt > 1 {
			if c.opts.Retried != nil {
				c.opts.Retried(w.f.Path, attempt, last)
			}
			select {
			case <-time.After(c.opts.Backoff(attempt)):
			case <-ctx.Done():
				return Sum{}, ctx.Err()
			}
			fresh, err := c.sign(ctx, []File{w.f}, src, dst, check)
			if err != nil {
				last = err
				continue
			}
			creds = fresh[w.f.Path]
		}
		var read int64
		sum, err := do(ctx, w.f, creds, func(n int64) { read += n; progress(n) })
		if err == nil {
			return sum, nil
		}
		progress(-read)
		if ctx.Err() != nil {
			return Sum{}, ctx.Err()
		}
		last = err
		var perm *permanentError
		if errors.As(err, &perm) {
			break
		}
	}
	return Sum{}, fmt.Errorf("%s: %w", w.f.Path, last)
}

// permanentError is a failure that another attempt cannot fix (an
// unsupported URL kind, a file larger than a single PUT allows).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// copyFile streams one file: read the source once, hash it on the way,
// write it, check it.
func (c *Copier) copyFile(ctx context.Context, f File, creds fileCreds, report func(int64)) (Sum, error) {
	w, err := c.writer(creds.dst, f.Size)
	if err != nil {
		return Sum{}, err
	}
	src, err := c.open(ctx, creds.src, f.Size)
	if err != nil {
		return Sum{}, err
	}
	defer src.body.Close()
	h := newHasher(f.Path, report, w.oneRequest(f.Size))
	if err := w.write(ctx, src.body, f.Size, h, src.md5); err != nil {
		return Sum{}, scrub(err, creds.dst.URL, creds.src.URL)
	}
	sum := h.sum(f.Size)
	if sum.MD5 == nil {
		sum.MD5 = src.md5
	}
	if creds.check.URL != "" {
		if err := c.verify(ctx, creds.check, sum); err != nil {
			return Sum{}, scrub(err, creds.check.URL)
		}
	}
	return sum, nil
}

// hasher computes a file's SHA-256 (the digest) as it is read, in order,
// and its MD5 when asked to: only a file that goes to storage in one request
// needs one (Sum.MD5). The two are most of the copy's CPU: on a 2-core agent
// that runs beside the storage (as in build/bench's copy set) CPU is
// throughput.
type hasher struct {
	path   string
	report func(int64)
	sha    hash.Hash
	md5    hash.Hash // nil: not computed
	n      int64
}

func newHasher(path string, report func(int64), withMD5 bool) *hasher {
	h := &hasher{path: path, report: report, sha: sha256.New()}
	if withMD5 {
		h.md5 = md5.New() //nolint:gosec // see import
	}
	return h
}

func (h *hasher) Write(p []byte) (int, error) {
	h.sha.Write(p)
	if h.md5 != nil {
		h.md5.Write(p)
	}
	h.n += int64(len(p))
	if h.report != nil {
		h.report(int64(len(p)))
	}
	return len(p), nil
}

// md5Sum is the MD5 of what was read, nil when the hasher computes none.
func (h *hasher) md5Sum() []byte {
	if h.md5 == nil {
		return nil
	}
	return h.md5.Sum(nil)
}

func (h *hasher) sum(size int64) Sum {
	return Sum{Path: h.path, Size: size, SHA256: hex.EncodeToString(h.sha.Sum(nil)), MD5: h.md5Sum()}
}

// readExactly copies exactly size bytes and checks that nothing follows: a
// source shorter or longer than listed is an error, not a silent truncation.
func readExactly(r io.Reader, w io.Writer, size int64) error {
	n, err := io.CopyN(w, r, size)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("source ended after %d of %d bytes", n, size)
		}
		return fmt.Errorf("reading the source: %w", err)
	}
	var one [1]byte
	if m, _ := io.ReadFull(r, one[:]); m > 0 {
		return fmt.Errorf("source is longer than the %d bytes listed", size)
	}
	return nil
}

// scrub removes the signatures of signed URLs from an error message (Go's
// HTTP client quotes the whole URL), keeping the error chain.
func scrub(err error, signed ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range signed {
		if i := strings.IndexByte(s, '?'); i >= 0 && i+1 < len(s) {
			q := s[i+1:]
			for _, form := range []string{q, url.QueryEscape(q)} {
				if strings.Contains(msg, form) {
					msg = strings.ReplaceAll(msg, form, "<signature>")
					changed = true
				}
			}
		}
	}
	if !changed {
		return err
	}
	return &scrubbed{msg: msg, err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }
