"""Unit tests of the shipped scoring notebook's parameter handling (standard library only).

Run: python3 -m unittest discover -s examples/notebooks/tests
"""
import importlib.util
import json
import os
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
_SPEC = importlib.util.spec_from_file_location("batch_score", os.path.join(_HERE, "..", "batch_score.py"))
bs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bs)


def params(**kw):
    base = {"model_uri": "models:/churn/Production", "input_table": "main.ml.customers",
            "output_table": "main.ml.churn_predictions", "id_columns": "CodigoCliente"}
    base.update(kw)
    return lambda name: base.get(name, "")


class ModelURI(unittest.TestCase):
    def test_forms(self):
        self.assertEqual(bs.parse_model_uri("models:/churn/Production"), ("churn", "stage", "Production"))
        self.assertEqual(bs.parse_model_uri("models:/churn/staging"), ("churn", "stage", "Staging"))
        self.assertEqual(bs.parse_model_uri("models:/main.ml.churn@champion"), ("main.ml.churn", "alias", "champion"))
        self.assertEqual(bs.parse_model_uri("models:/churn/3"), ("churn", "version", "3"))

    def test_bad(self):
        for uri in ("runs:/abc/model", "models:/churn", "models:/churn/Prod", "models:/@x", "models:/a@b c", ""):
            with self.assertRaises(bs.ParameterError, msg=uri):
                bs.parse_model_uri(uri)

    def test_stage_or_alias_of_the_wrong_registry(self):
        cases = {
            "models:/main.ml.churn/Production": "main.ml.churn is a Unity Catalog model, which has no stages",
            "models:/main.ml.churn/staging": "main.ml.churn is a Unity Catalog model, which has no stages",
            "models:/churn@champion": "churn is a workspace model registry model, which has no aliases",
        }
        for uri, needle in cases.items():
            with self.assertRaises(bs.ParameterError, msg=uri) as cm:
                bs.parse_model_uri(uri)
            self.assertIn(needle, str(cm.exception))
            self.assertIn("model_uri", str(cm.exception))
        self.assertEqual(bs.parse_model_uri("models:/main.ml.churn/4"), ("main.ml.churn", "version", "4"))


class RegistryURI(unittest.TestCase):
    def test_from_the_model_name(self):
        self.assertEqual(bs.registry_uri("main.ml.churn"), "databricks-uc")
        self.assertEqual(bs.registry_uri("`my-cat`.ml.churn"), "databricks-uc")
        self.assertEqual(bs.registry_uri("churn"), "databricks")
        self.assertEqual(bs.registry_uri("churn-model_v2"), "databricks")


class RowsWritten(unittest.TestCase):
    def test_from_the_history_of_the_write(self):
        # operationMetrics values are strings (DESCRIBE HISTORY: map<string,string>).
        self.assertEqual(bs.rows_written("WRITE", {"numFiles": "2", "numOutputRows": "9960", "numOutputBytes": "81234"}), 9960)
        self.assertEqual(bs.rows_written("CREATE OR REPLACE TABLE AS SELECT", {"numOutputRows": "12"}), 12)
        self.assertEqual(bs.rows_written("CREATE TABLE AS SELECT", {"numOutputRows": "0"}), 0)

    def test_merge_counts_inserted_and_updated_not_copied(self):
        metrics = {"numSourceRows": "100", "numTargetRowsInserted": "30", "numTargetRowsUpdated": "70",
                   "numTargetRowsDeleted": "0", "numTargetRowsCopied": "5000", "numOutputRows": "5100"}
        self.assertEqual(bs.rows_written("MERGE", metrics), 100)

    def test_no_metrics(self):
        for operation, metrics in (("WRITE", {}), ("WRITE", None), ("MERGE", {"numOutputRows": "5"}), ("WRITE", {"numOutputRows": "x"})):
            with self.assertRaises(ValueError, msg=(operation, metrics)) as cm:
                bs.rows_written(operation, metrics)
            self.assertIn("no row count for the " + operation, str(cm.exception))


class Parameters(unittest.TestCase):
    def test_defaults(self):
        c = bs.read_parameters(params())
        self.assertEqual(c["write_mode"], "overwrite")
        self.assertEqual(c["id_columns"], ["CodigoCliente"])
        self.assertEqual(c["feature_columns"], [])
        self.assertEqual(c["input_table"], "main.ml.customers")

    def test_path_input(self):
        c = bs.read_parameters(params(input_table="", input_path="/mnt/data/Customer", input_format="Parquet"))
        self.assertEqual((c["input_path"], c["input_format"]), ("/mnt/data/Customer", "parquet"))

    def test_merge(self):
        c = bs.read_parameters(params(write_mode="MERGE", merge_keys="CodigoCliente"))
        self.assertEqual(c["write_mode"], "merge")
        self.assertEqual(bs.merge_condition(c["merge_keys"]), "t.`CodigoCliente` = s.`CodigoCliente`")

    def test_backticks(self):
        c = bs.read_parameters(params(output_table="`my-cat`.ml.`pred table`"))
        self.assertEqual(bs.schema_of(c["output_table"]), "`my-cat`.ml")

    def test_errors_name_the_parameter(self):
        cases = {
            "model_uri": params(model_uri="runs:/x/model"),
            "input_table or input_path": params(input_table=""),
            "not both": params(input_path="/x"),
            "input_format": params(input_table="", input_path="/x", input_format="avro"),
            "output_table": params(output_table="predictions"),
            "write_mode": params(write_mode="upsert"),
            "merge_keys": params(write_mode="merge"),
            "must be among id_columns": params(write_mode="merge", merge_keys="Email"),
            "input_table": params(input_table="a.b.c.d"),
            "is not a table name": params(output_table="ml.`a\nb`"),
        }
        for needle, get in cases.items():
            with self.assertRaises(bs.ParameterError, msg=needle) as cm:
                bs.read_parameters(get)
            self.assertIn(needle, str(cm.exception))


class ExitValue(unittest.TestCase):
    def test_json(self):
        v = json.loads(bs.exit_value(9960, "main.ml.p", 4, "churn", 3))
        self.assertEqual(v, {"rows_written": 9960, "output_table": "main.ml.p", "table_version": 4,
                             "model_name": "churn", "model_version": "3"})


class FakeClient:
    def get_model_version_by_alias(self, name, alias):
        return type("V", (), {"version": "7"})()

    def get_latest_versions(self, name, stages):
        return [type("V", (), {"version": "5"})()] if stages == ["Production"] else []


class ResolveVersion(unittest.TestCase):
    def test_resolve(self):
        for uri, want in (("models:/churn/2", "2"), ("models:/main.ml.churn@champion", "7"), ("models:/churn/Production", "5")):
            c = bs.read_parameters(params(model_uri=uri))
            self.assertEqual(bs.resolve_version(FakeClient(), c), want)
        with self.assertRaises(bs.ParameterError):
            bs.resolve_version(FakeClient(), bs.read_parameters(params(model_uri="models:/churn/Staging")))


if __name__ == "__main__":
    unittest.main()
