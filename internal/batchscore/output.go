package batchscore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/sql"

	"github.com/brickferry/brickferry/internal/converge"
)

// ExitValue is what the scoring notebook passed to dbutils.notebook.exit:
// {"rows_written": n, "output_table": "...", "table_version": v,
// "model_name": "...", "model_version": "..."}. A notebook of the user's
// must return rows_written at least; the rest is filled from the inputs or
// the SQL check when missing.
type ExitValue struct {
	RowsWritten  int64
	OutputTable  string
	TableVersion int64
	HasVersion   bool
	ModelName    string
	ModelVersion string
}

// ParseExitValue reads the notebook's exit value. Numbers may come as JSON
// numbers or numeric strings (a notebook of the user's may json.dumps
// either).
func ParseExitValue(s string) (ExitValue, error) {
	if strings.TrimSpace(s) == "" {
		return ExitValue{}, errors.New(`the notebook returned no exit value: it must end with dbutils.notebook.exit(json.dumps({"rows_written": ..., "output_table": ..., "table_version": ..., "model_version": ...}))`)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return ExitValue{}, fmt.Errorf("the notebook's exit value is not a JSON object (%w): %.200q", err, s)
	}
	var v ExitValue
	rows, ok, err := jsonInt(raw["rows_written"])
	switch {
	case err != nil:
		return ExitValue{}, fmt.Errorf("the notebook's exit value: rows_written: %w", err)
	case !ok:
		return ExitValue{}, fmt.Errorf("the notebook's exit value has no rows_written: %.200q", s)
	}
	v.RowsWritten = rows
	if v.TableVersion, v.HasVersion, err = jsonInt(raw["table_version"]); err != nil {
		return ExitValue{}, fmt.Errorf("the notebook's exit value: table_version: %w", err)
	}
	v.OutputTable = jsonString(raw["output_table"])
	v.ModelName = jsonString(raw["model_name"])
	v.ModelVersion = jsonString(raw["model_version"])
	return v, nil
}

func jsonInt(m json.RawMessage) (int64, bool, error) {
	if len(m) == 0 || string(m) == "null" {
		return 0, false, nil
	}
	var n json.Number
	if err := json.Unmarshal(m, &n); err != nil {
		var s string
		if json.Unmarshal(m, &s) != nil {
			return 0, false, fmt.Errorf("%s is not a number", m)
		}
		n = json.Number(s)
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || i < 0 {
		return 0, false, fmt.Errorf("%s is not a whole number", m)
	}
	return i, true, nil
}

func jsonString(m json.RawMessage) string {
	var s string
	if json.Unmarshal(m, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(m, &n) == nil {
		return n.String()
	}
	return ""
}

// statementAPI is the part of the SQL Statement Execution API the check
// uses; *sql.StatementExecutionAPI has it.
type statementAPI interface {
	ExecuteStatement(ctx context.Context, request sql.ExecuteStatementRequest) (*sql.StatementResponse, error)
	GetStatement(ctx context.Context, request sql.GetStatementRequest) (*sql.StatementResponse, error)
}

// TableCheck is what the SQL warehouse says about the output table.
type TableCheck struct {
	Rows    int64
	Version int64
}

// checkTable counts the table's rows and reads its latest Delta version on
// a SQL warehouse (POST /api/2.0/sql/statements/, polling while the
// statement is PENDING or RUNNING; a starting warehouse can take minutes).
func checkTable(ctx context.Context, api statementAPI, clock converge.Clock, warehouse, table string) (TableCheck, error) {
	count, err := query(ctx, api, clock, warehouse, "SELECT COUNT(*) FROM "+table)
	if err != nil {
		return TableCheck{}, err
	}
	history, err := query(ctx, api, clock, warehouse, "DESCRIBE HISTORY "+table+" LIMIT 1")
	if err != nil {
		return TableCheck{}, err
	}
	var c TableCheck
	if c.Rows, err = cell(count, 0, "count"); err != nil {
		return TableCheck{}, err
	}
	col := -1
	if history.Manifest != nil && history.Manifest.Schema != nil {
		for i, ci := range history.Manifest.Schema.Columns {
			if ci.Name == "version" {
				col = i
			}
		}
	}
	if col < 0 {
		return TableCheck{}, fmt.Errorf("DESCRIBE HISTORY %s answered no version column", table)
	}
	if c.Version, err = cell(history, col, "version"); err != nil {
		return TableCheck{}, err
	}
	return c, nil
}

func cell(r *sql.StatementResponse, col int, what string) (int64, error) {
	if r.Result == nil || len(r.Result.DataArray) == 0 || len(r.Result.DataArray[0]) <= col {
		return 0, fmt.Errorf("the SQL statement answered no %s", what)
	}
	n, err := strconv.ParseInt(r.Result.DataArray[0][col], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the SQL statement answered %q for the %s", r.Result.DataArray[0][col], what)
	}
	return n, nil
}

// statementTimeout bounds one statement, a cold warehouse included.
const statementTimeout = 10 * time.Minute

func query(ctx context.Context, api statementAPI, clock converge.Clock, warehouse, stmt string) (*sql.StatementResponse, error) {
	resp, err := api.ExecuteStatement(ctx, sql.ExecuteStatementRequest{
		WarehouseId: warehouse, Statement: stmt, WaitTimeout: "30s",
		OnWaitTimeout: sql.ExecuteStatementRequestOnWaitTimeoutContinue,
		Disposition:   sql.DispositionInline, Format: sql.FormatJsonArray,
	})
	if err != nil {
		return nil, fmt.Errorf("running %q on SQL warehouse %s: %w", stmt, warehouse, err)
	}
	first := true
	err = converge.Poll(ctx, clock, converge.Schedule{Pause: func(int) time.Duration { return 2 * time.Second }, Timeout: statementTimeout},
		func(ctx context.Context) (bool, error) {
			if !first {
				var err error
				if resp, err = api.GetStatement(ctx, sql.GetStatementRequest{StatementId: resp.StatementId}); err != nil {
					return false, fmt.Errorf("reading the state of %q on SQL warehouse %s: %w", stmt, warehouse, err)
				}
			}
			first = false
			state := sql.StatementState("")
			if resp.Status != nil {
				state = resp.Status.State
			}
			switch state {
			case sql.StatementStateSucceeded:
				return true, nil
			case sql.StatementStatePending, sql.StatementStateRunning:
				return false, nil
			}
			msg := string(state)
			if resp.Status != nil && resp.Status.Error != nil {
				msg += ": " + resp.Status.Error.Message
			}
			return false, fmt.Errorf("%q on SQL warehouse %s ended %s", stmt, warehouse, msg)
		})
	if errors.Is(err, converge.ErrTimeout) {
		return nil, fmt.Errorf("%q on SQL warehouse %s did not finish within %s", stmt, warehouse, statementTimeout)
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}
