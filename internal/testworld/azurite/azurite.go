// Package azurite starts Microsoft's Azure Storage emulator (the npm package
// azurite, installed by `npm ci` into node_modules) for tests and the local
// demo.
//
// Contract:
//   - [Start] is for tests: it starts azurite-blob on a free loopback port with
//     in-memory persistence, waits until the blob service answers, and stops it
//     in t.Cleanup. If azurite is not installed it fails the test (it never
//     skips) and tells the reader to run `npm ci`.
//   - [Run] is the same without testing.TB, for commands; the caller calls
//     [Server.Close].
//   - The repository root is found by walking up from the working directory to
//     the directory that holds go.mod.
//
// The account is named devstoreaccount1, like Azurite's development account
// (https://learn.microsoft.com/azure/storage/common/storage-use-azurite),
// but its key is made for each server (see AccountName).
package azurite

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// AccountName is Azurite's development account. Its key is not Azurite's
// published one: each server gets a key made for it (newAccountKey), given to
// Azurite through AZURITE_ACCOUNTS (azurite src/common/AccountDataStore.ts,
// "account1:key1"), so no storage key is kept in the repository.
const AccountName = "devstoreaccount1"

// newAccountKey is a random 64-byte shared key, base64 like a storage key.
func newAccountKey() (string, error) {
	b := make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// Server is a running azurite-blob process.
type Server struct {
	// BlobEndpoint is the blob service URL including the account path, e.g.
	// http://127.0.0.1:43567/devstoreaccount1 (Azurite uses path-style URLs).
	BlobEndpoint string
	// AccountName and AccountKey are the shared-key credentials.
	AccountName string
	AccountKey  string

	cmd      *exec.Cmd
	done     chan struct{}
	stopOnce sync.Once
	tmp      string
}

// Start starts Azurite for a test and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Run(ctx, io.Discard)
	if err != nil {
		t.Fatalf("azurite: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// errNotInstalled means node_modules/.bin/azurite-blob is missing.
var errNotInstalled = errors.New("azurite is not installed: run npm ci in the repository root")

// Run starts azurite-blob and returns once it answers HTTP. Azurite's own
// output goes to logs.
func Run(ctx context.Context, logs io.Writer) (*Server, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(root, "node_modules", ".bin", "azurite-blob")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w (%s not found)", errNotInstalled, bin)
	}
	tmp, err := os.MkdirTemp("", "azurite-")
	if err != nil {
		return nil, fmt.Errorf("azurite: temp dir: %w", err)
	}
	cmd := exec.Command(bin,
		"--blobHost", "127.0.0.1",
		"--blobPort", "0", // Azurite picks a free port and prints it.
		"--inMemoryPersistence", // (cannot be combined with --location; cmd.Dir keeps stray files in tmp)
		"--skipApiVersionCheck", // azblob may be newer than this Azurite
		"--loose",
		"--silent",
		"--disableTelemetry",
	)
	cmd.Dir = tmp
	key, err := newAccountKey()
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("azurite: account key: %w", err)
	}
	// Azurite falls back to its published key when it cannot parse this
	// variable: every request signed with key would then be refused.
	cmd.Env = append(os.Environ(), "AZURITE_ACCOUNTS="+AccountName+":"+key)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("azurite: start %s: %w", bin, err)
	}
	s := &Server{AccountName: AccountName, AccountKey: key, cmd: cmd, done: make(chan struct{}), tmp: tmp}
	go func() { _ = cmd.Wait(); close(s.done) }()

	urlCh := make(chan string, 1)
	go scanListenURL(stdout, logs, urlCh)
	select {
	case u := <-urlCh:
		s.BlobEndpoint = strings.TrimRight(u, "/") + "/" + AccountName
	case <-s.done:
		s.Close()
		return nil, errors.New("azurite: exited before listening (see its output; is node installed?)")
	case <-ctx.Done():
		s.Close()
		return nil, fmt.Errorf("azurite: waiting for the listen address: %w", ctx.Err())
	}
	if err := s.waitReady(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

var listenRe = regexp.MustCompile(`listens on (http://\S+)`)

func scanListenURL(r io.Reader, logs io.Writer, out chan<- string) {
	sc := bufio.NewScanner(r)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		_, _ = fmt.Fprintln(logs, line)
		if m := listenRe.FindStringSubmatch(line); m != nil && !sent {
			out <- m[1]
			sent = true
		}
	}
}

// waitReady polls the blob endpoint until it answers anything at all (an
// unauthenticated request gets an HTTP error status, which is fine).
func (s *Server) waitReady(ctx context.Context) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.BlobEndpoint+"?comp=list", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("azurite: not answering at %s: %w", s.BlobEndpoint, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close stops Azurite and removes its temporary directory.
func (s *Server) Close() {
	s.stopOnce.Do(func() {
		if s.cmd.Process != nil {
			_ = s.cmd.Process.Kill()
		}
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
		}
		_ = os.RemoveAll(s.tmp)
	})
}

// RepoRoot walks up from the working directory to the directory holding
// go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("azurite: go.mod not found above the working directory")
		}
		dir = parent
	}
}
