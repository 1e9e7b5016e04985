package promote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"

	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/registry"
)

// Registering into Unity Catalog follows the MLflow client
// (mlflow/store/_unity_catalog/registry/rest_store.py): create the version
// (PENDING_REGISTRATION, with a storage location), get temporary write
// credentials for it, upload the model's files there, finalize (READY).
// The MLflow UC routes are not in databricks-sdk-go v0.81.0; the shapes are
// those of mlflow/protos/databricks_uc_registry_messages.proto.

// registerUC creates (or reuses) a Unity Catalog version from the model:
// the files are streamed from the run's artifacts (MLflow 2) or the logged
// model's (MLflow 3) into the version's storage location, then the version
// is finalized.
func (s *step) registerUC(ctx context.Context) (*result, error) {
	o := s.opts
	name := o.Model
	org, err := s.resolveSource(ctx)
	if err != nil {
		return nil, err
	}
	source, runID := org.source, org.runID

	createdModel, err := s.ws.EnsureModel(ctx, name, s.log)
	if err != nil {
		return nil, err
	}
	if !createdModel {
		existing, _, err := s.existingUCVersion(ctx, source, runID)
		if err != nil {
			return nil, err
		}
		if existing != nil {
			return s.reuseUC(ctx, *existing, org)
		}
	}

	req := registry.UCCreateRequest{Name: name.Full, Source: source, RunID: runID, Description: o.Description, Tags: registry.ToUCTags(s.versionTags(runID)), ModelID: org.modelID()}
	made, err := s.createVersion(ctx, func(ctx context.Context) (*registry.Version, []int, error) {
		return s.existingUCVersion(ctx, source, runID)
	}, func(ctx context.Context, find registry.FindVersion) (registry.Created, error) {
		return s.ws.CreateUCVersion(ctx, req, find, s.log)
	})
	if err != nil {
		return nil, err
	}
	if made.Found != nil {
		return s.reuseUC(ctx, *made.Found, org)
	}
	n := made.Number
	s.log.Info("Created version %d of %s (PENDING_REGISTRATION) from %s; uploading the model to its storage location.", n, name.Full, source)
	if first, _, err := s.existingUCVersion(ctx, source, runID); err != nil {
		return nil, err
	} else if first != nil && first.Number < n {
		s.yield(ctx, n, first.Number)
		return s.reuseUC(ctx, *first, org)
	}

	err = s.finishUC(ctx, n, made.Location, org)
	var v registry.Version
	if err == nil {
		v, err = s.waitReady(ctx, n)
	}
	var timeout *timeoutError
	switch {
	case errors.As(err, &timeout):
		return &result{version: n}, err
	case err != nil && ctx.Err() != nil:
		// Cancelled: remove what this step made, so that nothing is left
		// half-registered.
		s.cleanup(ctx, n, createdModel)
		return nil, err
	case err != nil:
		return nil, err
	}
	s.log.Info("Version %d of %s is READY: %s", n, name.Full, s.ws.VersionURL(name, n))
	s.noteVersion(ctx, org, n)
	s.reportDeploymentRun(ctx, n)
	reused := false
	return &result{version: v.Number, reused: &reused, note: fmt.Sprintf("Registered version %d from `%s`.", n, o.Source.URI)}, nil
}

// existingUCVersion finds the version of the UC model registered from the
// same run and path that did not fail; of several, the first (lowest
// number), as existingVersion does. A version an interrupted attempt left
// PENDING_REGISTRATION counts: reuseUC finishes it.
func (s *step) existingUCVersion(ctx context.Context, source, runID string) (*registry.Version, []int, error) {
	name := s.opts.Model
	all, err := s.ws.UCVersions.ListAll(ctx, catalog.ListModelVersionsRequest{FullName: name.Full})
	if err != nil {
		return nil, nil, fmt.Errorf("looking for an existing version of %s from %s: %w", name.Full, s.opts.Source.URI, err)
	}
	var matches []registry.Version
	for _, mv := range all {
		src := strings.TrimSuffix(mv.Source, "/")
		if mv.RunId != runID || (src != source && src != s.opts.Source.URI) {
			continue
		}
		if mv.Status == catalog.ModelVersionInfoStatusFailedRegistration {
			continue
		}
		v := registry.FromUC(mv)
		v.Location = mv.StorageLocation
		matches = append(matches, v)
	}
	return lowest(matches)
}

// reuseUC takes an existing version; one that an interrupted attempt left
// PENDING_REGISTRATION gets its files uploaded (again) and is finalized.
func (s *step) reuseUC(ctx context.Context, v registry.Version, org origin) (*result, error) {
	if v.Status == string(catalog.ModelVersionInfoStatusPendingRegistration) {
		s.log.Info("Version %d of %s from %s was created by an earlier attempt and not finalized: uploading the model and finalizing it.", v.Number, s.opts.Model.Full, s.opts.Source.URI)
		if err := s.finishUC(ctx, v.Number, v.Location, org); err != nil {
			return nil, err
		}
	}
	return s.reuse(ctx, v, org)
}

