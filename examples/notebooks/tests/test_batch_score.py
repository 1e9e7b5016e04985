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
        for uri, want in (("models:/churn/2", "2"), ("models:/churn@champion", "7"), ("models:/churn/Production", "5")):
            c = bs.read_parameters(params(model_uri=uri))
            self.assertEqual(bs.resolve_version(FakeClient(), c), want)
        with self.assertRaises(bs.ParameterError):
            bs.resolve_version(FakeClient(), bs.read_parameters(params(model_uri="models:/churn/Staging")))


if __name__ == "__main__":
    unittest.main()
