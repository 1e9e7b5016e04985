package modeluri

import "testing"

// FuzzParse: the model name, version reference and source parsers take any
// text without panicking, and a name they accept parses again to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"churn", "main.ml.churn", "models:/churn/1", "models:/churn/Production", "models:/churn@champion", "runs:/0123/model", "dbfs:/x", "a..b", "`x`", "$(x)", "models:/", "runs:/", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseName(s); err == nil {
			again, err := ParseName(n.Full)
			if err != nil || again != n {
				t.Fatalf("ParseName(%q) = %+v, but its Full %q parses to %+v, %v", s, n, n.Full, again, err)
			}
		}
		_, _ = ParseVersionRef(s)
		_, _ = ParseSource(s)
		_, _ = ParseStage(s)
		_ = ValidateAlias(s)
	})
}
