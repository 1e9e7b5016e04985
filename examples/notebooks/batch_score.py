# Databricks notebook source
# MAGIC %md
# MAGIC # Brickferry batch scoring
# MAGIC
# MAGIC The generic scoring notebook that the `BatchScore@1` task ships and runs. It loads an MLflow
# MAGIC model by URI as a Spark UDF, scores an input table (or files at a path), keeps the id columns
# MAGIC you name, and writes the predictions with the model name, version and a scoring timestamp to a
# MAGIC Delta table. It ends with a JSON exit value that the task reads.
# MAGIC
# MAGIC Parameters (notebook widgets; the task passes them as job parameters):
# MAGIC
# MAGIC | name | meaning |
# MAGIC |---|---|
# MAGIC | `model_uri` | `models:/<name>/<stage>`, `models:/<catalog.schema.model>@<alias>` or `models:/<name>/<version>` |
# MAGIC | `input_table` | table to score: `catalog.schema.table`, `schema.table` or `table` |
# MAGIC | `input_path`, `input_format` | files to score instead of a table (`delta`, `parquet`, `csv`, `json`) |
# MAGIC | `id_columns` | comma-separated columns copied to the output unchanged |
# MAGIC | `feature_columns` | comma-separated model inputs (default: every column but the id columns) |
# MAGIC | `output_table` | Delta table to write: `catalog.schema.table` or `schema.table` |
# MAGIC | `write_mode` | `overwrite` (default), `append` or `merge` |
# MAGIC | `merge_keys` | comma-separated key columns, required for `merge` |
# MAGIC
# MAGIC Exit value: `{"rows_written": n, "output_table": "...", "table_version": v, "model_name": "...", "model_version": "..."}`,
# MAGIC `rows_written` being read from the write's Delta history (the predictions are not counted twice).
# MAGIC The MLflow registry is chosen from the model name: Unity Catalog (`databricks-uc`) for a
# MAGIC three-part name, the workspace model registry (`databricks`) otherwise.
#
# The functions above the last cell use the Python standard library only, so they are unit-tested
# outside Databricks (tests/test_batch_score.py).

import json
import re
from datetime import datetime, timezone

PARAMETERS = (
    "model_uri",
    "input_table",
    "input_path",
    "input_format",
    "id_columns",
    "feature_columns",
    "output_table",
    "write_mode",
    "merge_keys",
)
WRITE_MODES = ("overwrite", "append", "merge")
INPUT_FORMATS = ("delta", "parquet", "csv", "json")
STAGES = ("None", "Staging", "Production", "Archived")

_IDENTIFIER = r"(?:[A-Za-z_][A-Za-z0-9_]*|`[^`\x00-\x1f\x7f]+`)"
_TABLE = re.compile(r"^%s(?:\.%s){0,2}$" % (_IDENTIFIER, _IDENTIFIER))


class ParameterError(ValueError):
    """A notebook parameter is missing or malformed; the message names it."""


def split_list(value):
    """'a, b,,c' -> ['a', 'b', 'c']"""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def is_unity_catalog(name):
    """A registered model name with three dot-separated parts (catalog.schema.model) is a Unity
    Catalog model; any other name is one of the workspace model registry."""
    return name.count(".") == 2


def registry_uri(model_name):
    """The MLflow registry URI that holds model_name: databricks-uc for a Unity Catalog name,
    databricks (the workspace model registry) otherwise. Set explicitly because the default depends
    on the workspace and the MLflow version (MLflow 3 defaults to Unity Catalog on Databricks)."""
    return "databricks-uc" if is_unity_catalog(model_name) else "databricks"


