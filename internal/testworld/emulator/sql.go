package emulator

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/sql"
)

// SQL Statement Execution API (https://docs.databricks.com/api/workspace/statementexecution)
// over the tables the emulator knows (written by Score behaviours or
// Workspace.WriteTable). Two statements are understood:
//
//	SELECT COUNT(*) FROM <table>
//	DESCRIBE HISTORY <table> [LIMIT n]
//	DROP TABLE [IF EXISTS] <table>
//
// Statements finish at once (SUCCEEDED with an INLINE JSON_ARRAY result);
// anything else ends FAILED with a parse error, and an unknown table FAILED
// with TABLE_OR_VIEW_NOT_FOUND, as a SQL warehouse answers.

type sqlState struct {
	tables     map[string]*table
	statements map[string]*sql.StatementResponse
	warehouses map[string]sql.GetWarehouseResponse
}

type table struct {
	name     string
	rows     int64
	versions []tableVersion
}

type tableVersion struct {
	version   int64
	at        time.Time
	operation string
}

func newSQLState() sqlState {
	return sqlState{tables: map[string]*table{}, statements: map[string]*sql.StatementResponse{}, warehouses: map[string]sql.GetWarehouseResponse{}}
}

func normTable(name string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(name), "`", ""))
}

func (ws *Workspace) writeTableLocked(name string, rows int64, op string, at time.Time) {
	key := normTable(name)
	t, ok := ws.sql.tables[key]
	if !ok {
		t = &table{name: key}
		ws.sql.tables[key] = t
	}
	t.rows = rows
	t.versions = append(t.versions, tableVersion{version: int64(len(t.versions)), at: at, operation: op})
}

// WriteTable creates or replaces a table with rows rows (a new Delta version).
func (ws *Workspace) WriteTable(name string, rows int64) {
	ws.do(func() { ws.writeTableLocked(name, rows, "CREATE OR REPLACE TABLE AS SELECT", ws.clock.Now()) })
}

// Table reports a table's row count and latest Delta version.
func (ws *Workspace) Table(name string) (rows, version int64, ok bool) {
	ws.do(func() {
		if t, found := ws.sql.tables[normTable(name)]; found {
			rows, version, ok = t.rows, int64(len(t.versions)-1), true
		}
	})
	return rows, version, ok
}

var (
	countRe   = regexp.MustCompile(`(?is)^\s*SELECT\s+COUNT\(\s*\*\s*\)(?:\s+AS\s+\w+)?\s+FROM\s+([\w.` + "`" + `]+)\s*;?\s*$`)
	dropRe    = regexp.MustCompile(`(?is)^\s*DROP\s+TABLE\s+(IF\s+EXISTS\s+)?([\w.` + "`" + `]+)\s*;?\s*$`)
	historyRe = regexp.MustCompile(`(?is)^\s*DESCRIBE\s+HISTORY\s+([\w.` + "`" + `]+)(?:\s+LIMIT\s+(\d+))?\s*;?\s*$`)
)

func (ws *Workspace) sqlRoutes() {
	handle(ws, "POST /api/2.0/sql/statements/{$}", func(r *http.Request, req *sql.ExecuteStatementRequest) (any, *apiError) {
		if req.WarehouseId == "" {
			return nil, invalidParam("Missing required field: warehouse_id")
		}
		if req.Statement == "" {
			return nil, invalidParam("Missing required field: statement")
		}
		resp := ws.execute(req.Statement)
		resp.StatementId = "01ef" + randomHex(14)
		ws.sql.statements[resp.StatementId] = resp
		return resp, nil
	})
	handle(ws, "GET /api/2.0/sql/statements/{id}", func(r *http.Request, req *sql.GetStatementRequest) (any, *apiError) {
		resp, ok := ws.sql.statements[r.PathValue("id")]
		if !ok {
			return nil, notFound("Statement %s not found.", r.PathValue("id"))
		}
		return resp, nil
	})
}

func failedStatement(code sql.ServiceErrorCode, msg string) *sql.StatementResponse {
	return &sql.StatementResponse{Status: &sql.StatementStatus{State: sql.StatementStateFailed, Error: &sql.ServiceError{ErrorCode: code, Message: msg}}}
}

