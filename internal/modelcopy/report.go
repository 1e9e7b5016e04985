package modelcopy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/brickferry/brickferry/internal/agent"
)

// Output variable names (declared in MLflowPromote's task.json).
const (
	OutTargetModelName    = "targetModelName"
	OutTargetModelVersion = "targetModelVersion"
	OutTargetRunID        = "targetRunId"
	OutTargetModelURI     = "targetModelUri"
	OutBytesCopied        = "bytesCopied"
	OutFilesCopied        = "filesCopied"
	OutReused             = "reused"
)

// report writes the outputs and the summary tab.
func (s *session) report(o Outcome) {
	s.log.SetOutput(OutTargetModelName, o.Target.Full)
	s.log.SetOutput(OutTargetModelVersion, strconv.Itoa(o.TargetVersion))
	s.log.SetOutput(OutTargetRunID, o.TargetRunID)
	s.log.SetOutput(OutTargetModelURI, o.ModelURI())
	s.log.SetOutput(OutBytesCopied, strconv.FormatInt(o.BytesCopied, 10))
	s.log.SetOutput(OutFilesCopied, strconv.Itoa(o.FilesCopied))
	s.log.SetOutput(OutReused, strconv.FormatBool(o.Reused))
	if _, err := s.log.UploadSummary("MLflow model copy", Summary(o)); err != nil {
		s.log.Warning("Could not write the summary: %v", err)
	}
}

// Summary is the Markdown of the summary tab: source → target with links,
// what moved, and the lineage tags.
func Summary(o Outcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Model copy\n\n")
	switch {
	case o.SameMetastore:
		fmt.Fprintf(&b, "Source and target share one Unity Catalog metastore: no bytes moved.\n\n")
	case o.Concurrent:
		fmt.Fprintf(&b, "A concurrent copy of the same source version made version %d first: this copy's own version was removed and version %d is used.\n\n", o.TargetVersion, o.TargetVersion)
	case o.Reused:
		fmt.Fprintf(&b, "The target already had this source version with the same content: version %d was reused, nothing copied.\n\n", o.TargetVersion)
	case o.Resumed:
		fmt.Fprintf(&b, "Finished the copy an earlier attempt left half-made.\n\n")
	}
	fmt.Fprintf(&b, "| | Source | Target |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| Workspace | %s | %s |\n", agent.MarkdownCell(o.SourceHost), agent.MarkdownCell(o.TargetHost))
	fmt.Fprintf(&b, "| Model version | [%s version %d](%s) | [%s version %d](%s) |\n", agent.MarkdownCell(o.Source.Full), o.SourceVersion, o.SourceURL, agent.MarkdownCell(o.Target.Full), o.TargetVersion, o.TargetURL)
	target := agent.MarkdownCell(o.TargetRunID)
	if o.TargetRunURL != "" {
		target = fmt.Sprintf("[%s](%s)", agent.MarkdownCell(o.TargetRunID), o.TargetRunURL)
	}
	fmt.Fprintf(&b, "| Run | %s | %s |\n", agent.MarkdownCell(orNone(o.SourceRunID)), target)
	if o.Stage != "" || o.Alias != "" {
		label := o.Stage
		if o.Alias != "" {
			label = "@" + o.Alias
		}
		fmt.Fprintf(&b, "| Then | | %s |\n", agent.MarkdownCell(label))
	}
	fmt.Fprintf(&b, "\nFiles copied: %d, bytes copied: %d (model: %d files, %d bytes).\n", o.FilesCopied, o.BytesCopied, o.Files, o.Bytes)
	if len(o.Lineage) > 0 {
		fmt.Fprintf(&b, "\n### Lineage tags\n\n| Tag | Value |\n|---|---|\n")
		for _, kv := range o.Lineage {
			fmt.Fprintf(&b, "| `%s` | %s |\n", kv.Key, agent.MarkdownCell(kv.Value))
		}
	}
	return b.String()
}
