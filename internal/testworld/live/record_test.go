package live_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/live"
)

// maskedForms are the forms of a secret the Azure Pipelines agent's masker
// hides (docs PLATFORM-FACTS.md "Masking"), computed here independently of
// package agent: the value, each line of it, its base64 at the three byte
// alignments (whole 3-byte groups, which do not depend on what surrounds
// it), its URL-escaped forms and its JSON string form.
func maskedForms(secret string) []string {
	forms := []string{secret}
	for _, line := range strings.Split(strings.ReplaceAll(secret, "\r\n", "\n"), "\n") {
		forms = append(forms, line, strings.TrimSpace(line))
	}
	b := []byte(secret)
	for shift := 0; shift < 3 && shift < len(b); shift++ {
		rest := b[shift:]
		forms = append(forms, base64.StdEncoding.EncodeToString(rest))
		if n := len(rest) / 3 * 3; n > 0 {
			forms = append(forms, base64.StdEncoding.EncodeToString(rest[:n]))
		}
	}
	forms = append(forms, url.QueryEscape(secret), url.PathEscape(secret))
	j, _ := json.Marshal(secret)
	forms = append(forms, strings.Trim(string(j), `"`))
	var out []string
	for _, f := range forms {
		if len(f) >= 6 {
			out = append(out, f)
		}
	}
	return out
}

// carriers put a form of a secret in a request or an answer the way a
// service might: in a path, a query, a JSON value or key, a header-like
// string (Bearer), a longer base64 string, a body that is not JSON.
func carriers(form, secret string) []struct{ path, query, req, resp string } {
	bearer := base64.StdEncoding.EncodeToString([]byte("Authorization: Bearer " + secret + "\n"))
	q, _ := json.Marshal(form)
	return []struct{ path, query, req, resp string }{
		{"/api/2.0/x/" + url.PathEscape(form), "a=" + url.QueryEscape(form), `{"k":` + string(q) + `}`, `{"v":` + string(q) + `}`},
		{"/api/2.0/x", "", `{` + string(q) + `:1}`, `{"list":["x",` + string(q) + `],"b64":"` + bearer + `"}`},
		{"/api/2.0/x", "token=" + url.QueryEscape(form), "not json " + form, "plain text " + form},
		{"/api/2.0/x", "", `{"nested":{"s":"prefix ` + strings.Trim(string(q), `"`) + ` suffix"}}`, `{"url":"https://x/?sig=` + url.QueryEscape(form) + `&x=1"}`},
	}
}

// TestRecordingNeverHoldsASecret sends every masked form of a set of
// secrets (fixed ones, multi-line ones, and random ones) through a
// recording front, in paths, queries, bodies and answers, and checks that
// the written recording holds none of those forms.
func TestRecordingNeverHoldsASecret(t *testing.T) {
	// A personal access token and a PEM key in the shapes of real ones, made
	// from the seeded generator so that nothing in the repository looks like
	// a credential.
	rng := rand.New(rand.NewPCG(1, 2))
	randomBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	secrets := []string{
		"dapi" + hex.EncodeToString(randomBytes(16)),
		"p@ss w0rd/with+chars&more=1",
		"-----BEGIN KEY-----\n" + base64.StdEncoding.EncodeToString(randomBytes(24)) + "\n" + base64.StdEncoding.EncodeToString(randomBytes(24)) + "\n-----END KEY-----",
		`json "quoted" \ secret`,
	}
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=-_.~!@#$%^&*() \"\\"
	for range 20 {
		b := make([]byte, 8+rng.IntN(40))
		for i := range b {
			b[i] = chars[rng.IntN(len(chars))]
		}
		secrets = append(secrets, string(b))
	}
	// The upstream echoes: it answers with the carrier's answer.
	var next atomic.Value // the answer the upstream gives next
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		_, _ = io.WriteString(w, next.Load().(string))
	}))
	defer up.Close()
	target, err := url.Parse(up.URL)
	require.NoError(t, err)
	ca, err := emulator.NewCA()
	require.NoError(t, err)
	rec := &live.Recorder{}
	defer rec.Close()
	front, err := rec.Front("dev", target, ca, nil)
	require.NoError(t, err)
	client := &http.Client{Transport: ca.Transport(), Timeout: 10 * time.Second}
	sent := 0
	for _, s := range secrets {
		for _, form := range maskedForms(s) {
			for _, c := range carriers(form, s) {
				next.Store(c.resp)
				u := front + c.path
				if c.query != "" {
					u += "?" + c.query
				}
				req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, u, strings.NewReader(c.req))
				require.NoError(t, err)
				resp, err := client.Do(req)
				require.NoError(t, err)
				_ = resp.Body.Close()
				sent++
			}
		}
	}
	path := filepath.Join(t.TempDir(), "r.json")
	require.NoError(t, rec.Write(path, live.Recording{Sample: "uc"}, live.NewRedactor(secrets, map[string]string{front: "dev-host", up.URL: "dev-host"})))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	text := string(b)
	var got live.Recording
	require.NoError(t, json.Unmarshal(b, &got))
	require.Len(t, got.Exchanges, sent, "every exchange is recorded")
	leaks := 0
	for i, s := range secrets {
		for _, f := range maskedForms(s) {
			if strings.Contains(text, f) {
				leaks++
				t.Errorf("secret %d: the form %q is in the recording", i, f)
			}
		}
	}
	assert.Zero(t, leaks)
	assert.NotContains(t, text, strings.TrimPrefix(front, "https://"), "the front's address is replaced")
	fmt.Printf("%d exchanges, %d secrets, no form of any in the recording\n", sent, len(secrets))
}
