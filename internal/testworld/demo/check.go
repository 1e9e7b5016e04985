package demo

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/databricks/databricks-sdk-go/service/sql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// Outcome is a finished run of a sample pipeline and where to read back the
// state it left: everything is read through the Databricks API, so that the
// same checks run against the emulated workspaces (the end-to-end test) and
// real ones (internal/testworld/live).
type Outcome struct {
	// Sample names the models, tables and endpoint the run used.
	Sample Sample
	// Dev and Prod configure clients of the two workspaces.
	Dev, Prod *config.Config
	// WarehouseID is a SQL warehouse of the prod workspace, which counts
	// the rows of the scored table.
	WarehouseID string
	// Result is the pipeline's result; Output everything it printed (the
	// readable log and every step's stdout and stderr).
	Result, Output string
	// Secrets are every secret the run knew of.
	Secrets []string
	// SummaryDir holds the summary tabs the steps uploaded.
	SummaryDir string
}

// CheckOutcome checks what a successful run of o.Sample leaves: one version
// in each workspace, promoted (stage Production, or the aliases
// @challenger @champion in dev and @champion in prod), its lineage tags,
// the prod run with the source run's metrics (and, on MLflow 3, the version
// registered from the run's logged model), the scored table's rows, the
// serving endpoint serving the prod version, a summary tab per task step,
// and no secret in the output.
func CheckOutcome(t require.TestingT, ctx context.Context, o Outcome) {
	require.Equal(t, "Succeeded", o.Result, o.Output)
	for _, s := range o.Secrets {
		if s != "" {
			assert.NotContains(t, o.Output, s, "a secret was printed")
		}
	}
	devPromoted, prodPromoted := "Production", "Production"
	if o.Sample.UnityCatalog() {
		devPromoted, prodPromoted = "@challenger @champion", "@champion"
	}

	devVersions, err := ModelVersions(ctx, o.Dev, o.Sample.DevModel)
	require.NoError(t, err)
	require.Len(t, devVersions, 1, "one version registered in dev")
	dv := devVersions[0]
	assert.Equal(t, devPromoted, dv.Where, "dev's version was promoted after the copy")
	assert.Equal(t, "1001", dv.Tags["brickferry_build_id"], "the dev version names the build (BUILD_BUILDID of NewRunner's environment)")

	prodVersions, err := ModelVersions(ctx, o.Prod, o.Sample.ProdModel)
	require.NoError(t, err)
	require.Len(t, prodVersions, 1, "one version copied to prod")
	pv := prodVersions[0]
	assert.Equal(t, prodPromoted, pv.Where)
	assert.Equal(t, "READY", pv.Status)
	assert.Equal(t, dv.Version, pv.Tags["brickferry_source_version"], "lineage names the source version")
	assert.Equal(t, dv.RunID, pv.Tags["brickferry_source_run_id"])

	prod, err := client.New(o.Prod)
	require.NoError(t, err)
	run, err := mlflowRun(ctx, prod, pv.RunID)
	require.NoError(t, err, "the prod version comes from a run in prod")
	require.NotNil(t, run.Run.Data)
	assert.NotEmpty(t, run.Run.Data.Metrics, "the prod run carries the source run's metrics")
	if o.Sample.MLflow == emulator.MLflow3 {
		// Trained, registered and copied the MLflow 3 way: each version
		// is registered from a logged model of its run.
		dev, err := client.New(o.Dev)
		require.NoError(t, err)
		for _, v := range []struct {
			c     *client.DatabricksClient
			where string
			model string
			mv    ModelVersion
		}{{dev, "dev", o.Sample.DevModel, dv}, {prod, "prod", o.Sample.ProdModel, pv}} {
			r, err := mlflowRun(ctx, v.c, v.mv.RunID)
			require.NoError(t, err, v.where)
			require.NotNil(t, r.Run.Outputs, "%s: the run logged a model", v.where)
			require.Len(t, r.Run.Outputs.ModelOutputs, 1, "%s: the run logged one model", v.where)
			n, err := strconv.Atoi(v.mv.Version)
			require.NoError(t, err)
			info, err := catalog.NewModelVersions(v.c).Get(ctx, catalog.GetModelVersionRequest{FullName: v.model, Version: n})
			require.NoError(t, err, v.where)
			assert.Equal(t, "models:/"+r.Run.Outputs.ModelOutputs[0].ModelId, info.Source, v.where)
		}
	}

	rows, err := countRows(ctx, prod, o.WarehouseID, o.Sample.OutputTable)
	require.NoError(t, err, "the predictions table exists in prod")
	assert.Equal(t, int64(ScoredRows), rows)

	ep, err := serving.NewServingEndpoints(prod).Get(ctx, serving.GetServingEndpointRequest{Name: o.Sample.Endpoint})
	require.NoError(t, err)
	require.NotNil(t, ep.State)
	assert.Equal(t, serving.EndpointStateReadyReady, ep.State.Ready)
	require.NotNil(t, ep.Config)
	require.Len(t, ep.Config.ServedEntities, 1)
	assert.Equal(t, o.Sample.ProdModel, ep.Config.ServedEntities[0].EntityName)
	assert.Equal(t, pv.Version, ep.Config.ServedEntities[0].EntityVersion)

	summaries, err := filepath.Glob(filepath.Join(o.SummaryDir, "*.md"))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(summaries), 8, "a summary tab per task step")
}

