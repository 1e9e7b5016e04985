package live_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/live"
)

// TestConformance replays every recording under testdata/recordings
// against the emulator and lists, as a table, every way the emulator's
// answers differ from the recorded ones (live.Replay): a recording of the
// real services that the emulator does not match fails here until the
// emulator is fixed (docs/live.md). With no recordings it says so and
// passes.
func TestConformance(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "recordings", "*", "*.json"))
	require.NoError(t, err)
	if len(files) == 0 {
		t.Log("no recordings under testdata/recordings: nothing to compare (RECORD=1 make live records some)")
		return
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			var rec live.Recording
			require.NoError(t, json.Unmarshal(b, &rec))
			targets, _ := emulatedRun(t, rec.Sample, rec.Plan)
			c, err := live.Replay(context.Background(), rec, endpoints(targets), 3*time.Second)
			require.NoError(t, err)
			t.Logf("%s (against %s): %d exchanges replayed, %d not (no JSON body recorded): %v", f, rec.Against, c.Replayed, len(c.NotReplayed), c.NotReplayed)
			if len(c.Differences) > 0 {
				t.Errorf("the emulator answers %d way(s) unlike the recording:\n%s", len(c.Differences), c.Table())
			}
		})
	}
}

// TestConformanceFindsDifferences replays the shipped recording with three
// differences planted in it (a field the emulator does not send, a field
// of another type, another status code) and checks that the table lists
// each of them, and nothing else.
func TestConformanceFindsDifferences(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "recordings", "*", "uc.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "the shipped recording")
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	var rec live.Recording
	require.NoError(t, json.Unmarshal(b, &rec))
	planted := map[string]bool{}
	for i, x := range rec.Exchanges {
		route := x.Workspace + " " + x.Method + " " + x.Path
		switch {
		case x.Path == "/api/2.0/preview/scim/v2/Me" && !planted["extra"]:
			var m map[string]any
			require.NoError(t, json.Unmarshal(x.Response, &m))
			m["recorded_only"] = true
			m["userName"] = 42
			rec.Exchanges[i].Response, _ = json.Marshal(m)
			planted["extra"] = true
			t.Logf("planted in %s", route)
		case x.Status == http.StatusNotFound && !planted["status"]:
			rec.Exchanges[i].Status = http.StatusForbidden
			planted["status"] = true
			t.Logf("planted in %s", route)
		}
	}
	require.Len(t, planted, 2)
	targets, _ := emulatedRun(t, rec.Sample, rec.Plan)
	c, err := live.Replay(context.Background(), rec, endpoints(targets), 3*time.Second)
	require.NoError(t, err)
	t.Log("\n" + c.Table())
	var whats []string
	for _, d := range c.Differences {
		whats = append(whats, d.What+": "+d.Recorded+" / "+d.Emulator)
	}
	assert.Contains(t, whats, "field recorded_only: bool / (absent)")
	assert.Contains(t, whats, "field userName: number / string")
	found := false
	for _, w := range whats {
		if strings.HasPrefix(w, "status (#") && strings.HasSuffix(w, ": 403 / 404") {
			found = true
		}
	}
	assert.True(t, found, "the planted status is listed: %v", whats)
	assert.Len(t, c.Differences, 3, "nothing but what was planted")
}

// endpoints are the emulated workspaces of targets, as Replay reaches them.
func endpoints(targets live.Targets) map[string]live.Endpoint {
	client := &http.Client{Transport: targets.CA.Transport(), Timeout: time.Minute}
	return map[string]live.Endpoint{
		"dev":  {URL: targets.Dev.Host, Token: targets.Dev.Token, Client: client},
		"prod": {URL: targets.Prod.Host, Token: targets.Prod.Token, Client: client},
	}
}