// finishUC uploads the model into version n and finalizes it. When two
// pipeline runs register the same run at the same moment, both fill the
// first version (see yield) and one finalizes it first; the other's upload
// or finalize is then refused (write credentials are only issued before
// finalize): a version that is READY by then is done.
func (s *step) finishUC(ctx context.Context, n int, location string, org origin) error {
	err := s.uploadAndFinalize(ctx, n, location, org)
	if err == nil || ctx.Err() != nil {
		return err
	}
	if v, gerr := s.ws.Get(ctx, s.opts.Model, n); gerr == nil && v.Status == string(catalog.ModelVersionInfoStatusReady) {
		s.log.Info("Version %d of %s was finalized meanwhile, by another pipeline run registering the same run.", n, s.opts.Model.Full)
		return nil
	}
	return err
}

// uploadAndFinalize streams the model files into the storage location of
// version n (read URLs from the run's artifact credentials, or the logged
// model's download credentials; write URLs from the version's temporary
// credentials) and finalizes the version.
func (s *step) uploadAndFinalize(ctx context.Context, n int, location string, org origin) error {
	name := s.opts.Model
	from, files, read, err := s.modelFiles(ctx, org)
	if err != nil {
		return err
	}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	s.log.Info("Uploading %d files (%.1f MiB) from %s to the storage location of version %d.", len(files), float64(total)/(1<<20), from, n)
	write := func(ctx context.Context, paths []string) (map[string]artifacts.Credential, error) {
		// Asked afresh for every batch and retry: the credentials are short-lived.
		token, err := s.ucWriteToken(ctx, n)
		if err != nil {
			return nil, err
		}
		sign, err := artifacts.PrefixSigner(location, token)
		if err != nil {
			return nil, err
		}
		return sign(ctx, paths)
	}
	copier := artifacts.New(artifacts.Options{
		HTTPClient: s.storage,
		Retried: func(path string, attempt int, err error) {
			s.log.Info("Retrying %s (attempt %d): %v", path, attempt, err)
		},
	})
	if _, err := copier.Copy(ctx, files, read, write, write); err != nil {
		return fmt.Errorf("uploading the model files of %s to version %d of %s: %w", from, n, name.Full, err)
	}
	// Finalize is not idempotent (a second one is refused INVALID_STATE),
	// so the transport does not send it again after a 500 or a dropped
	// connection: the version is looked at instead, and finalized again
	// while it is still PENDING_REGISTRATION.
	ready := func(ctx context.Context) (struct{}, bool, error) {
		v, err := s.ws.Get(ctx, name, n)
		return struct{}{}, err == nil && v.Status == string(catalog.ModelVersionInfoStatusReady), err
	}
	_, err = converge.Converge(ctx, ready, func(ctx context.Context) (struct{}, error) {
		var fin registry.UCVersionResponse
		return struct{}{}, s.ws.Client.Do(ctx, http.MethodPost, registry.UCRoute+"finalize", nil, nil, registry.UCVersionRequest{Name: name.Full, Version: strconv.Itoa(n)}, &fin)
	})
	if err != nil {
		if errors.Is(err, apierr.ErrInvalidState) {
			// Finalized meanwhile (a concurrent step from the same run, or an
			// answer that got lost): READY is what counts.
			if _, ok, _ := ready(ctx); ok {
				return nil
			}
		}
		return fmt.Errorf("finalizing version %d of %s: %w", n, name.Full, err)
	}
	s.log.Info("Uploaded the model and finalized version %d of %s.", n, name.Full)
	return nil
}

// modelFiles lists the files of the model to upload, says where they are
// (for messages) and signs them for reading: the logged model's files
// (MLflow 3), else the run's below the artifact path.
func (s *step) modelFiles(ctx context.Context, org origin) (from string, files []artifacts.File, read artifacts.Signer, err error) {
	if id := org.modelID(); id != "" {
		from = "logged model " + id
		files, err = artifacts.ListLoggedModel(ctx, s.ws.Client, id, "")
		read = artifacts.LoggedModelSigner(s.ws.Client, id, false)
	} else {
		from = "run " + org.runID
		files, err = artifacts.ListRun(ctx, s.ws.Client, org.runID, org.path)
		read = artifacts.RunSigner(s.ws.Client, org.runID, org.path, false)
	}
	if err != nil {
		return "", nil, nil, fmt.Errorf("listing the model files of %s: %w", from, err)
	}
	if len(files) == 0 {
		return "", nil, nil, fmt.Errorf("%s in workspace %s has no model files (%s)", from, s.ws.Host, s.opts.Source.URI)
	}
	return from, files, read, nil
}

// ucWriteToken returns a SAS token that lets the step write version n's
// storage location.
func (s *step) ucWriteToken(ctx context.Context, n int) (string, error) {
	name := s.opts.Model
	var resp registry.UCCredentialsResponse
	err := s.ws.Client.Do(ctx, http.MethodPost, registry.UCRoute+"generate-temporary-credentials", nil, nil,
		registry.UCCredentialsRequest{Name: name.Full, Version: strconv.Itoa(n), Operation: "MODEL_VERSION_OPERATION_READ_WRITE"}, &resp)
	if err != nil {
		return "", fmt.Errorf("getting storage credentials for version %d of %s: %w", n, name.Full, err)
	}
	if sas := resp.Credentials.AzureUserDelegationSAS; sas == nil || sas.SASToken == "" {
		return "", fmt.Errorf("storage credentials for version %d of %s are not an Azure SAS: this task registers into Unity Catalog on Azure storage only", n, name.Full)
	}
	return resp.Credentials.AzureUserDelegationSAS.SASToken, nil
}
