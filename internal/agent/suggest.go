package agent

import (
	"cmp"
	"slices"
	"strings"

	"github.com/agnivade/levenshtein"
)

// DidYouMean returns the choices closest to a mistyped word, best first (at
// most three): those within a few edits of it (ignoring case: one edit per
// four letters, at least two) and those that contain it. Nothing when no
// choice is close.
func DidYouMean(word string, choices []string) []string {
	w := strings.ToLower(strings.TrimSpace(word))
	if w == "" {
		return nil
	}
	limit := max(2, len(w)/4)
	type scored struct {
		choice string
		d      int
	}
	var close []scored
	for _, c := range choices {
		lc := strings.ToLower(c)
		d := levenshtein.ComputeDistance(w, lc)
		if d > limit && len(w) >= 4 && strings.Contains(lc, w) {
			d = limit // "endpoint" for endpointName
		}
		if d <= limit {
			close = append(close, scored{c, d})
		}
	}
	slices.SortStableFunc(close, func(a, b scored) int { return cmp.Compare(a.d, b.d) })
	var out []string
	for _, s := range close {
		if len(out) == 3 {
			break
		}
		if !slices.Contains(out, s.choice) {
			out = append(out, s.choice)
		}
	}
	return out
}

// Suggestion is DidYouMean as a clause to end a message with: "; did you
// mean x?" or "; did you mean x or y?", or "" when nothing is close.
func Suggestion(word string, choices []string) string {
	m := DidYouMean(word, choices)
	switch len(m) {
	case 0:
		return ""
	case 1:
		return "; did you mean " + m[0] + "?"
	}
	return "; did you mean " + strings.Join(m[:len(m)-1], ", ") + " or " + m[len(m)-1] + "?"
}
