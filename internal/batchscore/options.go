package batchscore

import (
	_ "embed"
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/compute"
	"github.com/brickferry/brickferry/internal/modeluri"
)

// Options is everything BatchScore@1 was asked to do, read from its inputs
// and validated before any remote call.
type Options struct {
	Model          ModelURI
	InputTable     string // or InputPath + InputFormat
	InputPath      string
	InputFormat    string
	IDColumns      []string
	FeatureColumns []string
	OutputTable    string
	WriteMode      string // overwrite, append or merge
	MergeKeys      []string

	JobName        string
	JobNameDefault bool // JobName was derived from the output table (input jobName empty)
	AllowTakeover  bool // allowJobTakeover: take over another pipeline's job, or remove its schedule
	Owner          Owner
	NotebookPath   string // where the job's notebook is (the shipped one is uploaded there)
	Shipped        bool   // NotebookPath is the Brickferry notebook, kept up to date by the task
	ExtraParams    []agent.KeyValue
	Compute        compute.Spec
	Schedule       *Schedule // nil: no schedule
	Timeout        time.Duration
	MinRows        int64
	SQLWarehouseID string
}

// Schedule is the job's cron trigger.
type Schedule struct {
	Cron     string // Quartz syntax
	TimeZone string // IANA (Java) time zone id
	Paused   bool
}

// ModelURI is a parsed models:/ URI.
type ModelURI struct {
	URI  string
	Name string // registry name or catalog.schema.model
	Kind string // stage, alias or version
	Ref  string // Production, champion, 3
}

// defaultWorkers is the size of the job cluster when the inputs give none.
const defaultWorkers = 2

// shippedName is the name of the shipped notebook in its folder.
const shippedName = "batch_score"

// Notebook parameters: the names the shipped notebook reads (its PARAMETERS)
// and any notebook of the user's gets.
const (
	paramModelURI       = "model_uri"
	paramInputTable     = "input_table"
	paramInputPath      = "input_path"
	paramInputFormat    = "input_format"
	paramIDColumns      = "id_columns"
	paramFeatureColumns = "feature_columns"
	paramOutputTable    = "output_table"
	paramWriteMode      = "write_mode"
	paramMergeKeys      = "merge_keys"
)

var taskParams = []string{paramModelURI, paramInputTable, paramInputPath, paramInputFormat, paramIDColumns,
	paramFeatureColumns, paramOutputTable, paramWriteMode, paramMergeKeys}

// identifier is one part of a table name: a plain SQL identifier or a
// back-quoted one (https://learn.microsoft.com/azure/databricks/sql/language-manual/sql-ref-identifiers)
// without control characters: a name with a line break would break the
// SQL the notebook writes (found by FuzzTableName, kept in testdata/fuzz).
const identifier = "(?:[A-Za-z_][A-Za-z0-9_]*|`[^`\\x00-\\x1f\\x7f]+`)"

var (
	tablePart  = regexp.MustCompile(identifier)
	tableName  = regexp.MustCompile(`^` + identifier + `(?:\.` + identifier + `){0,2}$`)
	columnName = regexp.MustCompile("^[^,`\r\n]+$") // any name the notebook can quote in backticks
	paramName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
)

//go:embed zones.txt
var zoneList string

// maxTimeout bounds the wait; a scoring job that runs longer than a week is
// better left to its schedule.
const maxTimeout = 7 * 24 * time.Hour

// readOptions is ReadOptions as auth.Task calls it, with the pipeline that
// will own the job.
func readOptions(env agent.Env, in *agent.Inputs) Options {
	o := ReadOptions(in)
	o.Owner = OwnerOf(env.System())
	return o
}

// defaultJobPrefix starts the name of a job whose step gives no jobName:
// the job is then the output table's, so two pipelines that write two
// tables keep two jobs.
const defaultJobPrefix = "brickferry-score-"

// DefaultJobName is the job name for an output table: the prefix and the
// table as the catalog compares names (lower case, without backticks).
func DefaultJobName(outputTable string) string { return defaultJobPrefix + normTable(outputTable) }

