// Package artifacts moves MLflow model files between storage accounts
// through signed URLs, the only way Databricks lets a client read or write
// them (databricks-sdk-go has no artifact download):
//
//   - [ListRun] lists a run's artifacts below a folder, recursively, through
//     GET /api/2.0/mlflow/artifacts/list (which only lists one level);
//   - [ListModelVersion] and [ModelVersionSigner] list and sign the files of a
//     workspace model registry version as the registry holds them
//     (model-versions/list-artifacts and get-signed-download-uri, the routes
//     of MLflow's DatabricksModelsArtifactRepository);
//   - [RunSigner] gets signed read or write URLs for many paths at once, page
//     by page, from POST /api/2.0/mlflow/artifacts/credentials-for-read and
//     -for-write (MLflow's databricks_artifacts.proto); [PrefixSigner] signs
//     paths below a folder with one SAS token (Unity Catalog temporary
//     credentials) and [ListPrefix] lists such a folder (an abfss://
//     location through ADLS Gen2 Path - List, as MLflow's client lists it);
//   - [Copier] streams every file from a source URL to a target URL: never a
//     whole file in memory or on disk, a bounded number of files and blocks in
//     flight, each file hashed (SHA-256) on the way, each request's bytes
//     checked by the storage (MD5), the file's length and stored MD5 checked
//     on the target after writing, and a failed file retried with fresh URLs.
//
// The URL kinds are those of ArtifactCredentialType: AZURE_SAS_URI (Blob
// REST through the azblob client: blocks staged in parallel with a
// transactional MD5 each, then committed; a one-block file in one Put Blob
// with its MD5),
// AZURE_ADLS_GEN2_SAS_URI (DFS REST: create, append at positions, flush), and
// AWS_PRESIGNED_URL / GCP_SIGNED_URL (one streamed PUT). The headers the
// server hands out with a URL go on the requests whose operation takes them,
// as MLflow's client filters them (headers.go). Signed URLs never carry a
// Databricks token, and they are never logged: they are bearer credentials.
package artifacts
