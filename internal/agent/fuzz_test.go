package agent

import (
	"strings"
	"testing"
)

// FuzzNeutralize: text from elsewhere never carries a logging command after
// Neutralize.
func FuzzNeutralize(f *testing.F) {
	for _, s := range []string{"##vso[task.complete result=Succeeded]", "x ##VSO[task.setsecret]y", "##[error]x", "#\n#vso["} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, line := range strings.Split(Neutralize(s), "\n") {
			if _, ok := ParseCommand(line); ok {
				t.Fatalf("Neutralize(%q) still holds a command: %q", s, line)
			}
		}
	})
}

// FuzzInputs: every input reader takes any text without panicking and either
// returns a value or records an error naming the input.
func FuzzInputs(f *testing.F) {
	for _, s := range []string{"", "a=b\nc=d", "=x", "12", "-1", "true", "TRUE", "yes", "{\"a\":1}", "[", "\x00", "k=v=w\n\n", "99999999999999999999"} {
		f.Add(s)
	}
	def := Definition{Name: "Fuzz", Inputs: []InputDef{
		{Name: "text", Type: "string"}, {Name: "kv", Type: "multiLine"}, {Name: "n", Type: "int"},
		{Name: "flag", Type: "boolean"}, {Name: "pick", Type: "pickList", Options: map[string]string{"a": "A", "b": "B"}},
		{Name: "doc", Type: "multiLine"}, {Name: "lines", Type: "multiLine"},
	}}
	f.Fuzz(func(t *testing.T, s string) {
		env := Env{}
		for _, in := range def.Inputs {
			env["INPUT_"+strings.ToUpper(in.Name)] = s
		}
		in := def.InputsFrom(env)
		_ = in.String("text")
		_ = in.KeyValues("kv")
		_ = in.Int("n", 1, 100)
		_ = in.Bool("flag")
		_ = in.Choice("pick")
		var v map[string]any
		_ = in.JSON("doc", &v)
		_ = in.Lines("lines")
		if err := in.Err(); err != nil && err.Error() == "" {
			t.Fatal("an input error without a message")
		}
	})
}
