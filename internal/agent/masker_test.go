package agent

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testParam = "p@ss w/rd&x=1+2;é"

// The secrets of the masking tests are made for each run in the shapes of
// real ones (a Databricks personal access token, a PEM private key), so that
// nothing in the repository looks like a credential.
var (
	testPAT = "dapi" + hex.EncodeToString(randomBytes(16))
	keyLine = base64.StdEncoding.EncodeToString(randomBytes(39))
	testKey = "-----BEGIN PRIVATE KEY-----\n" + keyLine + "\n-----END PRIVATE KEY-----"
	// hashTail follows "##[" in a password: text is neutralised ("##[" becomes
	// "**[") after masking, or the masker would no longer recognise it.
	hashTail = hex.EncodeToString(randomBytes(8))
	testHash = "Pw##[" + hashTail
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// secretForm is a way a secret reaches a log: what a task prints (shown)
// and the part of it that reveals the secret (leak).
type secretForm struct {
	name        string
	shown, leak string
}

func secretForms() []secretForm {
	bearer := base64.StdEncoding.EncodeToString([]byte("Bearer " + testPAT))
	// "Bearer " is 7 bytes: from character 12 on, each group of 4 encodes
	// bytes of the PAT only, up to the last group (which holds padding).
	shifted2 := base64.StdEncoding.EncodeToString([]byte("xy" + testPAT + "!z"))
	return []secretForm{
		{"plain", "token " + testPAT + " sent", testPAT},
		{"base64 at alignment 0", "basic " + base64.StdEncoding.EncodeToString([]byte(testPAT)), base64.StdEncoding.EncodeToString([]byte(testPAT))[:40]},
		{"base64 of Bearer <PAT> (alignment 1, a server error echoing the header)", `{"error": "bad header ` + bearer + `"}`, bearer[12 : len(bearer)-4]},
		{"base64 at alignment 2, followed by other bytes", "blob " + shifted2 + " end", shifted2[4 : len(shifted2)-8]},
		{"URL-escaped (Uri.EscapeDataString)", "state: parameter value=" + EscapeDataString(testParam) + "&next=1", EscapeDataString(testParam)},
		{"URL query-escaped", "GET /x?p=" + url.QueryEscape(testParam), url.QueryEscape(testParam)},
		{"one line of a multi-line secret", "key line: " + keyLine, keyLine},
		{"a debug dump cut inside the secret", `  "notebook_params": {"token": "` + testPAT[:14] + `... (20 more bytes)"}`, testPAT[:4]},
		{"a secret holding ##[ (masked before it is neutralised)", "login with " + testHash + " refused", hashTail},
	}
}

// logFunctions is every way a task writes text; each returns what it wrote
// where a person (or the run summary) would read it.
var logFunctions = []struct {
	name  string
	write func(l *Log, text string) error
}{
	{"Info", func(l *Log, s string) error { l.Info("%s", s); return nil }},
	{"Warning", func(l *Log, s string) error { l.Warning("%s", s); return nil }},
	{"Error", func(l *Log, s string) error { l.Error("%s", s); return nil }},
	{"Debug", func(l *Log, s string) error { l.Debug("%s", s); return nil }},
	{"Section", func(l *Log, s string) error { l.Section(s); return nil }},
	{"Group", func(l *Log, s string) error { l.Group(s); return nil }},
	{"Progress", func(l *Log, s string) error { l.Progress(50, s); return nil }},
	{"UploadSummary", func(l *Log, s string) error { _, err := l.UploadSummary("Train", "| a | "+s+" |"); return err }},
	{"task.complete message", func(l *Log, s string) error { l.Complete(Failed, s); return nil }},
}

func newMaskingLog(t *testing.T, human bool) (*Log, *bytes.Buffer, string) {
	t.Helper()
	var out bytes.Buffer
	dir := t.TempDir()
	l := NewLog(&out, LogOptions{Human: human, Debug: true, TempDir: dir})
	// As cli.Main does with Env.Secrets: the agent knows these already.
	l.Mask(testPAT)
	l.Mask(testParam)
	l.Mask(testKey)
	l.Mask(testHash)
	return l, &out, dir
}

// visible is what a person would read: the output without the commands that
// hand secrets to the agent, plus every summary file.
func visible(t *testing.T, out, dir string) string {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "##vso[task.setsecret]") {
			continue
		}
		b.WriteString(line + "\n")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.md"))
	require.NoError(t, err)
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		b.Write(data)
	}
	return b.String()
}

