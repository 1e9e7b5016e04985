package batchscore

import (
	"strings"
	"testing"

	"github.com/brickferry/brickferry/internal/agent"
)

// FuzzTableName: the table-name reader takes any text; what it accepts has
// one to three parts and holds no line break or logging command.
func FuzzTableName(f *testing.F) {
	for _, s := range []string{"main.ml.t", "`a b`.c", "a.b.c.d", "", "a..b", "`x``y`", "t;DROP", "##vso[x]", "a\nb"} {
		f.Add(s)
	}
	def := agent.Definition{Name: "Fuzz", Inputs: []agent.InputDef{{Name: "table", Type: "string"}}}
	f.Fuzz(func(t *testing.T, s string) {
		in := def.InputsFrom(agent.Env{"INPUT_TABLE": s})
		got := readTable(in, "table", 1)
		if got == "" {
			return
		}
		if strings.ContainsAny(got, "\r\n") {
			t.Fatalf("accepted a table name with a line break: %q", got)
		}
		if n := len(tablePart.FindAllString(got, -1)); n < 1 || n > 3 {
			t.Fatalf("accepted %q with %d parts", got, n)
		}
	})
}
