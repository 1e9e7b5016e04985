package emulator_test

import (
	"context"
	"testing"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/databricks/databricks-sdk-go/service/sql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// TestDeleteExperiment: an active experiment is deleted once (lifecycle
// stage deleted, still found by name); deleting it again, or a missing one,
// is RESOURCE_DOES_NOT_EXIST (MLflow FileStore.delete_experiment).
func TestDeleteExperiment(t *testing.T) {
	ws := emulator.Start(t, emulator.Options{})
	c, err := client.New(ws.SDKConfig())
	require.NoError(t, err)
	ctx := context.Background()
	exps := ml.NewExperiments(c)
	created, err := exps.CreateExperiment(ctx, ml.CreateExperiment{Name: "/Shared/to-delete"})
	require.NoError(t, err)
	require.NoError(t, exps.DeleteExperiment(ctx, ml.DeleteExperiment{ExperimentId: created.ExperimentId}))
	got, err := exps.GetByName(ctx, ml.GetByNameRequest{ExperimentName: "/Shared/to-delete"})
	require.NoError(t, err)
	assert.Equal(t, "deleted", got.Experiment.LifecycleStage)
	for _, id := range []string{created.ExperimentId, "999999"} {
		err = exps.DeleteExperiment(ctx, ml.DeleteExperiment{ExperimentId: id})
		var apiErr *apierr.APIError
		require.ErrorAs(t, err, &apiErr, id)
		assert.Equal(t, "RESOURCE_DOES_NOT_EXIST", apiErr.ErrorCode, id)
	}
}

// TestDropTable: DROP TABLE removes a table; a missing one fails with
// TABLE_OR_VIEW_NOT_FOUND unless IF EXISTS is given.
func TestDropTable(t *testing.T) {
	ws := emulator.Start(t, emulator.Options{})
	ws.AddWarehouse(sql.GetWarehouseResponse{Id: "w1", Name: "w"})
	ws.WriteTable("main.ml.t", 10)
	c, err := client.New(ws.SDKConfig())
	require.NoError(t, err)
	run := func(stmt string) *sql.StatementResponse {
		resp, err := sql.NewStatementExecution(c).ExecuteStatement(context.Background(), sql.ExecuteStatementRequest{WarehouseId: "w1", Statement: stmt})
		require.NoError(t, err)
		return resp
	}
	assert.Equal(t, sql.StatementStateSucceeded, run("DROP TABLE main.ml.t").Status.State)
	_, _, ok := ws.Table("main.ml.t")
	assert.False(t, ok, "the table is gone")
	missing := run("DROP TABLE main.ml.t")
	assert.Equal(t, sql.StatementStateFailed, missing.Status.State)
	assert.Contains(t, missing.Status.Error.Message, "TABLE_OR_VIEW_NOT_FOUND")
	assert.Equal(t, sql.StatementStateSucceeded, run("drop table if exists `main`.`ml`.`t`;").Status.State)
}
