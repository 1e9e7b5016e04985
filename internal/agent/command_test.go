package agent

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCommandString(t *testing.T) {
	cases := []struct {
		cmd  Command
		want string
	}{
		{Command{Area: "task", Event: "complete", Properties: map[string]string{"result": "Succeeded"}}, "##vso[task.complete result=Succeeded;]"},
		{Command{Area: "task", Event: "setvariable", Properties: map[string]string{"variable": "runId", "isOutput": "true"}, Message: "42"},
			"##vso[task.setvariable isOutput=true;variable=runId;]42"},
		{Command{Area: "task", Event: "issue", Properties: map[string]string{"type": "error"}, Message: "100% bad\r\nnext ] line;"},
			"##vso[task.issue type=error;]100%AZP25 bad%0D%0Anext ] line;"},
		{Command{Area: "task", Event: "setvariable", Properties: map[string]string{"variable": "v", "x": "a;b]c%d\ne"}},
			"##vso[task.setvariable variable=v;x=a%3Bb%5Dc%AZP25d%0Ae;]"},
		{Command{Area: "task", Event: "setsecret", Properties: map[string]string{"empty": ""}, Message: "s"}, "##vso[task.setsecret]s"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, tc.cmd.String())
		back, ok := ParseCommand(tc.want)
		require.True(t, ok, tc.want)
		assert.Equal(t, tc.cmd.Message, back.Message)
		for k, v := range tc.cmd.Properties {
			if v != "" {
				assert.Equal(t, v, back.Properties[strings.ToLower(k)])
			}
		}
	}
}

func TestParseCommandLikeTheAgent(t *testing.T) {
	cases := map[string]bool{
		"plain text": false,
		"prefix ##vso[task.complete result=Failed]x": true,  // anywhere in a line
		"##VSO[task.complete]":                       false, // case-sensitive prefix
		"##vso[task.complete":                        false, // no closing bracket
		"##vso[taskcomplete]":                        false, // area.event needs a dot
		"##vso[a.b.c]":                               false,
		"##vso[task.setvariable variable=x]":         true,
	}
	for line, want := range cases {
		_, ok := ParseCommand(line)
		assert.Equal(t, want, ok, line)
	}
	cmd, _ := ParseCommand("##vso[Task.SetVariable Variable=a;=skip;k=;isOutput=true]m")
	assert.Equal(t, "task", cmd.Area)
	assert.Equal(t, "setvariable", cmd.Event)
	assert.Equal(t, map[string]string{"variable": "a", "isoutput": "true"}, cmd.Properties)
}

func TestNeutralize(t *testing.T) {
	assert.Equal(t, "log **vso[task.complete result=Succeeded]", Neutralize("log ##vso[task.complete result=Succeeded]"))
	assert.Equal(t, "**VsO[x] **[error]boom", Neutralize("##VsO[x] ##[error]boom"))
	assert.Equal(t, "# heading ## sub", Neutralize("# heading ## sub"))
	_, ok := ParseCommand(Neutralize("##vso[task.setvariable variable=x]y"))
	assert.False(t, ok)
}

// FuzzCommandRoundTrip checks that any property value and message written by
// Command.String and read back with the agent's rules comes back unchanged,
// and that nothing written can start a second command or end the property
// list early.
func FuzzCommandRoundTrip(f *testing.F) {
	for _, s := range []string{"", "a", "%", "%AZP25", "%0A", "]", ";", "\r\n", "##vso[task.complete result=Succeeded]", "a=b;c=d]e", "%3B%5D", "\x00\xff"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, value, message string) {
		cmd := Command{Area: "task", Event: "setvariable", Properties: map[string]string{"variable": "x", "value": value}, Message: message}
		line := cmd.String()
		if strings.ContainsAny(line, "\r\n") {
			t.Fatalf("a command spans lines: %q", line)
		}
		// The agent runs one command per line, found at the first "##vso[";
		// ours starts the line, so with no line break no other can run.
		if !strings.HasPrefix(line, commandPrefix+"task.setvariable ") {
			t.Fatalf("the line does not start with our command: %q", line)
		}
		got, ok := ParseCommand(line)
		if !ok {
			t.Fatalf("not parsed: %q", line)
		}
		if got.Area != "task" || got.Event != "setvariable" || got.Properties["variable"] != "x" {
			t.Fatalf("early ] or broken properties: %q → %+v", line, got)
		}
		if value != "" && got.Properties["value"] != value {
			t.Fatalf("property %q came back as %q", value, got.Properties["value"])
		}
		if got.Message != message {
			t.Fatalf("message %q came back as %q", message, got.Message)
		}
		if _, ok := ParseCommand(Neutralize(message)); ok {
			t.Fatalf("neutralised text still parses as a command: %q", message)
		}
	})
}