def parse_model_uri(uri):
    """Split a models:/ URI into (name, kind, reference), kind being stage, alias or version.

    Unity Catalog models have aliases and no stages; workspace registry models have stages and no
    aliases: the other combination is refused here rather than by the registry mid-job."""
    if not uri or not uri.startswith("models:/"):
        raise ParameterError("model_uri %r must start with models:/" % uri)
    rest = uri[len("models:/"):]
    if "@" in rest:
        name, alias = rest.rsplit("@", 1)
        if not name or not re.match(r"^[A-Za-z0-9_-]+$", alias):
            raise ParameterError("model_uri %r: write models:/<name>@<alias>" % uri)
        if not is_unity_catalog(name):
            raise ParameterError("model_uri %r: %s is a workspace model registry model, which has no aliases: "
                                 "write models:/%s/<stage> (%s) or models:/%s/<version>"
                                 % (uri, name, name, ", ".join(STAGES), name))
        return name, "alias", alias
    name, _, ref = rest.rpartition("/")
    if not name or not ref:
        raise ParameterError("model_uri %r: write models:/<name>/<stage or version>" % uri)
    if ref.isdigit():
        return name, "version", ref
    for stage in STAGES:
        if ref.lower() == stage.lower():
            if is_unity_catalog(name):
                raise ParameterError("model_uri %r: %s is a Unity Catalog model, which has no stages: "
                                     "write models:/%s@<alias> or models:/%s/<version>" % (uri, name, name, name))
            return name, "stage", stage
    raise ParameterError("model_uri %r: %r is neither a version number nor a stage (%s)" % (uri, ref, ", ".join(STAGES)))


def check_table(parameter, name, parts=(1, 2, 3)):
    if not _TABLE.match(name or ""):
        raise ParameterError("%s %r is not a table name (catalog.schema.table, schema.table or table)" % (parameter, name))
    count = len(re.findall(_IDENTIFIER, name))
    if count not in parts:
        raise ParameterError("%s %r must have %s dot-separated parts" % (parameter, name, " or ".join(str(p) for p in parts)))
    return name


def read_parameters(get):
    """Read and validate the parameters; get(name) returns a widget's value or ''."""
    p = {name: (get(name) or "").strip() for name in PARAMETERS}
    config = {"model_uri": p["model_uri"]}
    config["model_name"], config["model_ref_kind"], config["model_ref"] = parse_model_uri(p["model_uri"])
    if p["input_table"] and p["input_path"]:
        raise ParameterError("give input_table or input_path, not both")
    if p["input_table"]:
        config["input_table"] = check_table("input_table", p["input_table"])
    elif p["input_path"]:
        fmt = (p["input_format"] or "delta").lower()
        if fmt not in INPUT_FORMATS:
            raise ParameterError("input_format %r is not one of %s" % (p["input_format"], ", ".join(INPUT_FORMATS)))
        config["input_path"], config["input_format"] = p["input_path"], fmt
    else:
        raise ParameterError("input_table or input_path is required")
    config["output_table"] = check_table("output_table", p["output_table"], parts=(2, 3))
    mode = (p["write_mode"] or "overwrite").lower()
    if mode not in WRITE_MODES:
        raise ParameterError("write_mode %r is not one of %s" % (p["write_mode"], ", ".join(WRITE_MODES)))
    config["write_mode"] = mode
    config["id_columns"] = split_list(p["id_columns"])
    config["feature_columns"] = split_list(p["feature_columns"])
    config["merge_keys"] = split_list(p["merge_keys"])
    if mode == "merge" and not config["merge_keys"]:
        raise ParameterError("write_mode merge needs merge_keys")
    missing = [k for k in config["merge_keys"] if k not in config["id_columns"]]
    if missing:
        raise ParameterError("merge_keys %s must be among id_columns" % ", ".join(missing))
    return config


def schema_of(table):
    """The schema part of a two- or three-part table name."""
    return table.rsplit(".", 1)[0]


def merge_condition(keys):
    return " AND ".join("t.`%s` = s.`%s`" % (k, k) for k in keys)


