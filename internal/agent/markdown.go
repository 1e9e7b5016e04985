package agent

import "strings"

// cellEscaper keeps text inside one cell of a GitHub-flavoured Markdown table
// (the run summary tab renders GFM): a pipe would end the cell and a line
// break the row. The pipe is escaped even inside a code span, where GFM
// still reads `\|` as a pipe (GFM spec, 4.10 "Tables (extension)");
// nothing else is escaped, so the cell reads the same in and out of a code
// span.
var cellEscaper = strings.NewReplacer("|", `\|`, "\r\n", " ", "\n", " ", "\r", " ")

// MarkdownCell returns text from inputs or servers made safe for one
// Markdown table cell of a run summary: pipes escaped, line breaks turned
// into spaces, and "##vso[" neutralised (see Neutralize).
func MarkdownCell(s string) string {
	return Neutralize(cellEscaper.Replace(s))
}
