package emulator_test

import (
	"net/http"
	"testing"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// TestUnityCatalogVersionDelete: DELETE /api/2.1/unity-catalog/models/{name}/versions/{n}
// removes the version and its aliases; numbers are not reused.
func TestUnityCatalogVersionDelete(t *testing.T) {
	ws, _ := start(t, emulator.Options{})
	cl := sdk(t, ws)
	c := ctx(t)
	models := catalog.NewRegisteredModels(cl)
	versions := catalog.NewModelVersions(cl)
	_, err := models.Create(c, catalog.CreateRegisteredModelRequest{CatalogName: "main", SchemaName: "ml", Name: "churn"})
	require.NoError(t, err)
	create := func() string {
		var created emulator.UCModelVersionResponse
		require.NoError(t, cl.Do(c, http.MethodPost, "/api/2.0/mlflow/unity-catalog/model-versions/create", nil, nil,
			emulator.CreateUCModelVersionRequest{Name: "main.ml.churn", Source: "dbfs:/somewhere"}, &created))
		return created.ModelVersion.Version
	}
	create()
	create()
	_, err = models.SetAlias(c, catalog.SetRegisteredModelAliasRequest{FullName: "main.ml.churn", Alias: "champion", VersionNum: 1})
	require.NoError(t, err)

	require.NoError(t, versions.Delete(c, catalog.DeleteModelVersionRequest{FullName: "main.ml.churn", Version: 1}))
	_, err = versions.Get(c, catalog.GetModelVersionRequest{FullName: "main.ml.churn", Version: 1})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
	_, err = versions.GetByAlias(c, catalog.GetByAliasRequest{FullName: "main.ml.churn", Alias: "champion"})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist, "the alias went with the version")
	_, err = models.SetAlias(c, catalog.SetRegisteredModelAliasRequest{FullName: "main.ml.churn", Alias: "champion", VersionNum: 1})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
	err = versions.Delete(c, catalog.DeleteModelVersionRequest{FullName: "main.ml.churn", Version: 1})
	assert.ErrorIs(t, err, apierr.ErrResourceDoesNotExist)
	all, err := versions.ListAll(c, catalog.ListModelVersionsRequest{FullName: "main.ml.churn"})
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, 2, all[0].Version)
	assert.Len(t, ws.UCModelVersions("main.ml.churn"), 1)
	assert.Equal(t, "3", create(), "version numbers are not reused")
}
