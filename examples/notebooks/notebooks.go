// Package notebooks embeds the notebooks Brickferry ships, so the executable
// can upload them to a workspace without network access to this repository.
package notebooks

import _ "embed"

// BatchScore is the generic scoring notebook the BatchScore@1 task uploads
// and runs by default (Databricks Python source format). Its parameters are
// documented at its top and in docs/tasks/BatchScore.md.
//
//go:embed batch_score.py
var BatchScore []byte