// runWithOutputs is runs/get's answer with the run's outputs (MLflow
// service.proto Run.outputs), which databricks-sdk-go v0.81.0's ml.Run does
// not have.
type runWithOutputs struct {
	Run struct {
		Data    *ml.RunData          `json:"data"`
		Outputs *emulator.RunOutputs `json:"outputs"`
	} `json:"run"`
}

func mlflowRun(ctx context.Context, c *client.DatabricksClient, runID string) (runWithOutputs, error) {
	var got runWithOutputs
	err := c.Do(ctx, http.MethodGet, "/api/2.0/mlflow/runs/get", nil, nil, map[string]any{"run_id": runID}, &got)
	return got, err
}

// countRows counts a table's rows with a SQL warehouse (the Statement
// Execution API), waiting for a warehouse that is starting.
func countRows(ctx context.Context, c *client.DatabricksClient, warehouseID, table string) (int64, error) {
	st := sql.NewStatementExecution(c)
	resp, err := st.ExecuteStatement(ctx, sql.ExecuteStatementRequest{
		WarehouseId: warehouseID, Statement: "SELECT COUNT(*) FROM " + table, WaitTimeout: "30s",
	})
	for err == nil && resp.Status != nil && (resp.Status.State == sql.StatementStatePending || resp.Status.State == sql.StatementStateRunning) {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Second):
		}
		resp, err = st.GetStatement(ctx, sql.GetStatementRequest{StatementId: resp.StatementId})
	}
	if err != nil {
		return 0, err
	}
	if resp.Status == nil || resp.Status.State != sql.StatementStateSucceeded {
		msg := "no status"
		if resp.Status != nil {
			msg = string(resp.Status.State)
			if resp.Status.Error != nil {
				msg += ": " + resp.Status.Error.Message
			}
		}
		return 0, fmt.Errorf("counting the rows of %s: %s", table, msg)
	}
	if resp.Result == nil || len(resp.Result.DataArray) != 1 || len(resp.Result.DataArray[0]) != 1 {
		return 0, fmt.Errorf("counting the rows of %s: no single value in the answer", table)
	}
	return strconv.ParseInt(strings.TrimSpace(resp.Result.DataArray[0][0]), 10, 64)
}

// WithoutSecretHandOver drops the lines that hand a secret to the agent
// (task.setsecret, and setvariable with issecret=true): the agent reads and
// masks them, so they are not output a person sees. Everything else stays.
func WithoutSecretHandOver(text string) string {
	var kept []string
	for _, line := range strings.Split(text, "\n") {
		if cmd, ok := agent.ParseCommand(line); ok && (cmd.Event == "setsecret" || (cmd.Event == "setvariable" && cmd.Properties["issecret"] == "true")) {
			continue
		}
		kept = append(kept, line)
	}
	return strings.Join(kept, "\n")
}
