package modeluri

import (
	"slices"
	"strings"
	"testing"
)

// FuzzParse: every parser here takes any text without panicking, and what a
// parser accepts, written back in the form users write (its formatter: a
// name's Full, a version's number, latest, stage or @alias, a source's URI),
// parses again to the same value:
//
//   - ParseName: Full (and String) parse to the same Name, a Unity Catalog
//     name exactly when it has three parts;
//   - ParseVersionRef: exactly one field is set, its written form parses to
//     the same ref, and String (the form messages use) too unless it names a
//     stage ("the version in Staging");
//   - ParseStage: a canonical stage parses to itself;
//   - ParseSource: URI parses to the same Source, and so do URI with a
//     trailing '/' (the same folder: a dbfs:/ source is spelt one way), a
//     runs:/ URI rebuilt from its run id and path, and a logged model's
//     models:/ URI from its id;
//   - ValidateAlias: an accepted alias is the version ref @alias.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"churn", "main.ml.churn", " main.ml.churn ", "models:/churn/1", "models:/churn/Production", "models:/churn@champion",
		"runs:/0123/model", "runs:/0123//model/", "runs:/0123/a/../b", "dbfs:/x", "dbfs:/x/", "dbfs:/", "a..b", "`x`", "$(x)",
		"models:/", "runs:/", "\x00", "3", "03", "0", "-1", "latest", "LATEST", "staging", " Production ", "@champion", "@v2",
		"@latest", "@12", "champion", "archived", "models:/m-0123abcd", "models:/m-0123abcd/", "models:/m-", "models:/m-a.b", "models:/churn",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseName(s); err == nil {
			for _, written := range []string{n.Full, n.String()} {
				if again, err := ParseName(written); err != nil || again != n {
					t.Fatalf("ParseName(%q) = %+v, but %q parses to %+v, %v", s, n, written, again, err)
				}
			}
			if n.UC() != (strings.Count(n.Full, ".") == 2) || (n.UC() && n.Full != n.Catalog+"."+n.Schema+"."+n.Model) {
				t.Fatalf("ParseName(%q) = %+v: a Unity Catalog name is exactly a three-part one", s, n)
			}
		}

		if v, err := ParseVersionRef(s); err == nil {
			set := 0
			for _, b := range []bool{v.Number > 0, v.Latest, v.Stage != "", v.Alias != ""} {
				if b {
					set++
				}
			}
			if set != 1 {
				t.Fatalf("ParseVersionRef(%q) = %+v: not exactly one way of naming a version", s, v)
			}
			if again, err := ParseVersionRef(written(v)); err != nil || again != v {
				t.Fatalf("ParseVersionRef(%q) = %+v, but its written form %q parses to %+v, %v", s, v, written(v), again, err)
			}
			if v.Stage == "" {
				if again, err := ParseVersionRef(v.String()); err != nil || again != v {
					t.Fatalf("ParseVersionRef(%q) = %+v, but String() %q parses to %+v, %v", s, v, v.String(), again, err)
				}
			}
		}

		if st, ok := ParseStage(s); ok {
			if again, ok := ParseStage(st); !ok || again != st || !slices.Contains(Stages, st) {
				t.Fatalf("ParseStage(%q) = %q, which is not a canonical stage that parses to itself", s, st)
			}
		}

		if src, err := ParseSource(s); err == nil {
			if again, err := ParseSource(src.URI); err != nil || again != src {
				t.Fatalf("ParseSource(%q) = %+v, but its URI %q parses to %+v, %v", s, src, src.URI, again, err)
			}
			if src.ModelID != "" && (src.RunID != "" || src.URI != "models:/"+src.ModelID) {
				t.Fatalf("ParseSource(%q) = %+v: a logged model source is models:/<its id> and nothing else", s, src)
			}
			// A runs:/ source is its run and path (URI stays as written); a
			// dbfs:/ source is its URI. A logged model's id is one segment.
			if again, err := ParseSource(src.URI + "/"); src.ModelID == "" && (err != nil || again.RunID != src.RunID || again.Path != src.Path || (src.RunID == "" && again.URI != src.URI)) {
				t.Fatalf("ParseSource(%q) = %+v, but %q (the same folder) parses to %+v, %v: one source, two spellings", s, src, src.URI+"/", again, err)
			}
			if src.RunID != "" {
				uri := "runs:/" + src.RunID + "/" + src.Path
				if again, err := ParseSource(uri); err != nil || again.RunID != src.RunID || again.Path != src.Path {
					t.Fatalf("ParseSource(%q) = %+v, but %q parses to %+v, %v", s, src, uri, again, err)
				}
			}
		}

		if ValidateAlias(s) == nil {
			if v, err := ParseVersionRef("@" + s); err != nil || v != (VersionRef{Alias: s}) {
				t.Fatalf("ValidateAlias accepts %q, but ParseVersionRef(%q) = %+v, %v", s, "@"+s, v, err)
			}
		}
	})
}

// written is a version ref as a user writes it in a modelVersion input:
// String's form, but a stage by its name.
func written(v VersionRef) string {
	if v.Stage != "" {
		return v.Stage
	}
	return v.String()
}