// TestMaskingTable: every secret form the agent's masker hides is hidden by
// every log function, in the agent's stream, in local mode and in summary
// files.
func TestMaskingTable(t *testing.T) {
	for _, mode := range []struct {
		name  string
		human bool
	}{{"agent", false}, {"local", true}} {
		for _, fn := range logFunctions {
			for _, form := range secretForms() {
				t.Run(mode.name+"/"+fn.name+"/"+form.name, func(t *testing.T) {
					require.Contains(t, form.shown, form.leak, "the case shows its secret")
					l, out, dir := newMaskingLog(t, mode.human)
					require.NoError(t, fn.write(l, form.shown))
					got := visible(t, out.String(), dir)
					assert.NotContains(t, got, form.leak, "%s wrote a secret unmasked (%s, %s mode)", fn.name, form.name, mode.name)
					assert.NotEmpty(t, strings.TrimSpace(got), "the function wrote")
					assert.True(t, utf8.ValidString(got))
				})
			}
		}
	}
}

// TestOutputValuesArePassedAsSet: a variable's value reaches the agent as
// set, whatever secret it contains (masking is for display only), while
// the same text in a log line is masked.
func TestOutputValuesArePassedAsSet(t *testing.T) {
	for _, form := range secretForms() {
		t.Run(form.name, func(t *testing.T) {
			l, out, _ := newMaskingLog(t, false)
			value := "https://" + form.shown + "/?o=1#job/2/run/3"
			l.SetOutput("runUrl", value)
			l.SetTaskVariable("attempt", value)
			var got []Command
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				if c, ok := ParseCommand(line); ok && c.Event != "setsecret" {
					got = append(got, c)
				}
			}
			require.Len(t, got, 2)
			assert.Equal(t, "setvariable", got[0].Event)
			assert.Equal(t, "true", got[0].Properties["isoutput"])
			assert.Equal(t, value, got[0].Message)
			assert.Equal(t, "settaskvariable", got[1].Event)
			assert.Equal(t, value, got[1].Message)
		})
	}
}

// TestSetSecretHidesDerivedForms: a value the task derives and registers is
// hidden in its derived forms too, and each of its lines goes to the agent.
func TestSetSecretHidesDerivedForms(t *testing.T) {
	var out bytes.Buffer
	l := NewLog(&out, LogOptions{})
	l.SetSecret("line-one-secret\nline-two-secret")
	l.Info("%s", base64.StdEncoding.EncodeToString([]byte("xline-two-secret")))
	l.Info("%s", url.QueryEscape("line-one-secret\nline-two-secret"))
	s := out.String()
	assert.Contains(t, s, "##vso[task.setsecret]line-one-secret\n")
	assert.Contains(t, s, "##vso[task.setsecret]line-two-secret\n")
	assert.NotContains(t, s, base64.StdEncoding.EncodeToString([]byte("xline-two-secret"))[4:16])
	assert.NotContains(t, s, "line-one-secret%0A")
}

// TestCompleteMessageIsNeutralised: a server's message in task.complete
// cannot become a logging command or a second line.
func TestCompleteMessageIsNeutralised(t *testing.T) {
	var out bytes.Buffer
	l := NewLog(&out, LogOptions{})
	l.Complete(Failed, "server said ##vso[task.complete result=Succeeded;]ok\r\n##[error]x")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 1)
	c, ok := ParseCommand(lines[0])
	require.True(t, ok)
	assert.Equal(t, "Failed", c.Properties["result"])
	assert.NotContains(t, c.Message, "##vso")
	assert.NotContains(t, c.Message, "##[")
	assert.Equal(t, 1, strings.Count(lines[0], "##vso["))
}

// TestEndpointParametersTheAgentLeavesUnmasked: tenant id, scope, role,
// authentication type and the like are not secrets (MaskingUtil.cs).
func TestEndpointParametersTheAgentLeavesUnmasked(t *testing.T) {
	ep := Endpoint{ID: "3f2a1b0c-1111-2222-3333-444455556666", URL: "https://management.azure.com/", Scheme: "ServicePrincipal",
		Parameters: map[string]string{
			"tenantid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "scope": "/subscriptions/x", "authenticationType": "spnKey",
			"role": "Contributor", "serviceprincipalid": "c0ffee00-0000-0000-0000-000000000001", "serviceprincipalkey": "s3cr3t-key-value",
		}}
	var environ []string
	for k, v := range ep.Environ() {
		environ = append(environ, k+"="+v)
	}
	secrets := NewEnv(environ).Secrets()
	for _, open := range []string{"72f988bf-86f1-41af-91ab-2d7cd011db47", "/subscriptions/x", "spnKey", "Contributor"} {
		assert.NotContains(t, secrets, open)
	}
	assert.Contains(t, secrets, "s3cr3t-key-value")
	assert.Contains(t, secrets, "c0ffee00-0000-0000-0000-000000000001", "a service principal id is masked by the agent")
}

func TestTruncateUTF8(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{{"abc", 5, "abc"}, {"abé", 3, "ab"}, {"abé", 4, "abé"}, {"日本", 4, "日"}, {"日本", 2, ""}} {
		assert.Equal(t, tc.want, TruncateUTF8(tc.in, tc.n), tc.in)
	}
}
