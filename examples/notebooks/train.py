# Databricks notebook source
# MAGIC %md
# MAGIC # Churn model training (Brickferry example)
# MAGIC
# MAGIC Trains an XGBoost churn classifier on the sample customer dataset (`examples/data/customer.csv`,
# MAGIC 12 numeric features, target `Churn`), tracks it with MLflow (parameters, metrics, an input example
# MAGIC and a signature) and ends with the JSON exit value `DatabricksTrain@1` reads:
# MAGIC
# MAGIC `{"mlflow_run_id": "...", "mlflow_experiment_id": "...", "model_path": "model", "metrics": {...}}`
# MAGIC
# MAGIC Parameters (widgets; the task passes them as notebook parameters, together with the pipeline's
# MAGIC `brickferry_build_id`, `brickferry_commit`, `brickferry_branch` and `brickferry_run_url`, which are logged
# MAGIC as run tags so the MLflow run leads back to the pipeline run):
# MAGIC
# MAGIC | name | default | meaning |
# MAGIC |---|---|---|
# MAGIC | `input_table` | | table with the customer data (wins over `input_path`) |
# MAGIC | `input_path` | `dbfs:/FileStore/brickferry/customer.csv` | CSV file with a header row |
# MAGIC | `experiment_name` | | MLflow experiment (default: the notebook's own) |
# MAGIC | `max_depth`, `learning_rate`, `n_estimators` | 4, 0.1, 200 | XGBoost parameters |
# MAGIC | `test_size`, `seed` | 0.2, 42 | hold-out share and random seed |

import json

FEATURES = (
    "Idade",
    "RendaMensal",
    "PercentualUtilizacaoLimite",
    "QtdTransacoesNegadas",
    "AnosDeRelacionamentoBanco",
    "JaUsouChequeEspecial",
    "QtdEmprestimos",
    "NumeroAtendimentos",
    "TMA",
    "IndiceSatisfacao",
    "Saldo",
    "CLTV",
)
TARGET = "Churn"
DEFAULTS = {
    "input_table": "",
    "input_path": "dbfs:/FileStore/brickferry/customer.csv",
    "experiment_name": "",
    "max_depth": "4",
    "learning_rate": "0.1",
    "n_estimators": "200",
    "test_size": "0.2",
    "seed": "42",
    "brickferry_build_id": "",
    "brickferry_commit": "",
    "brickferry_branch": "",
    "brickferry_run_url": "",
}


def read_parameters(get):
    """Read and type the parameters; get(name) returns a widget value or ''."""
    raw = {k: (get(k) or "").strip() or v for k, v in DEFAULTS.items()}
    try:
        params = {
            "max_depth": int(raw["max_depth"]),
            "learning_rate": float(raw["learning_rate"]),
            "n_estimators": int(raw["n_estimators"]),
        }
        test_size, seed = float(raw["test_size"]), int(raw["seed"])
    except ValueError as e:
        raise ValueError("a numeric parameter is not a number: %s" % e)
    if not 0 < test_size < 1:
        raise ValueError("test_size %s must be between 0 and 1" % test_size)
    tags = {k: raw[k] for k in DEFAULTS if k.startswith("brickferry_") and raw[k]}
    return {"input_table": raw["input_table"], "input_path": raw["input_path"], "experiment_name": raw["experiment_name"],
            "params": params, "test_size": test_size, "seed": seed, "tags": tags}


def exit_value(run_id, experiment_id, metrics, model_path="model"):
    return json.dumps({"mlflow_run_id": run_id, "mlflow_experiment_id": experiment_id,
                       "model_path": model_path, "metrics": metrics}, sort_keys=True)


def log_model_args(mlflow_version, name="model"):
    """The keyword naming the logged model: MLflow 3's name= (artifact_path= is deprecated there),
    MLflow 2's artifact_path= (it has no name=). Either way the run's model is found under name."""
    major = int(mlflow_version.split(".")[0])
    return {"name": name} if major >= 3 else {"artifact_path": name}


def train(spark, config):  # pragma: no cover - needs Databricks ML runtime
    import mlflow
    import xgboost as xgb
    from mlflow.models import infer_signature
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    if config["experiment_name"]:
        mlflow.set_experiment(config["experiment_name"])
    if config["input_table"]:
        pdf = spark.table(config["input_table"]).toPandas()
    else:
        pdf = spark.read.option("header", True).option("inferSchema", True).csv(config["input_path"]).toPandas()
    pdf = pdf.dropna(subset=list(FEATURES) + [TARGET])
    X, y = pdf[list(FEATURES)].astype("float64"), pdf[TARGET].astype("int32")
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=config["test_size"], random_state=config["seed"], stratify=y)
    with mlflow.start_run() as run:
        mlflow.set_tags(config["tags"])
        mlflow.log_params(config["params"])
        model = xgb.XGBClassifier(**config["params"], random_state=config["seed"], eval_metric="auc")
        model.fit(X_train, y_train)
        proba = model.predict_proba(X_test)[:, 1]
        pred = (proba >= 0.5).astype(int)
        metrics = {
            "auc": float(roc_auc_score(y_test, proba)),
            "accuracy": float(accuracy_score(y_test, pred)),
            "f1": float(f1_score(y_test, pred)),
            "precision": float(precision_score(y_test, pred)),
            "recall": float(recall_score(y_test, pred)),
        }
        mlflow.log_metrics(metrics)
        example = X_test.head(5)
        # MLflow 3 (Runtime 17.3 LTS ML and later) logs a logged model (models:/m-<id>) that
        # DatabricksTrain finds as the run's output; MLflow 2 logs the run's artifacts/model.
        mlflow.xgboost.log_model(model, input_example=example,
                                 signature=infer_signature(example, model.predict_proba(example)[:, 1]),
                                 **log_model_args(mlflow.__version__))
        return exit_value(run.info.run_id, run.info.experiment_id, metrics)

# COMMAND ----------

if "dbutils" in globals() and "spark" in globals():  # pragma: no cover - runs on Databricks only
    for _name, _default in DEFAULTS.items():
        dbutils.widgets.text(_name, _default)  # noqa: F821
    dbutils.notebook.exit(train(spark, read_parameters(dbutils.widgets.get)))  # noqa: F821
