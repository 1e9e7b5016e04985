package modeluri

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		in      string
		uc      bool
		wantErr string
	}{
		{in: "churn"},
		{in: "churn-model_v2"},
		{in: "main.ml.churn", uc: true},
		{in: "main.ml.churn model", uc: true, wantErr: "is not a Unity Catalog model name"},
		{in: "ml.churn", wantErr: "has 2 dot-separated parts"},
		{in: "a.b.c.d", wantErr: "has 4 dot-separated parts"},
		{in: "main..churn", wantErr: "is not a Unity Catalog model name"},
		{in: "a/b", wantErr: "may not contain '/'"},
		{in: "models:/churn/1", wantErr: "is a URI, not a model name"},
		{in: "", wantErr: "is empty"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			n, err := ParseName(tc.in)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.uc, n.UC())
			assert.Equal(t, tc.in, n.Full)
		})
	}
	n, err := ParseName("main.ml.churn")
	require.NoError(t, err)
	assert.Equal(t, Name{Full: "main.ml.churn", Catalog: "main", Schema: "ml", Model: "churn"}, n)
}

func TestParseVersionRef(t *testing.T) {
	for in, want := range map[string]VersionRef{
		"3": {Number: 3}, "latest": {Latest: true}, "LATEST": {Latest: true},
		"staging": {Stage: "Staging"}, "Production": {Stage: "Production"}, "@champion": {Alias: "champion"},
	} {
		got, err := ParseVersionRef(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"0", "-1", "03", "v3", "3.0", "@", "@latest", "@a b", "Prod"} {
		_, err := ParseVersionRef(bad)
		assert.Error(t, err, bad)
	}
}

func TestCheckVersion(t *testing.T) {
	ws := Name{Full: "churn"}
	uc := Name{Full: "main.ml.churn", Catalog: "main", Schema: "ml", Model: "churn"}
	for _, tc := range []struct {
		name    string
		model   Name
		ref     VersionRef
		wantErr string
	}{
		{"number in the workspace registry", ws, VersionRef{Number: 3}, ""},
		{"stage in the workspace registry", ws, VersionRef{Stage: "Staging"}, ""},
		{"alias in the workspace registry", ws, VersionRef{Alias: "champion"}, "churn is a workspace model registry model, which has no aliases"},
		{"latest in Unity Catalog", uc, VersionRef{Latest: true}, ""},
		{"alias in Unity Catalog", uc, VersionRef{Alias: "champion"}, ""},
		{"stage in Unity Catalog", uc, VersionRef{Stage: "Production"}, "main.ml.churn is a Unity Catalog model, which has no stages"},
		{"no model name yet", Name{}, VersionRef{Stage: "Production"}, ""},
		{"no version", uc, VersionRef{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.model.CheckVersion(tc.ref)
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func TestValidateAlias(t *testing.T) {
	for _, ok := range []string{"champion", "challenger_2", "blue-green"} {
		assert.NoError(t, ValidateAlias(ok), ok)
	}
	for _, bad := range []string{"", "latest", "Latest", "v2", "V10", "12", "a b", "a.b", "é"} {
		assert.Error(t, ValidateAlias(bad), bad)
	}
}

func TestParseStage(t *testing.T) {
	for _, in := range []string{"production", "PRODUCTION", " Production "} {
		st, ok := ParseStage(in)
		assert.True(t, ok)
		assert.Equal(t, "Production", st)
	}
	_, ok := ParseStage("prod")
	assert.False(t, ok)
}

func TestParseSource(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	src, err := ParseSource("runs:/" + id + "/model/")
	require.NoError(t, err)
	assert.Equal(t, Source{URI: "runs:/" + id + "/model/", RunID: id, Path: "model"}, src)
	src, err = ParseSource("runs:/" + id + "/artifacts/model")
	require.NoError(t, err)
	assert.Equal(t, "artifacts/model", src.Path)
	src, err = ParseSource("dbfs:/models/churn/")
	require.NoError(t, err)
	assert.Equal(t, Source{URI: "dbfs:/models/churn"}, src)
	src, err = ParseSource(" models:/m-" + id + " ")
	require.NoError(t, err)
	assert.Equal(t, Source{URI: "models:/m-" + id, ModelID: "m-" + id}, src)
	for in, want := range map[string]string{
		"":                      "is empty",
		"runs:/" + id:           "names no artifact path",
		"runs://model":          "is not a runs:/ URI",
		"runs:/" + id + "/../x": "invalid artifact path",
		"models:/churn/1":       "is a registry URI",
		"models:/churn@prod":    "is a registry URI",
		"models:/churn":         "is not a logged model URI",
		"models:/m-":            "is not a logged model URI",
		"models:/m-a.b":         "is not a logged model URI",
		"s3://bucket/model":     "is not a model URI",
		"dbfs:/":                "is not a model URI",
		"runs:/" + id + "/a//b": "invalid artifact path",
	} {
		_, err := ParseSource(in)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}
