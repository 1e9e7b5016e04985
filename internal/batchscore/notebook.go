package batchscore

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/workspace"
)

// workspaceAPI is the part of the Workspace API the task uses;
// *workspace.WorkspaceAPI has it.
type workspaceAPI interface {
	Export(ctx context.Context, request workspace.ExportRequest) (*workspace.ExportResponse, error)
	Import(ctx context.Context, request workspace.Import) error
	Mkdirs(ctx context.Context, request workspace.Mkdirs) error
}

// syncNotebook uploads the shipped notebook to p unless the workspace
// already holds the same source, so an unchanged notebook costs one read
// and no write. It reports whether it uploaded.
func syncNotebook(ctx context.Context, api workspaceAPI, p string, source []byte) (bool, error) {
	current, err := api.Export(ctx, workspace.ExportRequest{Path: p, Format: workspace.ExportFormatSource})
	switch {
	case errors.Is(err, apierr.ErrResourceDoesNotExist) || errors.Is(err, apierr.ErrNotFound):
	case err != nil:
		return false, fmt.Errorf("reading the scoring notebook %s: %w", p, err)
	default:
		old, derr := base64.StdEncoding.DecodeString(current.Content)
		if derr == nil && sameSource(old, source) {
			return false, nil
		}
	}
	if err := api.Mkdirs(ctx, workspace.Mkdirs{Path: path.Dir(p)}); err != nil {
		return false, fmt.Errorf("creating the notebook folder %s: %w", path.Dir(p), err)
	}
	err = api.Import(ctx, workspace.Import{
		Path: p, Format: workspace.ImportFormatSource, Language: workspace.LanguagePython,
		Content: base64.StdEncoding.EncodeToString(source), Overwrite: true,
	})
	if err != nil {
		return false, fmt.Errorf("uploading the scoring notebook to %s: %w", p, err)
	}
	return true, nil
}

// sameSource compares notebook sources the way an export may differ from
// what was imported: line endings and trailing white space.
func sameSource(a, b []byte) bool {
	norm := func(s []byte) []byte {
		s = bytes.ReplaceAll(s, []byte("\r\n"), []byte("\n"))
		lines := bytes.Split(bytes.TrimSpace(s), []byte("\n"))
		for i, l := range lines {
			lines[i] = bytes.TrimRight(l, " \t")
		}
		return bytes.Join(lines, []byte("\n"))
	}
	return bytes.Equal(norm(a), norm(b))
}