def rows_written(operation, metrics):
    """The rows a Delta write put in the table, from its commit in the table history
    (DESCRIBE HISTORY: operation, operationMetrics). Delta records numOutputRows for a write
    (WRITE, CREATE [OR REPLACE] TABLE AS SELECT, REPLACE TABLE AS SELECT); for MERGE,
    numOutputRows also counts the unchanged rows of rewritten files (numTargetRowsCopied), so the
    rows written are numTargetRowsInserted + numTargetRowsUpdated (delta-io/delta
    DeltaOperationMetrics WRITE and MERGE). Reading them costs no second pass over the scored
    data, which counting the DataFrame would (the model would score every row twice)."""
    metrics = metrics or {}
    try:
        if operation == "MERGE":
            return int(metrics["numTargetRowsInserted"]) + int(metrics["numTargetRowsUpdated"])
        return int(metrics["numOutputRows"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the table history has no row count for the %s that wrote the predictions "
                         "(operationMetrics: %s); is spark.databricks.delta.history.metricsEnabled off?"
                         % (operation, json.dumps(metrics, sort_keys=True))) from None


def exit_value(rows_written, output_table, table_version, model_name, model_version):
    return json.dumps({
        "rows_written": int(rows_written),
        "output_table": output_table,
        "table_version": int(table_version),
        "model_name": model_name,
        "model_version": str(model_version),
    }, sort_keys=True)


def resolve_version(client, config):
    """The model version number a models:/ URI points at now (MlflowClient)."""
    kind, name, ref = config["model_ref_kind"], config["model_name"], config["model_ref"]
    if kind == "version":
        return ref
    if kind == "alias":
        return client.get_model_version_by_alias(name, ref).version
    versions = client.get_latest_versions(name, stages=[ref])
    if not versions:
        raise ParameterError("model %s has no version in stage %s" % (name, ref))
    return versions[0].version


def score(spark, dbutils, config):  # pragma: no cover - needs Spark and MLflow
    import mlflow
    from mlflow.tracking import MlflowClient
    from pyspark.sql import functions as F

    registry = registry_uri(config["model_name"])
    mlflow.set_registry_uri(registry)  # spark_udf loads models:/ URIs from the current registry
    version = resolve_version(MlflowClient(registry_uri=registry), config)
    model_uri = "models:/%s/%s" % (config["model_name"], version)
    if "input_table" in config:
        df = spark.table(config["input_table"])
    else:
        df = spark.read.format(config["input_format"]).load(config["input_path"])
    features = config["feature_columns"] or [c for c in df.columns if c not in config["id_columns"]]
    predict = mlflow.pyfunc.spark_udf(spark, model_uri)
    scored = df.select(
        *[F.col(c) for c in config["id_columns"]],
        predict(F.struct(*[F.col(c) for c in features])).alias("prediction"),
    ).withColumn("model_name", F.lit(config["model_name"])) \
     .withColumn("model_version", F.lit(str(version))) \
     .withColumn("scored_at", F.lit(datetime.now(timezone.utc).isoformat()))
    table = config["output_table"]
    spark.sql("CREATE SCHEMA IF NOT EXISTS %s" % schema_of(table))
    if config["write_mode"] == "merge" and spark.catalog.tableExists(table):
        scored.createOrReplaceTempView("brickferry_scored")
        spark.sql("MERGE INTO %s t USING brickferry_scored s ON %s WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
                  % (table, merge_condition(config["merge_keys"])))
    else:
        mode = "overwrite" if config["write_mode"] == "merge" else config["write_mode"]
        scored.write.format("delta").mode(mode).option("overwriteSchema", mode == "overwrite").saveAsTable(table)
    last = spark.sql("DESCRIBE HISTORY %s LIMIT 1" % table).collect()[0]
    rows = rows_written(last["operation"], last["operationMetrics"])
    return exit_value(rows, table, last["version"], config["model_name"], version)

# COMMAND ----------

if "dbutils" in globals() and "spark" in globals():  # pragma: no cover - runs on Databricks only
    for _name in PARAMETERS:
        dbutils.widgets.text(_name, "")  # noqa: F821
    _config = read_parameters(dbutils.widgets.get)  # noqa: F821
    dbutils.notebook.exit(score(spark, dbutils, _config))  # noqa: F821
