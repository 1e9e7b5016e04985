package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// assertInputErr checks the problems in has recorded: none when wantErr is
// empty, else one that contains wantErr.
func assertInputErr(t *testing.T, in *Inputs, wantErr string) {
	t.Helper()
	if wantErr == "" {
		assert.NoError(t, in.Err())
		return
	}
	require.Error(t, in.Err())
	assert.Contains(t, in.Err().Error(), wantErr)
}

func TestMinutes(t *testing.T) {
	const week = 7 * 24 * time.Hour
	cases := []struct {
		name    string
		value   string // "-" leaves the input unset (its default, 60, applies)
		lo, hi  time.Duration
		want    time.Duration
		wantErr string // substring of Err(); "" means no error
	}{
		{"default", "-", time.Second, week, time.Hour, ""},
		{"whole", "90", time.Second, week, 90 * time.Minute, ""},
		{"decimals", "0.5", time.Second, week, 30 * time.Second, ""},
		{"upper bound", "10080", time.Second, week, week, ""},
		{"above the bound", "10081", time.Second, week, 0, `"10081" is not a number of minutes from 0.02 to 10080 (decimals allowed, e.g. 90 or 0.5)`},
		{"below one second", "0.01", time.Second, week, 0, `"0.01" is not a number of minutes from 0.02 to 10080`},
		{"below the bound when there is none", "0.005", 0, 24 * time.Hour, 300 * time.Millisecond, ""},
		{"zero", "0", 0, 24 * time.Hour, 0, `input 'Timeout (minutes)' (timeoutMinutes): "0" is not a number of minutes above 0 and up to 1440`},
		{"negative", "-5", time.Second, week, 0, "is not a number of minutes"},
		{"text", "soon", time.Second, week, 0, `"soon" is not a number of minutes`},
		{"NaN", "NaN", time.Second, week, 0, `"NaN" is not a number of minutes`},
		{"infinite", "Inf", time.Second, week, 0, `"Inf" is not a number of minutes`},
		{"too large for a Duration", "1e300", time.Second, week, 0, `"1e300" is not a number of minutes`},
		{"rounds to no time", "1e-12", 0, 24 * time.Hour, 0, `"1e-12" is not a number of minutes above 0 and up to 1440`},
		{"empty", "", time.Second, week, 0, ""},
		{"command neutralised", "##vso[task.complete]", time.Second, week, 0, `"**vso[task.complete]" is not a number of minutes`},
	}
	def := testDefinition(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := Env{}
			if tc.value != "-" {
				env["INPUT_TIMEOUTMINUTES"] = tc.value
			}
			in := def.InputsFrom(env)
			assert.Equal(t, tc.want, in.Minutes("timeoutMinutes", tc.lo, tc.hi))
			assertInputErr(t, in, tc.wantErr)
		})
	}
}

func TestParse(t *testing.T) {
	parseEven := func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n%2 != 0 {
			return -1, fmt.Errorf("%q is not an even number", s)
		}
		return n, nil
	}
	cases := []struct {
		name    string
		value   string
		want    int
		wantErr string
	}{
		{"parsed", "42", 42, ""},
		{"empty is not parsed", "", 0, ""},
		{"error recorded as the input's problem", "41", -1, `input 'Parameters' (parameters): "41" is not an even number`},
		{"error neutralised", "##vso[x]", -1, `"**vso[x]" is not an even number`},
	}
	def := testDefinition(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := def.InputsFrom(Env{"INPUT_PARAMETERS": tc.value})
			assert.Equal(t, tc.want, Parse(in, "parameters", parseEven))
			assertInputErr(t, in, tc.wantErr)
		})
	}
}

func TestMarkdownCell(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"plain", "main.ml.churn_predictions", "main.ml.churn_predictions"},
		{"pipe", "a|b", `a\|b`},
		{"line breaks", "one\r\ntwo\nthree\rfour", "one two three four"},
		{"logging command", "x ##vso[task.complete result=Succeeded]", "x **vso[task.complete result=Succeeded]"},
		{"markdown left alone", "*bold* `code` <b> [link]", "*bold* `code` <b> [link]"},
		{"empty", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := MarkdownCell(tc.in)
			assert.Equal(t, tc.want, got)
			assert.NotContains(t, got, "\n")
			assert.Equal(t, strings.Count(got, "|"), strings.Count(got, `\|`), "every pipe escaped")
		})
	}
}

// suffix is an Explainer that marks the errors it explains.
type suffix string

func (s suffix) Explain(err error) error { return fmt.Errorf("%w [%s]", err, string(s)) }

func TestRunExplainsEachProblem(t *testing.T) {
	cases := []struct {
		name       string
		explainers []Explainer
		err        error
		wantErrors []string
	}{
		{"no explainer", nil, errors.New("boom"), []string{"boom"}},
		{"in the order added", []Explainer{suffix("source"), suffix("target")}, errors.New("boom"), []string{"boom [source] [target]"}},
		{"each problem of a joined error", []Explainer{suffix("ws")}, errors.Join(errors.New("a"), errors.New("b")), []string{"a [ws]", "b [ws]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			log := NewLog(&out, LogOptions{})
			task := func(context.Context, Env, *Log) error {
				for _, e := range tc.explainers {
					log.AddExplainer(e)
				}
				return tc.err
			}
			require.Equal(t, Failed, Run(context.Background(), task, Env{}, log))
			var got []string
			for _, line := range strings.Split(out.String(), "\n") {
				if cmd, ok := ParseCommand(line); ok && cmd.Event == "issue" && cmd.Properties["type"] == "error" {
					got = append(got, cmd.Message)
				}
			}
			assert.Equal(t, tc.wantErrors, got)
		})
	}
}