func (ws *Workspace) execute(stmt string) *sql.StatementResponse {
	var cols []sql.ColumnInfo
	var rows [][]string
	if m := countRe.FindStringSubmatch(stmt); m != nil {
		t, ok := ws.sql.tables[normTable(m[1])]
		if !ok {
			return failedStatement(sql.ServiceErrorCodeBadRequest, "[TABLE_OR_VIEW_NOT_FOUND] The table or view `"+m[1]+"` cannot be found.")
		}
		cols = []sql.ColumnInfo{{Name: "count(1)", TypeName: sql.ColumnInfoTypeNameLong, TypeText: "BIGINT", Position: 0}}
		rows = [][]string{{strconv.FormatInt(t.rows, 10)}}
	} else if m := historyRe.FindStringSubmatch(stmt); m != nil {
		t, ok := ws.sql.tables[normTable(m[1])]
		if !ok {
			return failedStatement(sql.ServiceErrorCodeBadRequest, "[TABLE_OR_VIEW_NOT_FOUND] The table or view `"+m[1]+"` cannot be found.")
		}
		limit := len(t.versions)
		if m[2] != "" {
			n, _ := strconv.Atoi(m[2])
			limit = min(n, limit)
		}
		cols = []sql.ColumnInfo{
			{Name: "version", TypeName: sql.ColumnInfoTypeNameLong, TypeText: "BIGINT", Position: 0},
			{Name: "timestamp", TypeName: sql.ColumnInfoTypeNameTimestamp, TypeText: "TIMESTAMP", Position: 1},
			{Name: "userName", TypeName: sql.ColumnInfoTypeNameString, TypeText: "STRING", Position: 2},
			{Name: "operation", TypeName: sql.ColumnInfoTypeNameString, TypeText: "STRING", Position: 3},
		}
		for i := len(t.versions) - 1; i >= 0 && len(rows) < limit; i-- {
			v := t.versions[i]
			rows = append(rows, []string{strconv.FormatInt(v.version, 10), v.at.UTC().Format("2006-01-02T15:04:05.000Z"), ws.UserName, v.operation})
		}
	} else if m := dropRe.FindStringSubmatch(stmt); m != nil {
		// DROP TABLE (Databricks SQL reference): a missing table is
		// TABLE_OR_VIEW_NOT_FOUND unless IF EXISTS is given. The answer
		// has no result columns.
		if _, ok := ws.sql.tables[normTable(m[2])]; !ok && m[1] == "" {
			return failedStatement(sql.ServiceErrorCodeBadRequest, "[TABLE_OR_VIEW_NOT_FOUND] The table or view `"+m[2]+"` cannot be found.")
		}
		delete(ws.sql.tables, normTable(m[2]))
	} else {
		return failedStatement(sql.ServiceErrorCodeBadRequest, "[PARSE_SYNTAX_ERROR] The emulator understands only SELECT COUNT(*) FROM <table>, DESCRIBE HISTORY <table> [LIMIT n] and DROP TABLE [IF EXISTS] <table>.")
	}
	for i := range cols {
		cols[i].ForceSendFields = []string{"Position"}
	}
	result := &sql.ResultData{DataArray: rows, RowCount: int64(len(rows)), ChunkIndex: 0, RowOffset: 0}
	result.ForceSendFields = []string{"ChunkIndex", "RowOffset", "RowCount"}
	return &sql.StatementResponse{
		Status: &sql.StatementStatus{State: sql.StatementStateSucceeded},
		Manifest: &sql.ResultManifest{
			Format: sql.FormatJsonArray, Schema: &sql.ResultSchema{ColumnCount: len(cols), Columns: cols},
			TotalChunkCount: 1, TotalRowCount: int64(len(rows)), Chunks: []sql.BaseChunkInfo{{ChunkIndex: 0, RowCount: int64(len(rows)), ForceSendFields: []string{"ChunkIndex", "RowOffset"}}},
		},
		Result: result,
	}
}
