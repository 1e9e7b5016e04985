package artifacts

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/ml"
)

// The files of an MLflow 3 logged model (models:/m-<id>) live under the
// logged model's own artifact location, not under a run's. MLflow reads and
// writes them through routes databricks-sdk-go v0.81.0 does not have:
// ListLoggedModelArtifacts, GET
// /api/2.0/mlflow/logged-models/{model_id}/artifacts/directories
// (mlflow/protos/service.proto), and getCredentialsForLoggedModelUpload and
// getCredentialsForLoggedModelDownload, POST
// /api/2.0/mlflow/logged-models/{model_id}/artifacts/credentials-for-upload
// and -download (mlflow/protos/databricks_artifacts.proto), as
// mlflow/store/artifact/databricks_artifact_repo_resources.py (_LoggedModel)
// calls them. The shapes below are those messages'; only the fields
// Brickferry reads or sends are declared.

type loggedModelListResponse struct {
	Files         []ml.FileInfo `json:"files"`
	NextPageToken string        `json:"next_page_token"`
}

type loggedModelCredentialsRequest struct {
	Paths     []string `json:"paths"`
	PageToken string   `json:"page_token,omitempty"`
}

type loggedModelCredentialsResponse struct {
	Credentials []struct {
		ModelID        string         `json:"model_id"`
		CredentialInfo credentialInfo `json:"credential_info"`
	} `json:"credentials"`
	NextPageToken string `json:"next_page_token"`
}

// ListLoggedModel lists every file below dir of a logged model's artifacts
// (dir "" is the whole model), descending into folders: the listing answers
// one level, in pages. Paths are relative to dir and sorted.
func ListLoggedModel(ctx context.Context, c *client.DatabricksClient, modelID, dir string) ([]File, error) {
	return walk(dir, func(d string) ([]entry, error) {
		var out []entry
		token := ""
		for {
			q := map[string]any{}
			if d != "" {
				q["artifact_directory_path"] = d
			}
			if token != "" {
				q["page_token"] = token
			}
			var resp loggedModelListResponse
			if err := c.Do(ctx, http.MethodGet, "/api/2.0/mlflow/logged-models/"+url.PathEscape(modelID)+"/artifacts/directories", nil, q, nil, &resp); err != nil {
				return nil, fmt.Errorf("listing artifacts %q of logged model %s: %w", d, modelID, err)
			}
			for _, f := range resp.Files {
				out = append(out, entry{path: f.Path, dir: f.IsDir, size: f.FileSize})
			}
			// MLflow stops at an empty page too, whatever the token says
			// (databricks_artifact_repo_resources.py list_artifacts).
			if len(resp.Files) == 0 || resp.NextPageToken == "" || resp.NextPageToken == token {
				return out, nil
			}
			token = resp.NextPageToken
		}
	})
}

// LoggedModelSigner signs paths of a logged model's artifacts for reading
// (credentials-for-download) or writing (credentials-for-upload). One call
// asks for all the paths and follows next_page_token.
func LoggedModelSigner(c *client.DatabricksClient, modelID string, write bool) Signer {
	route := "/api/2.0/mlflow/logged-models/" + url.PathEscape(modelID) + "/artifacts/credentials-for-download"
	if write {
		route = "/api/2.0/mlflow/logged-models/" + url.PathEscape(modelID) + "/artifacts/credentials-for-upload"
	}
	return pagedSigner("logged model "+modelID, "", func(ctx context.Context, full []string, token string) ([]credentialInfo, string, error) {
		var resp loggedModelCredentialsResponse
		if err := c.Do(ctx, http.MethodPost, route, nil, nil, loggedModelCredentialsRequest{Paths: full, PageToken: token}, &resp); err != nil {
			return nil, "", err
		}
		infos := make([]credentialInfo, 0, len(resp.Credentials))
		for _, cr := range resp.Credentials {
			infos = append(infos, cr.CredentialInfo)
		}
		return infos, resp.NextPageToken, nil
	})
}
