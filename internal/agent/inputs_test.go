package agent

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testDefinition declares one input of every type the tasks use.
func testDefinition(t *testing.T) Definition {
	t.Helper()
	def, err := ParseDefinition([]byte("\uFEFF" + `{
	  "name": "Sample",
	  "inputs": [
	    {"name": "mode", "type": "pickList", "label": "What to run", "required": true, "defaultValue": "notebook",
	     "options": {"notebook": "Notebook", "job": "Existing job"}},
	    {"name": "notebookPath", "type": "string", "label": "Notebook path", "required": true, "visibleRule": "mode = notebook"},
	    {"name": "jobId", "type": "string", "label": "Job", "required": true, "visibleRule": "mode = job"},
	    {"name": "wait", "type": "boolean", "label": "Wait for the run", "defaultValue": "true"},
	    {"name": "timeoutMinutes", "type": "int", "label": "Timeout (minutes)", "defaultValue": "60"},
	    {"name": "parameters", "type": "multiLine", "label": "Parameters"},
	    {"name": "jobFile", "type": "filePath", "label": "Job specification file"},
	    {"name": "workspace", "type": "connectedService:AzureRM", "label": "Azure connection"},
	    {"name": "size", "type": "pickList", "label": "Size", "options": {"Small": "Small"}, "properties": {"EditableOptions": "True"}},
	    {"name": "payload", "type": "multiLine", "label": "Payload (JSON)"}
	  ],
	  "outputVariables": [{"name": "runId"}]
	}`))
	require.NoError(t, err)
	return def
}

