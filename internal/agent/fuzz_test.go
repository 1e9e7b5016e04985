package agent

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
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

// FuzzInputs: every input reader takes any text without panicking, and
// either returns a value that obeys the reader's rule or records errors that
// each name that input (by its label and YAML name) and say what is wrong.
// Each input is read on its own, so that an error is attributed to the one
// input that holds the text.
func FuzzInputs(f *testing.F) {
	for _, s := range []string{"", "a=b\nc=d", "=x", "12", "-1", "0", "100", "101", "true", "TRUE", "yes", "{\"a\":1}", "[", "\x00",
		"k=v=w\n\n", "a=1\na=2", "99999999999999999999", " B ", "##vso[task.complete result=Succeeded]x"} {
		f.Add(s)
	}
	def := Definition{Name: "Fuzz", Inputs: []InputDef{
		{Name: "text", Label: "Some text", Type: "string", Required: true}, {Name: "kv", Label: "Parameters", Type: "multiLine"},
		{Name: "n", Label: "A number", Type: "int"}, {Name: "flag", Label: "A switch", Type: "boolean"},
		{Name: "pick", Label: "A choice", Type: "pickList", Options: map[string]string{"a": "A", "b": "B"}},
		{Name: "doc", Label: "A document (JSON)", Type: "multiLine"}, {Name: "lines", Label: "Some lines", Type: "multiLine"},
	}}
	f.Fuzz(func(t *testing.T, s string) {
		v := strings.TrimSpace(s)
		read := func(name string, fn func(in *Inputs)) error {
			in := def.InputsFrom(Env{"INPUT_" + VariableKey(name): s})
			fn(in)
			err := in.Err()
			if err == nil {
				return nil
			}
			d, _ := def.Input(name)
			for _, e := range unjoin(err) {
				var ie *InputError
				if !errors.As(e, &ie) || ie.Name != name || ie.Label != d.Label || ie.Problem == "" {
					t.Fatalf("input %s = %q: the error %q does not name the input %s with its label and a problem", name, s, e, name)
				}
				if !strings.HasPrefix(e.Error(), "input '"+d.Label+"' ("+name+"): ") {
					t.Fatalf("input %s = %q: the error %q does not start with the input's label and name", name, s, e)
				}
			}
			return err
		}

		// A value that still holds an unexpanded $(macro) reads as "" with one
		// error naming the input (Inputs.read); any other reads as the
		// trimmed text, and only an empty required input is an error.
		macro := macroPattern.MatchString(v)
		want := v
		if macro {
			want = ""
		}
		if err := read("text", func(in *Inputs) {
			if got := in.String("text"); got != want {
				t.Fatalf("String(%q) = %q, want %q", s, got, want)
			}
		}); (err != nil) != (v == "" || macro) {
			t.Fatalf("String(%q): error %v; only an empty required input or an unexpanded macro is an error", s, err)
		}
		if macro {
			// Every reader refuses it the same way (read names the input).
			if err := read("lines", func(in *Inputs) { in.Lines("lines") }); err == nil {
				t.Fatalf("Lines(%q): no error for an unexpanded macro", s)
			}
			if err := read("n", func(in *Inputs) { in.Int("n", 1, 100) }); err == nil {
				t.Fatalf("Int(%q): no error for an unexpanded macro", s)
			}
			return
		}

		var n int
		err := read("n", func(in *Inputs) { n = in.Int("n", 1, 100) })
		if want, aerr := strconv.Atoi(v); err == nil && v != "" && (aerr != nil || want != n || n < 1 || n > 100) {
			t.Fatalf("Int(%q) = %d without an error: not a whole number from 1 to 100", s, n)
		} else if err != nil && v != "" && aerr == nil && want >= 1 && want <= 100 {
			t.Fatalf("Int(%q): %v, but %d is from 1 to 100", s, err, want)
		}

		var b bool
		err = read("flag", func(in *Inputs) { b = in.Bool("flag") })
		switch l := strings.ToLower(v); {
		case (l == "true" || l == "false" || l == "") != (err == nil):
			t.Fatalf("Bool(%q): error %v; only true, false (any case) and empty are booleans", s, err)
		case err == nil && b != (l == "true"):
			t.Fatalf("Bool(%q) = %v", s, b)
		}

		var pick string
		err = read("pick", func(in *Inputs) { pick = in.Choice("pick") })
		switch valid := strings.EqualFold(v, "a") || strings.EqualFold(v, "b"); {
		case v != "" && valid != (err == nil):
			t.Fatalf("Choice(%q) = %q, error %v; the options are a and b in any case", s, pick, err)
		case valid && !strings.EqualFold(pick, v):
			t.Fatalf("Choice(%q) = %q", s, pick)
		}

		var kvs []KeyValue
		err = read("kv", func(in *Inputs) { kvs = in.KeyValues("kv") })
		seen := map[string]bool{}
		for _, kv := range kvs {
			if kv.Key == "" || kv.Key != strings.TrimSpace(kv.Key) || strings.Contains(kv.Key, "=") || seen[kv.Key] {
				t.Fatalf("KeyValues(%q) gave the key %q (empty, untrimmed, with '=' or repeated)", s, kv.Key)
			}
			seen[kv.Key] = true
		}
		if err == nil && len(kvs) != len(nonComment(v)) {
			t.Fatalf("KeyValues(%q) = %v without an error: a line was dropped", s, kvs)
		}

		var doc any
		err = read("doc", func(in *Inputs) { in.JSON("doc", &doc) })
		// Accepted exactly when it is JSON that Go can hold: valid JSON
		// whose numbers fit a float64 (1E700 is valid JSON, refused with
		// an error naming the input).
		if holds := json.Unmarshal([]byte(v), new(any)) == nil; v != "" && (err == nil) != holds {
			t.Fatalf("JSON(%q): error %v, but json.Valid says %v and decoding into any gives %v", s, err, json.Valid([]byte(v)), holds)
		}

		var lines []string
		if err := read("lines", func(in *Inputs) { lines = in.Lines("lines") }); err != nil {
			t.Fatalf("Lines(%q): %v; any text is lines", s, err)
		}
		if want := nonComment(v); !slices.Equal(lines, want) {
			t.Fatalf("Lines(%q) = %q, want %q", s, lines, want)
		}
	})
}

// nonComment is the trimmed lines of s that are neither blank nor comments.
func nonComment(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// unjoin is the errors errors.Join put together (err itself otherwise).
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
