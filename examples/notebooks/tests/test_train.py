"""Unit tests of the example training notebook's parameter handling (standard library only)."""
import importlib.util
import json
import os
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
_SPEC = importlib.util.spec_from_file_location("train", os.path.join(_HERE, "..", "train.py"))
train = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(train)


class Parameters(unittest.TestCase):
    def test_defaults(self):
        c = train.read_parameters(lambda name: "")
        self.assertEqual(c["params"], {"max_depth": 4, "learning_rate": 0.1, "n_estimators": 200})
        self.assertEqual(c["input_path"], "dbfs:/FileStore/brickferry/customer.csv")
        self.assertEqual(c["tags"], {})

    def test_lineage_tags(self):
        values = {"brickferry_build_id": "1234", "brickferry_commit": "abc", "max_depth": "6"}
        c = train.read_parameters(lambda name: values.get(name, ""))
        self.assertEqual(c["tags"], {"brickferry_build_id": "1234", "brickferry_commit": "abc"})
        self.assertEqual(c["params"]["max_depth"], 6)

    def test_bad_numbers(self):
        for name, value in (("max_depth", "deep"), ("test_size", "1.5"), ("seed", "x")):
            with self.assertRaises(ValueError, msg=name):
                train.read_parameters(lambda n: value if n == name else "")

    def test_twelve_features(self):
        self.assertEqual(len(train.FEATURES), 12)
        with open(os.path.join(_HERE, "..", "..", "data", "customer.csv"), encoding="utf-8") as f:
            header = f.readline().strip().split(",")
        for col in train.FEATURES + (train.TARGET,):
            self.assertIn(col, header)

    def test_exit_value(self):
        v = json.loads(train.exit_value("r1", "e1", {"auc": 0.9}))
        self.assertEqual(v["mlflow_run_id"], "r1")
        self.assertEqual(v["model_path"], "model")

    def test_log_model_args(self):
        self.assertEqual(train.log_model_args("3.0.1"), {"name": "model"})
        self.assertEqual(train.log_model_args("3.8.1"), {"name": "model"})
        self.assertEqual(train.log_model_args("2.21.3"), {"artifact_path": "model"})
        self.assertEqual(train.log_model_args("2.9.2", "m"), {"artifact_path": "m"})


if __name__ == "__main__":
    unittest.main()