func TestInputs(t *testing.T) {
	endpoint := map[string]string{
		"ENDPOINT_URL_3b3c":                 "https://management.azure.com/",
		"ENDPOINT_AUTH_3b3c":                `{"scheme":"WorkloadIdentityFederation","parameters":{"tenantid":"t1","serviceprincipalid":"c1"}}`,
		"ENDPOINT_DATA_3b3c_SUBSCRIPTIONID": "sub",
	}
	cases := []struct {
		name    string
		env     map[string]string
		read    func(in *Inputs) any
		want    any
		wantErr string // substring of Err(); "" means no error
	}{
		{"pickList default", nil, func(in *Inputs) any { return in.Choice("mode") }, "notebook", ""},
		{"pickList any case", map[string]string{"INPUT_MODE": "JOB"}, func(in *Inputs) any { return in.Choice("mode") }, "job", ""},
		{"pickList unknown", map[string]string{"INPUT_MODE": "wheel"}, func(in *Inputs) any { return in.Choice("mode") }, "",
			`input 'What to run' (mode): "wheel" is not one of: job, notebook`},
		{"pickList editable", map[string]string{"INPUT_SIZE": "Large"}, func(in *Inputs) any { return in.Choice("size") }, "Large", ""},
		{"string required and visible", map[string]string{"INPUT_MODE": "notebook"}, func(in *Inputs) any { return in.String("notebookPath") }, "",
			"input 'Notebook path' (notebookPath): is required"},
		{"string required but hidden", map[string]string{"INPUT_MODE": "notebook"}, func(in *Inputs) any { return in.String("jobId") }, "", ""},
		{"string trimmed", map[string]string{"INPUT_NOTEBOOKPATH": "  /Repos/a/train \n"}, func(in *Inputs) any { return in.String("notebookPath") }, "/Repos/a/train", ""},
		{"boolean default", nil, func(in *Inputs) any { return in.Bool("wait") }, true, ""},
		{"boolean false", map[string]string{"INPUT_WAIT": "False"}, func(in *Inputs) any { return in.Bool("wait") }, false, ""},
		{"boolean bad", map[string]string{"INPUT_WAIT": "yes"}, func(in *Inputs) any { return in.Bool("wait") }, false,
			`input 'Wait for the run' (wait): "yes" is not a boolean; use true or false`},
		{"int", map[string]string{"INPUT_TIMEOUTMINUTES": "15"}, func(in *Inputs) any { return in.Int("timeoutMinutes", 1, 1440) }, 15, ""},
		{"int text", map[string]string{"INPUT_TIMEOUTMINUTES": "ten"}, func(in *Inputs) any { return in.Int("timeoutMinutes", 1, 1440) }, 0,
			`input 'Timeout (minutes)' (timeoutMinutes): "ten" is not a whole number from 1 to 1440`},
		{"int zero", map[string]string{"INPUT_TIMEOUTMINUTES": "0"}, func(in *Inputs) any { return in.Int("timeoutMinutes", 1, 1440) }, 0,
			`"0" is not a whole number from 1 to 1440`},
		{"key=value lines", map[string]string{"INPUT_PARAMETERS": "alpha=0.5\r\n# comment\n\n url = a=b \n"},
			func(in *Inputs) any { return in.KeyValues("parameters") }, []KeyValue{{"alpha", "0.5"}, {"url", "a=b"}}, ""},
		{"key=value without =", map[string]string{"INPUT_PARAMETERS": "alpha=1\nbeta"}, func(in *Inputs) any { return len(in.KeyValues("parameters")) }, 1,
			`input 'Parameters' (parameters): line 2 "beta" is not name=value`},
		{"key=value duplicate", map[string]string{"INPUT_PARAMETERS": "a=1\na=2"}, func(in *Inputs) any { return len(in.KeyValues("parameters")) }, 1,
			`line 2 repeats "a" from line 1`},
		{"filePath given", map[string]string{"INPUT_JOBFILE": "/src/jobs/train.json", "BUILD_SOURCESDIRECTORY": "/src"},
			func(in *Inputs) any { return in.FilePath("jobFile") }, "/src/jobs/train.json", ""},
		{"filePath empty arrives as sources dir", map[string]string{"INPUT_JOBFILE": "/src/", "BUILD_SOURCESDIRECTORY": "/src"},
			func(in *Inputs) any { return in.FilePath("jobFile") }, "", ""},
		{"connectedService", mergeMaps(endpoint, map[string]string{"INPUT_WORKSPACE": "3b3c"}),
			func(in *Inputs) any {
				ep := in.Connection("workspace")
				return ep.Scheme + " " + ep.Param("TenantId") + " " + ep.DataValue("subscriptionId")
			}, "WorkloadIdentityFederation t1 sub", ""},
		{"connectedService unknown id", map[string]string{"INPUT_WORKSPACE": "nope"}, func(in *Inputs) any { return in.Connection("workspace") == nil }, true,
			"service connection nope is not available to this task"},
		{"connectedService optional and empty", nil, func(in *Inputs) any { return in.Connection("workspace") == nil }, true, ""},
		{"JSON", map[string]string{"INPUT_PAYLOAD": `{"inputs": [[1, 2]]}`}, func(in *Inputs) any {
			var v map[string]any
			return in.JSON("payload", &v)
		}, true, ""},
		{"JSON bad", map[string]string{"INPUT_PAYLOAD": `{"inputs": `}, func(in *Inputs) any {
			var v map[string]any
			return in.JSON("payload", &v)
		}, false, "input 'Payload (JSON)' (payload): is not valid JSON"},
		{"lines", map[string]string{"INPUT_PARAMETERS": "a\n\n # x\n b "}, func(in *Inputs) any { return in.Lines("parameters") }, []string{"a", "b"}, ""},
		// An unexpanded macro is the input's one problem, whatever its type.
		{"macro in a string", map[string]string{"INPUT_NOTEBOOKPATH": "/Repos/$(team)/train"}, func(in *Inputs) any { return in.String("notebookPath") }, "",
			"input 'Notebook path' (notebookPath): the macro $(team) was not expanded: no variable team is defined for this step"},
		{"macro in an int", map[string]string{"INPUT_TIMEOUTMINUTES": "$(timeout)"}, func(in *Inputs) any { return in.Int("timeoutMinutes", 1, 1440) }, 0,
			"the macro $(timeout) was not expanded"},
		{"macro in a boolean", map[string]string{"INPUT_WAIT": "$(wait)"}, func(in *Inputs) any { return in.Bool("wait") }, false, "the macro $(wait) was not expanded"},
		{"macro in a pick list", map[string]string{"INPUT_MODE": "$(mode)"}, func(in *Inputs) any { return in.Choice("mode") }, "", "the macro $(mode) was not expanded"},
		{"macros in lines", map[string]string{"INPUT_PARAMETERS": "a=$(x.y)\nb=$(z-1)\nc=$(x.y)"}, func(in *Inputs) any { return len(in.KeyValues("parameters")) }, 0,
			"the macros $(x.y), $(z-1) were not expanded: no variables of these names are defined"},
		{"macro in a connection", map[string]string{"INPUT_WORKSPACE": "$(conn)"}, func(in *Inputs) any { return in.Connection("workspace") == nil }, true, "the macro $(conn) was not expanded"},
		{"not a macro: white space", map[string]string{"INPUT_NOTEBOOKPATH": "/a/$( x )"}, func(in *Inputs) any { return in.String("notebookPath") }, "/a/$( x )", ""},
	}
	def := testDefinition(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := def.InputsFrom(Env(tc.env))
			got := tc.read(in)
			assert.Equal(t, tc.want, got)
			if tc.wantErr == "" {
				assert.NoError(t, in.Err())
			} else {
				require.Error(t, in.Err())
				assert.Contains(t, in.Err().Error(), tc.wantErr)
			}
		})
	}
}