// ReadOptions reads the task's inputs into Options, recording every problem
// in in (see agent.Inputs.Err).
func ReadOptions(in *agent.Inputs) Options {
	o := Options{
		JobName:        in.String("jobName"),
		AllowTakeover:  in.Bool("allowJobTakeover"),
		ExtraParams:    in.KeyValues("notebookParameters"),
		Compute:        compute.FromInputs(in, defaultWorkers),
		SQLWarehouseID: in.String("sqlWarehouseId"),
	}
	o.Model = readModelURI(in)
	o.Timeout = in.Minutes("timeoutMinutes", time.Second, maxTimeout)
	if in.Choice("inputType") == "path" {
		o.InputPath = in.String("inputPath")
		o.InputFormat = in.Choice("inputFormat")
		if strings.ContainsAny(o.InputPath, "\n\r") {
			in.Fail("inputPath", "must be one line")
		}
	} else {
		o.InputTable = readTable(in, "inputTable", 1)
	}
	o.IDColumns = readColumns(in, "idColumns")
	o.FeatureColumns = readColumns(in, "featureColumns")
	for _, c := range o.FeatureColumns {
		if slices.Contains(o.IDColumns, c) {
			in.Fail("featureColumns", "%q is also an id column; id columns are copied, not passed to the model", agent.Neutralize(c))
		}
	}
	o.OutputTable = readTable(in, "outputTable", 2)
	if o.InputTable != "" && o.OutputTable != "" && normTable(o.InputTable) == normTable(o.OutputTable) {
		in.Fail("outputTable", "is the input table; write the predictions to another table")
	}
	o.WriteMode = in.Choice("writeMode")
	if o.WriteMode == "merge" {
		o.MergeKeys = readColumns(in, "mergeKeys")
		for _, k := range o.MergeKeys {
			if !slices.Contains(o.IDColumns, k) {
				in.Fail("mergeKeys", "%q is not one of the id columns (%s): the merge matches rows on id columns", agent.Neutralize(k), strings.Join(o.IDColumns, ", "))
			}
		}
	}
	if o.JobName != "" && (len(o.JobName) > 4096 || strings.ContainsAny(o.JobName, "\n\r")) {
		in.Fail("jobName", "must be one line of at most 4096 characters")
	}
	if o.JobName == "" && o.OutputTable != "" {
		o.JobName, o.JobNameDefault = DefaultJobName(o.OutputTable), true
	}
	o.readNotebook(in)
	o.Schedule = readSchedule(in)
	o.MinRows = int64(in.Int("minRows", 0, math.MaxInt32))
	if o.SQLWarehouseID != "" && !regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`).MatchString(o.SQLWarehouseID) {
		in.Fail("sqlWarehouseId", "%q is not a SQL warehouse id (letters and digits, as in /sql/warehouses/<id>)", agent.Neutralize(o.SQLWarehouseID))
	}
	return o
}

func (o *Options) readNotebook(in *agent.Inputs) {
	var name, p string
	if in.Choice("notebookSource") == "workspace" {
		name, p = "notebookPath", in.String("notebookPath")
	} else {
		o.Shipped = true
		name, p = "notebookFolder", in.String("notebookFolder")
	}
	if p == "" {
		return
	}
	clean := path.Clean(p)
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\n\r") || (p != "/" && clean != strings.TrimSuffix(p, "/")) {
		in.Fail(name, "%q is not an absolute workspace path such as /Shared/brickferry", agent.Neutralize(p))
		return
	}
	o.NotebookPath = clean
	if o.Shipped {
		o.NotebookPath = path.Join(o.NotebookPath, shippedName)
	}
	taken := map[string]bool{}
	for _, n := range taskParams {
		taken[n] = true
	}
	for _, kv := range o.ExtraParams {
		switch {
		case taken[kv.Key]:
			in.Fail("notebookParameters", "%q is set by the task (from the other inputs)", agent.Neutralize(kv.Key))
		case !paramName.MatchString(kv.Key):
			in.Fail("notebookParameters", "%q is not a parameter name (letters, digits, _ . -)", agent.Neutralize(kv.Key))
		}
	}
}

func readModelURI(in *agent.Inputs) ModelURI {
	uri := in.String("modelUri")
	if uri == "" {
		return ModelURI{}
	}
	m, err := ParseModelURI(uri)
	if err != nil {
		in.Fail("modelUri", "%s", err)
	}
	return m
}

// ParseModelURI reads models:/<name>/<stage>, models:/<name>@<alias> and
// models:/<name>/<version>, the forms the shipped notebook resolves. The
// name and reference follow MLflow's rules (package modeluri); "latest" is
// refused: a production job should name what it scores with.
func ParseModelURI(uri string) (ModelURI, error) {
	forms := "write models:/<name>/Production, models:/<name>@champion or models:/<name>/3"
	rest, ok := strings.CutPrefix(uri, "models:/")
	if !ok {
		return ModelURI{}, fmt.Errorf("%q is not a models:/ URI: %s", agent.Neutralize(uri), forms)
	}
	m := ModelURI{URI: uri}
	var name string
	if n, alias, isAlias := strings.Cut(rest, "@"); isAlias {
		if err := modeluri.ValidateAlias(alias); err != nil {
			return ModelURI{}, fmt.Errorf("%q: the alias %w", agent.Neutralize(uri), err)
		}
		name, m.Kind, m.Ref = n, "alias", alias
	} else {
		n, ref, _ := strings.Cut(rest, "/")
		name = n
		v, err := modeluri.ParseVersionRef(ref)
		switch {
		case ref == "":
			return ModelURI{}, fmt.Errorf("%q names no stage, alias or version: %s", agent.Neutralize(uri), forms)
		case err != nil || v.Alias != "":
			return ModelURI{}, fmt.Errorf("%q: %q is neither a version number nor a stage (%s)", agent.Neutralize(uri), agent.Neutralize(ref), strings.Join(modeluri.Stages, ", "))
		case v.Latest:
			return ModelURI{}, fmt.Errorf("%q: name a stage, an alias or a version rather than latest, so the job scores with what was promoted", agent.Neutralize(uri))
		case v.Stage != "":
			m.Kind, m.Ref = "stage", v.Stage
		default:
			m.Kind, m.Ref = "version", strconv.Itoa(v.Number)
		}
	}
	n, err := modeluri.ParseName(name)
	if err != nil {
		return ModelURI{}, fmt.Errorf("%q: the model name %w", agent.Neutralize(uri), err)
	}
	// A stage on a Unity Catalog model or an alias on a workspace registry
	// model only fails inside the notebook, after the job was made and run.
	if n.CheckVersion(m.versionRef()) != nil {
		full := agent.Neutralize(n.Full)
		if n.UC() {
			return ModelURI{}, fmt.Errorf("%q: %s is a Unity Catalog model, which has no stages: write models:/%s@<alias> (e.g. models:/%s@champion) or models:/%s/<version>",
				agent.Neutralize(uri), full, full, full, full)
		}
		return ModelURI{}, fmt.Errorf("%q: %s is a workspace model registry model, which has no aliases: write models:/%s/<stage> (one of %s) or models:/%s/<version>",
			agent.Neutralize(uri), full, full, strings.Join(modeluri.Stages, ", "), full)
	}
	m.Name = n.Full
	return m, nil
}

// Registered is the registered model and the version reference the URI
// names, for resolving it in the workspace (package registry).
func (m ModelURI) Registered() (modeluri.Name, modeluri.VersionRef, error) {
	n, err := modeluri.ParseName(m.Name)
	return n, m.versionRef(), err
}

// versionRef is the stage, alias or version number the URI names.
func (m ModelURI) versionRef() modeluri.VersionRef {
	switch m.Kind {
	case "stage":
		return modeluri.VersionRef{Stage: m.Ref}
	case "alias":
		return modeluri.VersionRef{Alias: m.Ref}
	}
	n, _ := strconv.Atoi(m.Ref)
	return modeluri.VersionRef{Number: n}
}

// readTable reads a table name of minParts to 3 dot-separated identifiers.
func readTable(in *agent.Inputs, name string, minParts int) string {
	v := in.String(name)
	if v == "" {
		return ""
	}
	forms := "catalog.schema.table, schema.table or table"
	if minParts == 2 {
		forms = "catalog.schema.table or schema.table"
	}
	if !tableName.MatchString(v) {
		in.Fail(name, "%q is not a table name: write %s (parts are letters, digits and _, or any text in backticks)", agent.Neutralize(v), forms)
		return ""
	}
	if n := len(tablePart.FindAllString(v, -1)); n < minParts {
		in.Fail(name, "%q has %d part(s): write %s", agent.Neutralize(v), n, forms)
		return ""
	}
	return v
}

// normTable compares table names the way the catalog does (case-insensitive,
// backticks are quoting).
func normTable(t string) string { return strings.ToLower(strings.ReplaceAll(t, "`", "")) }

// readColumns reads a comma-separated list of column names.
func readColumns(in *agent.Inputs, name string) []string {
	var out []string
	v := in.String(name)
	for _, c := range strings.Split(v, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if !columnName.MatchString(c) {
			in.Fail(name, "%q is not a column name", agent.Neutralize(c))
			continue
		}
		if slices.Contains(out, c) {
			in.Fail(name, "names %q twice", agent.Neutralize(c))
			continue
		}
		out = append(out, c)
	}
	if v != "" && len(out) == 0 {
		in.Fail(name, "names no column")
	}
	return out
}

func readSchedule(in *agent.Inputs) *Schedule {
	cron := in.String("scheduleCron")
	tz := in.String("scheduleTimeZone")
	paused := in.Bool("schedulePaused")
	if tz != "" && !knownZone(tz) {
		in.Fail("scheduleTimeZone", "%q is not a time zone: use an IANA name such as UTC, Europe/Madrid or America/New_York", agent.Neutralize(tz))
	}
	if cron == "" {
		return nil
	}
	if err := checkQuartz(cron); err != nil {
		in.Fail("scheduleCron", "%q is not a Quartz cron expression: %s", agent.Neutralize(cron), err)
	}
	if tz == "" {
		tz = "UTC"
	}
	return &Schedule{Cron: strings.Join(strings.Fields(cron), " "), TimeZone: tz, Paused: paused}
}

// knownZone reports whether tz is an IANA time zone name. The list is the
// one Go ships (zones.txt, from $GOROOT/lib/time/zoneinfo.zip) rather than
// time.LoadLocation, which needs zone data that Windows agents lack unless
// the executable embeds time/tzdata (+414 KB raw, +96 KB gzip-compressed
// measured with Go 1.26); the names are 9 KB.
func knownZone(tz string) bool {
	for _, z := range strings.Fields(zoneList) {
		if z == tz {
			return true
		}
	}
	return false
}