func TestInputsReportEveryProblemAtOnce(t *testing.T) {
	in := testDefinition(t).InputsFrom(Env{"INPUT_MODE": "notebook", "INPUT_WAIT": "maybe", "INPUT_TIMEOUTMINUTES": "-1"})
	in.String("notebookPath")
	in.Bool("wait")
	in.Int("timeoutMinutes", 1, 1440)
	in.Fail("parameters", "cannot be combined with %s", "a job")
	err := in.Err()
	require.Error(t, err)
	assert.Len(t, splitJoined(err), 4)
	assert.Contains(t, err.Error(), "input 'Parameters' (parameters): cannot be combined with a job")
}

// TestAMacroIsTheInputsOnlyProblem: an input whose value kept a macro gets
// one problem, however often it is read and whatever the task's own checks
// say about the empty value it then reads.
func TestAMacroIsTheInputsOnlyProblem(t *testing.T) {
	in := testDefinition(t).InputsFrom(Env{"INPUT_MODE": "notebook", "INPUT_NOTEBOOKPATH": "$(train.notebook)"})
	for range 2 {
		assert.Empty(t, in.String("notebookPath"))
	}
	in.Fail("notebookPath", "is not an absolute path")
	require.Error(t, in.Err())
	assert.Len(t, splitJoined(in.Err()), 1, in.Err().Error())
}

func TestReadingAnUndeclaredInputPanics(t *testing.T) {
	in := testDefinition(t).InputsFrom(Env{})
	assert.PanicsWithValue(t, `task Sample reads input "notAnInput", which its task.json does not declare`, func() { in.String("notAnInput") })
}

func TestVisibleRules(t *testing.T) {
	def := Definition{}
	vals := map[string]string{"a": "x", "b": "y"}
	get := func(n string) string { return vals[n] }
	for rule, want := range map[string]bool{
		"":                true,
		"a = x":           true,
		"a == X":          true,
		"a != x":          false,
		"a = x && b = z":  false,
		"a = z || b = y":  true,
		"a = z || b = z":  false,
		"b EndsWith y":    true,
		"b NotContains y": false,
		"a = x && b != z": true,
	} {
		assert.Equal(t, want, def.visible(InputDef{VisibleRule: rule}, get), rule)
	}
}

func mergeMaps(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestVariablesAndSystem(t *testing.T) {
	env := NewEnv([]string{
		"DATABRICKS-HOST=https://adb-1.azuredatabricks.net", "SECRET_DATABRICKS-TOKEN=dapi-secret",
		"SYSTEM_TEAMFOUNDATIONCOLLECTIONURI=https://dev.azure.com/org", "SYSTEM_TEAMPROJECT=My Project",
		"BUILD_BUILDID=77", "SYSTEM_DEBUG=True", "SYSTEM_JOBATTEMPT=2",
		"ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN=job-token",
	})
	host, secret, ok := env.Variable("databricks-host")
	assert.Equal(t, []any{"https://adb-1.azuredatabricks.net", false, true}, []any{host, secret, ok})
	tok, secret, ok := env.Variable("databricks-token")
	assert.Equal(t, []any{"dapi-secret", true, true}, []any{tok, secret, ok})
	_, _, ok = env.Variable("missing")
	assert.False(t, ok)
	sys := env.System()
	assert.Equal(t, "https://dev.azure.com/org/", sys.CollectionURI)
	assert.Equal(t, "https://dev.azure.com/org/My%20Project/_build/results?buildId=77", sys.RunURL())
	assert.True(t, sys.Debug)
	assert.Equal(t, 2, sys.Attempt())
	assert.Equal(t, "job-token", env.JobToken())
	assert.ElementsMatch(t, []string{"dapi-secret", "job-token"}, env.Secrets())
	assert.Equal(t, "BUILD_BUILDID", VariableKey("Build.BuildId"))
	assert.Equal(t, "MY_VAR-X", VariableKey("my var-x"))
	assert.True(t, strings.HasPrefix(Env{"RELEASE_RELEASEWEBURL": "https://r"}.System().RunURL(), "https://r"))
}
